// Depthwise 2-D convolution (groups = in_channels = out_channels), NHWC, AVX2, exact.
//
// Two horizontal taps per vpmaddwd. Per item the kernel first builds a padded image of
// horizontally adjacent pairs, P[hp][wp][c] = (x'[hp][wp][c], x'[hp][wp + d][c]) as two int16 in
// one int32 (d = dilation_w: the columns of taps kw and kw + 1), where x' = x - z_x inside the
// input and 0 in the padding (so padding adds nothing, as in ref::conv2d). Kernel row kh reads
// padded row oh * stride_h + kh * dilation_h; pair j of it column ow * stride_w + 2 j d. The weights are packed the same way along each kernel row, (w[kh][2j],
// w[kh][2j + 1]) with 0 past the row's end, and vpmaddwd of one P load and one weight pair gives
// x'[kw] * w[kw] + x'[kw + 1] * w[kw + 1] for 8 channels in int32: no saturation (|x'| <= 255,
// |w| <= 255), and no shuffle in the inner loop (each pair is built once and read by every output
// pixel whose window covers it). The int32 sum is ref::conv2d's, term for term.
#include <immintrin.h>

#include <algorithm>

#include "runtime/kernels/depthwise_kernels.h"
#include "runtime/kernels/gemm_output_avx2.h"

namespace lowbit::runtime {

using namespace avx2;

namespace {

// Bias, then the int32 result or the requantized bytes of channels [c, c + 8).
inline void store8(__m256i acc, int32_t c, int64_t row, const GemmOutput& o, const RequantParams& rq) {
  acc = _mm256_add_epi32(acc, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(o.bias + c)));
  if (o.y_i32 != nullptr) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(o.y_i32 + row * o.ldy + c), acc);
  } else if (rq.vector_ok) {
    const __m256i y = requantize8(acc, rq);
    const __m128i p16 = _mm_packus_epi32(_mm256_castsi256_si128(y), _mm256_extracti128_si256(y, 1));
    _mm_storel_epi64(reinterpret_cast<__m128i*>(o.y_u8 + row * o.ldy + c), _mm_packus_epi16(p16, p16));
  } else {
    alignas(32) int32_t v[8];
    _mm256_store_si256(reinterpret_cast<__m256i*>(v), acc);
    for (int j = 0; j < 8; ++j)
      o.y_u8[row * o.ldy + c + j] = static_cast<uint8_t>(
          quant::requantize(v[j], {o.multiplier[c + j], o.shift[c + j]}, o.zero_point, o.qmin, o.qmax));
  }
}

// P for one item: padded rows [0, hp_n), pair columns [0, wp_n) of the input padded by
// (pad_h, pad_w), the second of a pair dilation_w columns after the first.
void build_pairs(const Op& op, const uint8_t* x, ValueShape in, int32_t zx, int64_t hp_n, int64_t wp_n, int32_t* p) {
  const int64_t C = in.c, n = wp_n * C, dC = int64_t{op.dilation_w} * C;  // pairs per row, pair distance
  // One padded row of x' (int16), with dilation_w extra zero columns and 16 elements of slack for the vector loads.
  thread_local std::vector<int16_t> row;
  row.assign(static_cast<size_t>(n + dC + 16), int16_t{0});
  const __m256i z = _mm256_set1_epi16(static_cast<int16_t>(zx));
  for (int64_t hp = 0; hp < hp_n; ++hp) {
    const int64_t ih = hp - op.pad_h;
    int32_t* out = p + hp * n;
    if (ih < 0 || ih >= in.h) {  // a padding row: all pairs 0
      std::fill(out, out + n, 0);
      continue;
    }
    const uint8_t* src = x + ih * in.w * C;
    int16_t* dst = row.data() + int64_t{op.pad_w} * C;
    const int64_t len = int64_t{in.w} * C, len16 = len / 16 * 16;
    for (int64_t i = 0; i < len16; i += 16)
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + i),
                          _mm256_sub_epi16(_mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i))), z));
    for (int64_t i = len16; i < len; ++i) dst[i] = static_cast<int16_t>(src[i] - zx);
    const int16_t* r = row.data();
    const int64_t n16 = n / 16 * 16;
    for (int64_t i = 0; i < n16; i += 16) {  // (r[i + k], r[i + dC + k]) for k < 16, in order
      const __m256i a = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(r + i));
      const __m256i b = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(r + i + dC));
      const __m256i lo = _mm256_unpacklo_epi16(a, b), hi = _mm256_unpackhi_epi16(a, b);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + i), _mm256_permute2x128_si256(lo, hi, 0x20));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + i + 8), _mm256_permute2x128_si256(lo, hi, 0x31));
    }
    for (int64_t i = n16; i < n; ++i) out[i] = pack_int16_pair(r[i], r[i + dC]);
  }
}

}  // namespace

