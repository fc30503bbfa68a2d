#include <vector>

#include "quant/requantize.h"
#include "runtime/kernels/ref_kernels.h"

namespace lowbit::runtime::ref {
namespace {

std::vector<int32_t> weight_values(const Op& op) {
  std::vector<int32_t> w(static_cast<size_t>(op.weight_count()));
  for (size_t i = 0; i < w.size(); ++i) w[i] = op.weight.value(i);
  return w;
}

// Output stage shared by conv2d and linear.
void store(const Op& op, int32_t o, uint32_t acc, size_t index, uint8_t* y_u8, int32_t* y_i32) {
  const int32_t a = static_cast<int32_t>(acc);
  if (op.output_layer) {
    y_i32[index] = a;
  } else {
    y_u8[index] = static_cast<uint8_t>(quant::requantize(a, op.multipliers[o], op.out.zero_point, op.out.qmin, op.out.qmax));
  }
}

}  // namespace

void conv2d(const Op& op, const uint8_t* x, int64_t batch, ValueShape in, int32_t zx, ValueShape out, uint8_t* y_u8,
            int32_t* y_i32) {
  const std::vector<int32_t> w = weight_values(op);
  const int32_t cg = op.in_channels / op.groups, og = op.out_channels / op.groups;
  for (int64_t n = 0; n < batch; ++n) {
    for (int32_t oh = 0; oh < out.h; ++oh) {
      for (int32_t ow = 0; ow < out.w; ++ow) {
        for (int32_t o = 0; o < op.out_channels; ++o) {
          const int32_t g = o / og;
          uint32_t acc = static_cast<uint32_t>(op.bias_q[o]);
          for (int32_t c = 0; c < cg; ++c) {
            for (int32_t kh = 0; kh < op.kernel_h; ++kh) {
              for (int32_t kw = 0; kw < op.kernel_w; ++kw) {
                const int32_t ih = oh * op.stride_h - op.pad_h + kh * op.dilation_h,
                              iw = ow * op.stride_w - op.pad_w + kw * op.dilation_w;
                const bool inside = ih >= 0 && ih < in.h && iw >= 0 && iw < in.w;
                const int32_t xv =
                    inside ? x[((n * in.h + ih) * in.w + iw) * in.c + g * cg + c] : zx;  // pad value = zero point
                const int32_t wv = w[((static_cast<size_t>(o) * cg + c) * op.kernel_h + kh) * op.kernel_w + kw];
                acc += static_cast<uint32_t>((xv - zx) * wv);
              }
            }
          }
          store(op, o, acc, static_cast<size_t>(((n * out.h + oh) * out.w + ow) * out.c + o), y_u8, y_i32);
        }
      }
    }
  }
}

void linear(const Op& op, const uint8_t* x, int64_t batch, int32_t zx, uint8_t* y_u8, int32_t* y_i32) {
  const std::vector<int32_t> w = weight_values(op);
  const int32_t I = op.in_channels, O = op.out_channels;
  for (int64_t n = 0; n < batch; ++n) {
    for (int32_t o = 0; o < O; ++o) {
      uint32_t acc = static_cast<uint32_t>(op.bias_q[o]);
      for (int32_t k = 0; k < I; ++k) acc += static_cast<uint32_t>((x[n * I + k] - zx) * w[static_cast<size_t>(o) * I + k]);
      store(op, o, acc, static_cast<size_t>(n * O + o), y_u8, y_i32);
    }
  }
}

}  // namespace lowbit::runtime::ref
