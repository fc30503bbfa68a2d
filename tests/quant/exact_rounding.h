// Test reference: num / 2^n rounded half to even, computed exactly with 128-bit integers.
#pragma once
#include <cstdint>

namespace lowbit::quant::test_reference {

inline int64_t exact_div_pow2_half_even(__int128 num, int n) {
  const __int128 d = static_cast<__int128>(1) << n;
  __int128 q = num / d;  // truncates toward zero
  __int128 r = num - q * d;
  if (r < 0) {  // make it the floor
    q -= 1;
    r += d;
  }
  if (2 * r > d || (2 * r == d && (q & 1))) q += 1;
  return static_cast<int64_t>(q);
}

}  // namespace lowbit::quant::test_reference
