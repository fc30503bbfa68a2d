#include <algorithm>
#include <vector>

#include "quant/add_requantize.h"
#include "quant/requantize.h"
#include "runtime/kernels/ref_kernels.h"

namespace lowbit::runtime::ref {

void max_pool(const Op& op, const uint8_t* x, int64_t batch, ValueShape in, ValueShape out, uint8_t* y) {
  for (int64_t n = 0; n < batch; ++n)
    for (int32_t oh = 0; oh < out.h; ++oh)
      for (int32_t ow = 0; ow < out.w; ++ow)
        for (int32_t c = 0; c < in.c; ++c) {
          int32_t best = -1;
          for (int32_t kh = 0; kh < op.kernel_h; ++kh)
            for (int32_t kw = 0; kw < op.kernel_w; ++kw) {
              const int32_t ih = oh * op.stride_h - op.pad_h + kh, iw = ow * op.stride_w - op.pad_w + kw;
              if (ih < 0 || ih >= in.h || iw < 0 || iw >= in.w) continue;
              best = std::max<int32_t>(best, x[((n * in.h + ih) * in.w + iw) * in.c + c]);
            }
          // best >= 0: padding < kernel guarantees at least one element inside each window.
          y[((n * out.h + oh) * out.w + ow) * out.c + c] = static_cast<uint8_t>(best);
        }
}

void avg_pool(const Op& op, const uint8_t* x, int64_t batch, ValueShape in, const ActQParams& in_q, ValueShape out,
              uint8_t* y) {
  const bool global = op.kind == OpKind::GlobalAvgPool;
  const int32_t kh_n = global ? in.h : op.kernel_h, kw_n = global ? in.w : op.kernel_w;
  const int32_t sh = global ? 1 : op.stride_h, sw = global ? 1 : op.stride_w;
  const int32_t ph = global ? 0 : op.pad_h, pw = global ? 0 : op.pad_w;
  const int32_t zx = in_q.zero_point;
  for (int64_t n = 0; n < batch; ++n)
    for (int32_t oh = 0; oh < out.h; ++oh)
      for (int32_t ow = 0; ow < out.w; ++ow)
        for (int32_t c = 0; c < in.c; ++c) {
          int32_t sum = 0, count = 0;
          for (int32_t kh = 0; kh < kh_n; ++kh)
            for (int32_t kw = 0; kw < kw_n; ++kw) {
              const int32_t ih = oh * sh - ph + kh, iw = ow * sw - pw + kw;
              if (ih < 0 || ih >= in.h || iw < 0 || iw >= in.w) continue;
              sum += x[((n * in.h + ih) * in.w + iw) * in.c + c] - zx;
              ++count;
            }
          const auto m = quant::make_fixed_point_multiplier(double(in_q.scale) / (double(op.out.scale) * count));
          y[((n * out.h + oh) * out.w + ow) * out.c + c] =
              static_cast<uint8_t>(quant::requantize(sum, m, op.out.zero_point, op.out.qmin, op.out.qmax));
        }
}

void add(const Op& op, const uint8_t* a, const ActQParams& qa, const uint8_t* b, const ActQParams& qb, int64_t n,
         uint8_t* y) {
  const auto m = quant::make_add_multipliers(double(qa.scale) / op.out.scale, double(qb.scale) / op.out.scale);
  for (int64_t i = 0; i < n; ++i)
    y[i] = static_cast<uint8_t>(quant::requantize_add(a[i] - qa.zero_point, b[i] - qb.zero_point, m, op.out.zero_point,
                                                      op.out.qmin, op.out.qmax));
}

void flatten(const uint8_t* x, int64_t batch, ValueShape in, uint8_t* y) {
  const int64_t hw = int64_t{in.h} * in.w, size = hw * in.c;
  for (int64_t n = 0; n < batch; ++n)
    for (int64_t p = 0; p < hw; ++p)
      for (int32_t c = 0; c < in.c; ++c) y[n * size + c * hw + p] = x[n * size + p * in.c + c];
}

void lookup(const uint8_t* table, const uint8_t* x, int64_t n, uint8_t* y) {
  for (int64_t i = 0; i < n; ++i) y[i] = table[x[i]];
}

}  // namespace lowbit::runtime::ref
