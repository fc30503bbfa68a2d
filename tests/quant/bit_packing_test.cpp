#include "quant/bit_packing.h"

#include <gtest/gtest.h>

#include <random>

#include "base/error.h"

using namespace lowbit::quant;

TEST(BitPacking, DocumentedLayout) {
  EXPECT_EQ(pack_codes(std::vector<int8_t>{-1, 3}, 4), (std::vector<uint8_t>{0x3F}));
  EXPECT_EQ(pack_codes(std::vector<int8_t>{1, -2, 0, -1}, 2), (std::vector<uint8_t>{0xC9}));  // 01 10 00 11
  EXPECT_EQ(pack_codes(std::vector<int8_t>{-1, 0, 0, 0, 0, 0, 0, 0, -1}, 1), (std::vector<uint8_t>{0x01, 0x01}));
  EXPECT_EQ(pack_codes(std::vector<int8_t>{-8, 7, 5}, 4), (std::vector<uint8_t>{0x78, 0x05}));
}

// Exhaustive: every pair of int4 codes and every quadruple of int2 codes round-trips.
TEST(BitPacking, ExhaustiveInt4AndInt2) {
  for (int a = -8; a <= 7; ++a)
    for (int b = -8; b <= 7; ++b) {
      std::vector<int8_t> v{static_cast<int8_t>(a), static_cast<int8_t>(b)};
      ASSERT_EQ(unpack_codes(pack_codes(v, 4), 2, 4), v);
    }
  for (int i = 0; i < 256; ++i) {
    std::vector<int8_t> v;
    for (int k = 0; k < 4; ++k) v.push_back(sign_extend(static_cast<uint32_t>(i >> (2 * k)), 2));
    const auto packed = pack_codes(v, 2);
    ASSERT_EQ(packed.size(), 1u);
    ASSERT_EQ(packed[0], i);  // every byte is some quadruple: the map is a bijection
    ASSERT_EQ(unpack_codes(packed, 4, 2), v);
  }
  for (int i = 0; i < 256; ++i) {
    std::vector<int8_t> v{static_cast<int8_t>(i - 128)};
    ASSERT_EQ(unpack_codes(pack_codes(v, 8), 1, 8), v);
  }
}

TEST(BitPacking, RandomOddLengths) {
  std::mt19937 rng(2);
  for (int bits : {1, 2, 4, 8})
    for (size_t n : {0u, 1u, 3u, 7u, 31u, 33u, 1001u}) {
      std::vector<int8_t> v(n);
      for (auto& c : v) c = sign_extend(rng(), bits);
      const auto packed = pack_codes(v, bits);
      ASSERT_EQ(packed.size(), packed_size(n, bits));
      ASSERT_EQ(unpack_codes(packed, n, bits), v);
    }
}

TEST(BitPacking, Errors) {
  EXPECT_THROW(pack_codes(std::vector<int8_t>{8}, 4), lowbit::Error);
  EXPECT_THROW(pack_codes(std::vector<int8_t>{-3}, 2), lowbit::Error);
  EXPECT_THROW(pack_codes(std::vector<int8_t>{0}, 3), lowbit::Error);
  EXPECT_THROW(unpack_codes(std::vector<uint8_t>{0}, 3, 4), lowbit::Error);
}
