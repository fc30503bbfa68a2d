#include "quant/bit_packing.h"

#include <cstring>
#include <string>

#include "base/error.h"

namespace lowbit::quant {
namespace {

void check_bits(int bits) {
  LOWBIT_CHECK(bits == 1 || bits == 2 || bits == 4 || bits == 8,
               "bit packing supports 1, 2, 4 or 8 bits per code (got " + std::to_string(bits) + ")");
}

}  // namespace

void pack_codes(const int8_t* codes, size_t n, int bits, uint8_t* out) {
  check_bits(bits);
  const size_t bytes = packed_size(n, bits);
  if (bytes > 0) std::memset(out, 0, bytes);  // out may be null for n = 0 (an empty vector's data())
  const int lo = -(1 << (bits - 1));
  const int hi = (1 << (bits - 1)) - 1;
  const int per_byte = 8 / bits;
  const uint32_t mask = (1u << bits) - 1u;
  for (size_t i = 0; i < n; ++i) {
    const int c = codes[i];
    LOWBIT_CHECK(c >= lo && c <= hi, "code " + std::to_string(c) + " at index " + std::to_string(i) +
                                         " does not fit in " + std::to_string(bits) + " signed bits");
    out[i / per_byte] |= static_cast<uint8_t>((static_cast<uint32_t>(c) & mask) << ((i % per_byte) * bits));
  }
}

void unpack_codes(const uint8_t* packed, size_t n, int bits, int8_t* out) {
  check_bits(bits);
  const int per_byte = 8 / bits;
  for (size_t i = 0; i < n; ++i) {
    out[i] = sign_extend(packed[i / per_byte] >> ((i % per_byte) * bits), bits);
  }
}

std::vector<uint8_t> pack_codes(const std::vector<int8_t>& codes, int bits) {
  check_bits(bits);
  std::vector<uint8_t> out(packed_size(codes.size(), bits));
  pack_codes(codes.data(), codes.size(), bits, out.data());
  return out;
}

std::vector<int8_t> unpack_codes(const std::vector<uint8_t>& packed, size_t n, int bits) {
  check_bits(bits);
  LOWBIT_CHECK(packed.size() >= packed_size(n, bits),
               "packed buffer of " + std::to_string(packed.size()) + " bytes is too small for " + std::to_string(n) +
                   " codes of " + std::to_string(bits) + " bits");
  std::vector<int8_t> out(n);
  unpack_codes(packed.data(), n, bits, out.data());
  return out;
}

}  // namespace lowbit::quant
