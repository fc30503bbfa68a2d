#include "qat/fake_quant_kernels.h"

#include <cmath>
#include <cstring>

#include "quant/rounding.h"

namespace lowbit::qat::kernels {

// Values beyond 2^22 steps are clamped before rounding so that the vectorisable
// round_half_even_bounded applies; they clamp to the grid's end either way, so the result is
// that of quant::round_half_even.
namespace {
// One element of each grid; the plain and the noisy kernels share them, so their bits agree.
inline float quantize_integer_one(float x, float s, float zf, float qmin, float qmax) {
  constexpr float lim = quant::kRoundBoundedLimit;
  float v = x / s;
  v = v < -lim ? -lim : v;  // NaN passes both comparisons unchanged
  v = v > lim ? lim : v;
  float t = quant::round_half_even_bounded(v) + zf;
  t = std::isnan(t) ? zf : t;
  t = t < qmin ? qmin : t;
  t = t > qmax ? qmax : t;
  return s * (t - zf);  // t - zf is an exact small integer, as float(q - z) in dequantize
}

inline float quantize_odd_one(float x, float s, float two_s, float cmin, float cmax) {
  constexpr float lim = quant::kRoundBoundedLimit;
  float v = x / two_s - 0.5f;
  v = v < -lim ? -lim : v;
  v = v > lim ? lim : v;
  float t = quant::round_half_even_bounded(v);
  t = std::isnan(t) ? 0.0f : t;
  t = t < cmin ? cmin : t;
  t = t > cmax ? cmax : t;
  return s * (2.0f * t + 1.0f);
}
}  // namespace

void fake_quantize_integer(const float* x, float* y, int64_t n, float s, int32_t z, float qmin, float qmax) {
  const float zf = static_cast<float>(z);
  for (int64_t j = 0; j < n; ++j) y[j] = quantize_integer_one(x[j], s, zf, qmin, qmax);
}

void fake_quantize_odd(const float* x, float* y, int64_t n, float s, float cmin, float cmax) {
  const float two_s = 2.0f * s;
  for (int64_t j = 0; j < n; ++j) y[j] = quantize_odd_one(x[j], s, two_s, cmin, cmax);
}

void straight_through_gradient(const float* x, const float* g, float* dx, int64_t n, float s, float zf, float qmin,
                               float qmax) {
  for (int64_t j = 0; j < n; ++j) {
    const float w = x[j] / s + zf;
    const float gj = g[j];  // loaded unconditionally so that the select vectorises
    dx[j] = (w >= qmin && w <= qmax) ? gj : 0.0f;
  }
}

// ---- per-token fake quantization ----------------------------------------------------------
namespace {
// max |x[j]| over the row, NaN ignored, as quant::token_scale's loop, taken on the bit patterns:
// for non-negative floats that are not NaN the order of the patterns as integers is the order
// of the values (and equal values have equal patterns), so the integer maximum is the float
// maximum bit for bit. NaN patterns (above +inf's) count as 0. GCC vectorises this integer
// reduction; the float compare-and-select of token_scale it leaves scalar.
inline float abs_max(const float* x, int64_t n) {
  constexpr int32_t kAbs = 0x7FFFFFFF, kInf = 0x7F800000;
  int32_t m = 0;
  for (int64_t j = 0; j < n; ++j) {
    int32_t b;
    std::memcpy(&b, x + j, sizeof b);
    b &= kAbs;
    b = b > kInf ? 0 : b;
    m = b > m ? b : m;
  }
  float f;
  std::memcpy(&f, &m, sizeof f);
  return f;
}
}  // namespace

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
__attribute__((target_clones("arch=x86-64-v4", "avx2", "default")))
#endif
float fake_quantize_token_row(const float* x, float* y, int64_t n) {
  constexpr float qmax = 127.0f;  // quant::kTokenQMax
  const float m = abs_max(x, n);
  const float s = m > 0.0f ? m / qmax : 1.0f;
  // quantize_integer_one with z = 0 is s * q for the code q that quant::quantize_integer gives:
  // the bounded rounding returns +0, never -0, so t - 0 is float(q) bit for bit. |x / s| <= 127
  // up to rounding; what lies beyond the bounded range (x / 0 when m / 127 underflows) clamps to
  // +-127 on both paths, and NaN gives q = 0 on both.
  for (int64_t j = 0; j < n; ++j) y[j] = quantize_integer_one(x[j], s, 0.0f, -qmax, qmax);
  return s;
}

// ---- counter-based normal numbers -------------------------------------------------------
// No FMA contraction here (GCC contracts a * b + c by default in C++ where the target has FMA,
// and the AVX2 / AVX-512 clones below have it): every clone must give the scalar function's bits.
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC push_options
#pragma GCC optimize("fp-contract=off")
#endif
namespace {

inline uint64_t mix64(uint64_t z) {  // splitmix64's output function
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// ln(u) for u in (0, 1] (normal floats): u = m 2^e with m in [sqrt(1/2), sqrt(2)), then Cephes'
// logf polynomial for ln(1 + f), f = m - 1 (about 1 ulp).
inline float log_unit(float u) {
  int32_t bits;
  std::memcpy(&bits, &u, 4);
  float e = static_cast<float>((bits >> 23) - 127);
  const int32_t mbits = (bits & 0x7FFFFF) | 0x3F800000;
  float m;
  std::memcpy(&m, &mbits, 4);
  const bool big = m > 1.41421356f;
  m = big ? m * 0.5f : m;
  e = big ? e + 1.0f : e;
  const float f = m - 1.0f;
  const float z = f * f;
  float y = 7.0376836292E-2f;
  y = y * f - 1.1514610310E-1f;
  y = y * f + 1.1676998740E-1f;
  y = y * f - 1.2420140846E-1f;
  y = y * f + 1.4249322787E-1f;
  y = y * f - 1.6668057665E-1f;
  y = y * f + 2.0000714765E-1f;
  y = y * f - 2.4999993993E-1f;
  y = y * f + 3.3333331174E-1f;
  y = y * f * z;
  y = y + -2.12194440e-4f * e;
  y = y + -0.5f * z;
  return (f + y) + 0.693359375f * e;
}

// cos(2 pi t) for t in [0, 1): cos(2 pi t) = -cos(2 pi a), a = |t - 1/2| in [0, 1/2], folded to
// [0, 1/4] by cos(2 pi a) = -cos(2 pi (1/2 - a)); Taylor to x^12 on [0, pi/2] (error < 1e-8).
inline float cos_turn(float t) {
  const float a = std::fabs(t - 0.5f);
  const bool upper = a > 0.25f;
  const float b = upper ? 0.5f - a : a;
  const float x = 6.28318530718f * b;
  const float z = x * x;
  float c = 1.0f / 479001600.0f;
  c = c * z - 1.0f / 3628800.0f;
  c = c * z + 1.0f / 40320.0f;
  c = c * z - 1.0f / 720.0f;
  c = c * z + 1.0f / 24.0f;
  c = c * z - 0.5f;
  c = c * z + 1.0f;
  return upper ? c : -c;
}

// sqrt(t) for t >= 0 without libm (which would keep the loop scalar for errno): three Newton
// steps on 1/sqrt(t) from the bit-level estimate, then t * (1/sqrt(t)).
inline float sqrt_nonneg(float t) {
  t = t < 1e-30f ? 1e-30f : t;
  int32_t b;
  std::memcpy(&b, &t, 4);
  b = 0x5F375A86 - (b >> 1);
  float y;
  std::memcpy(&y, &b, 4);
  const float h = 0.5f * t;
  y = y * (1.5f - h * y * y);
  y = y * (1.5f - h * y * y);
  y = y * (1.5f - h * y * y);
  return t * y;
}

inline float normal_at(uint64_t key, uint64_t i) {
  const uint64_t h = mix64(key + (i + 1) * 0x9E3779B97F4A7C15ull);
  const float u1 = static_cast<float>(static_cast<int32_t>(static_cast<uint32_t>(h >> 40) + 1u)) * 0x1p-24f;
  const float u2 = static_cast<float>(static_cast<int32_t>(static_cast<uint32_t>(h >> 8) & 0xFFFFFFu)) * 0x1p-24f;
  return sqrt_nonneg(-2.0f * log_unit(u1)) * cos_turn(u2);
}

}  // namespace

float counter_normal(uint64_t key, uint64_t index) { return normal_at(key, index); }

// Function multiversioning: GCC compiles one clone per target and picks one at load time (the
// build itself targets baseline x86-64). The clones compute the same bits (see above).
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
__attribute__((target_clones("arch=x86-64-v4", "avx2", "default")))
#endif
void add_counter_normal(const float* x, float* y, int64_t n, float sigma, uint64_t key, uint64_t first) {
  for (int64_t j = 0; j < n; ++j) y[j] = x[j] + sigma * normal_at(key, first + static_cast<uint64_t>(j));
}

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
__attribute__((target_clones("arch=x86-64-v4", "avx2", "default")))
#endif
void noisy_fake_quantize_integer(const float* x, float* xn, float* y, int64_t n, float sigma, uint64_t key,
                                 uint64_t first, float s, int32_t z, float qmin, float qmax) {
  const float zf = static_cast<float>(z);
  for (int64_t j = 0; j < n; ++j) {
    const float v = x[j] + sigma * normal_at(key, first + static_cast<uint64_t>(j));
    xn[j] = v;
    y[j] = quantize_integer_one(v, s, zf, qmin, qmax);
  }
}

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
__attribute__((target_clones("arch=x86-64-v4", "avx2", "default")))
#endif
void noisy_fake_quantize_odd(const float* x, float* xn, float* y, int64_t n, float sigma, uint64_t key,
                             uint64_t first, float s, float cmin, float cmax) {
  const float two_s = 2.0f * s;
  for (int64_t j = 0; j < n; ++j) {
    const float v = x[j] + sigma * normal_at(key, first + static_cast<uint64_t>(j));
    xn[j] = v;
    y[j] = quantize_odd_one(v, s, two_s, cmin, cmax);
  }
}
#if !defined(__clang__) && defined(__GNUC__)
#pragma GCC pop_options
#endif

}  // namespace lowbit::qat::kernels
