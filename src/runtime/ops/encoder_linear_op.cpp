#include "runtime/ops/encoder_linear_op.h"

#include <cmath>

#include "base/error.h"
#include "quant/quantize.h"

namespace lowbit::runtime::ops {

float gelu(float x) { return 0.5f * x * (1.0f + std::erf(x * static_cast<float>(M_SQRT1_2))); }

EncoderLinearOp::EncoderLinearOp(const EncoderLinear& l, Isa isa) : l_(&l), integer_(l.integer()) {
  if (integer_) {
    gemm_ = StaticQuantGemm(l.w, l.input_grid.zero_point, isa);
    return;
  }
  if (!l.quantized) {
    weight_ = l.weight;
    return;
  }
  const std::vector<int8_t> v = l.w.values();
  const int32_t in = l.in_features, groups = l.w.groups();
  weight_.resize(v.size());
  for (int32_t o = 0; o < l.out_features; ++o)
    for (int32_t k = 0; k < in; ++k) {
      const size_t i = static_cast<size_t>(o) * in + k;
      weight_[i] = l.w.scales[static_cast<size_t>(o) * groups + k / l.w.group_size] * static_cast<float>(v[i]);
    }
}

std::string EncoderLinearOp::kernel_name() const { return integer_ ? gemm_.kernel_name() : "float scalar"; }

void EncoderLinearOp::run(const float* x, const uint8_t* codes, int64_t rows, float* y, uint8_t* y_codes,
                          std::vector<int32_t>& acc_) const {
  const EncoderLinear& l = *l_;
  const int32_t in = l.in_features, out = l.out_features;
  const float* bias = l.bias.empty() ? nullptr : l.bias.data();
  if (integer_) {
    LOWBIT_CHECK(codes != nullptr, "encoder linear: an integer layer needs its input codes");
    const int32_t groups = gemm_.groups();
    acc_.resize(static_cast<size_t>(rows) * out * groups);
    gemm_.run(codes, rows, acc_.data());
    const float sx = l.input_grid.scale;
    for (int64_t m = 0; m < rows; ++m)
      for (int32_t o = 0; o < out; ++o) {
        const int32_t* a = acc_.data() + (m * out + o) * groups;
        float sum = 0.0f;
        for (int32_t g = 0; g < groups; ++g)
          sum += l.w.scales[static_cast<size_t>(o) * groups + g] * static_cast<float>(a[g]);
        y[m * out + o] = sx * sum + (bias ? bias[o] : 0.0f);
      }
  } else {
    for (int64_t m = 0; m < rows; ++m)
      for (int32_t o = 0; o < out; ++o) {
        const float* wo = weight_.data() + static_cast<size_t>(o) * in;
        const float* xm = x + m * in;
        float s = 0.0f;
        for (int32_t k = 0; k < in; ++k) s += xm[k] * wo[k];
        y[m * out + o] = s + (bias ? bias[o] : 0.0f);
      }
  }
  const int64_t n = rows * out;
  if (l.gelu)
    for (int64_t i = 0; i < n; ++i) y[i] = gelu(y[i]);
  if (l.has_output_grid) {
    const ActGrid& g = l.output_grid;
    for (int64_t i = 0; i < n; ++i) {
      const int32_t q = quant::quantize_integer(y[i], g.scale, g.zero_point, g.qmin, g.qmax);
      y[i] = quant::dequantize(q, g.scale, g.zero_point);
      if (y_codes) y_codes[i] = static_cast<uint8_t>(q);
    }
  }
}

}  // namespace lowbit::runtime::ops
