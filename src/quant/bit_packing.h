// Packing of signed b-bit codes (b = 1, 2, 4, 8) into bytes.
//
// Layout: element i lives in byte i / (8/b), at bit offset (i % (8/b)) * b, as a b-bit
// two's-complement field (little end first). Example, b = 4: codes {-1, 3} -> byte 0x3F
// (low nibble 0xF = -1, high nibble 0x3 = 3). A partial last byte is padded with zeros.
// For b = 1 the field holds the Odd-grid code in {-1, 0} (value 2c + 1 = {-1, +1}).
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace lowbit::quant {

// Bytes needed for n codes of b bits.
inline size_t packed_size(size_t n, int bits) { return (n * static_cast<size_t>(bits) + 7) / 8; }

// Throws lowbit::Error if bits is not 1, 2, 4 or 8 or a code does not fit in b bits.
void pack_codes(const int8_t* codes, size_t n, int bits, uint8_t* out);
void unpack_codes(const uint8_t* packed, size_t n, int bits, int8_t* out);

std::vector<uint8_t> pack_codes(const std::vector<int8_t>& codes, int bits);
std::vector<int8_t> unpack_codes(const std::vector<uint8_t>& packed, size_t n, int bits);

// Sign-extend the low `bits` bits of `field`.
inline int8_t sign_extend(uint32_t field, int bits) {
  const uint32_t m = 1u << (bits - 1);
  field &= (1u << bits) - 1u;
  return static_cast<int8_t>(static_cast<int32_t>(field ^ m) - static_cast<int32_t>(m));
}

}  // namespace lowbit::quant