void u8_dwconv_s32_fxp_8c__avx2(const Op& op, const int32_t* w, const uint8_t* x, int64_t batch, ValueShape in,
                                int32_t zx, ValueShape out, const GemmOutput& o) {
  const int32_t C = in.c, C8 = C / 8 * 8;
  const int32_t KH = op.kernel_h, pw = (op.kernel_w + 1) / 2, sh = op.stride_h, sw = op.stride_w;
  const int64_t dh = op.dilation_h, dw = op.dilation_w;
  // the padded input rows the output rows read (a stride may leave a bottom margin unread)
  const int64_t hp_n = int64_t{out.h - 1} * sh + (KH - 1) * dh + 1, wp_n = in.w + 2 * int64_t{op.pad_w};
  std::vector<RequantParams> rq(static_cast<size_t>(C8 / 8));
  if (o.y_i32 == nullptr)
    for (int32_t c = 0; c < C8; c += 8) rq[c / 8] = requant_params(o, c, 8);
  thread_local std::vector<int32_t> pairs;  // P of the current item (kept: its size repeats)
  pairs.resize(static_cast<size_t>(hp_n * wp_n * C));
  std::vector<int32_t> wv_store(static_cast<size_t>(KH * pw) * 8 + 8);  // this block's weights, 32-byte aligned
  __m256i* wv = reinterpret_cast<__m256i*>((reinterpret_cast<uintptr_t>(wv_store.data()) + 31) / 32 * 32);
  for (int64_t n = 0; n < batch; ++n) {
    build_pairs(op, x + n * in.size(), in, zx, hp_n, wp_n, pairs.data());
    for (int32_t oh = 0; oh < out.h; ++oh) {
      const int32_t* prow = pairs.data() + int64_t{oh} * sh * wp_n * C;
      const int64_t orow0 = (n * out.h + oh) * out.w;
      for (int32_t c = 0; c < C8; c += 8) {
        for (int32_t t = 0; t < KH * pw; ++t)
          wv[t] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + int64_t{t} * C + c));
        for (int32_t ow = 0; ow < out.w; ++ow) {
          const int32_t* base = prow + int64_t{ow} * sw * C + c;
          __m256i acc = _mm256_setzero_si256();
          for (int32_t kh = 0; kh < KH; ++kh) {
            const int32_t* r = base + kh * dh * wp_n * C;
            for (int32_t j = 0; j < pw; ++j)
              acc = _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(r + 2 * j * dw * C)),
                                                            wv[kh * pw + j]));
          }
          store8(acc, c, orow0 + ow, o, rq[c / 8]);
        }
      }
      for (int32_t c = C8; c < C; ++c) {  // channels past the last multiple of 8
        for (int32_t ow = 0; ow < out.w; ++ow) {
          const int32_t* base = prow + int64_t{ow} * sw * C + c;
          uint32_t a = static_cast<uint32_t>(o.bias[c]);
          for (int32_t kh = 0; kh < KH; ++kh)
            for (int32_t j = 0; j < pw; ++j) {
              const int32_t xp = base[(kh * dh * wp_n + 2 * j * dw) * C], wp = w[(int64_t{kh} * pw + j) * C + c];
              a += static_cast<uint32_t>(static_cast<int16_t>(xp & 0xffff) * static_cast<int16_t>(wp & 0xffff) +
                                         (xp >> 16) * (wp >> 16));
            }
          const int64_t orow = orow0 + ow;
          if (o.y_i32 != nullptr) {
            o.y_i32[orow * o.ldy + c] = static_cast<int32_t>(a);
          } else {
            o.y_u8[orow * o.ldy + c] = static_cast<uint8_t>(quant::requantize(
                static_cast<int32_t>(a), {o.multiplier[c], o.shift[c]}, o.zero_point, o.qmin, o.qmax));
          }
        }
      }
    }
  }
}

}  // namespace lowbit::runtime
