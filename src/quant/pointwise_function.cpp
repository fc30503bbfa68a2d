#include "quant/pointwise_function.h"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "base/error.h"
#include "quant/quantize.h"

namespace lowbit::quant {

double PointwiseFunction::operator()(double x) const {
  switch (kind) {
    case PointwiseKind::LeakyRelu: return x >= 0.0 ? x : static_cast<double>(alpha) * x;
    case PointwiseKind::Sigmoid: return 1.0 / (1.0 + std::exp(-x));
    case PointwiseKind::HardSigmoid: return std::clamp(static_cast<double>(alpha) * x + static_cast<double>(beta), 0.0, 1.0);
    case PointwiseKind::HardSwish: return x * std::clamp(x / 6.0 + 0.5, 0.0, 1.0);
    case PointwiseKind::Tanh: return std::tanh(x);
    case PointwiseKind::Silu: return x / (1.0 + std::exp(-x));
    case PointwiseKind::Affine: return static_cast<double>(alpha) * x + static_cast<double>(beta);
  }
  return x;
}

std::string PointwiseFunction::name() const {
  switch (kind) {
    case PointwiseKind::LeakyRelu: return "leaky_relu";
    case PointwiseKind::Sigmoid: return "sigmoid";
    case PointwiseKind::HardSigmoid: return "hard_sigmoid";
    case PointwiseKind::HardSwish: return "hard_swish";
    case PointwiseKind::Tanh: return "tanh";
    case PointwiseKind::Silu: return "silu";
    case PointwiseKind::Affine: return "affine";
  }
  return "unknown";
}

std::string PointwiseFunction::describe() const {
  std::ostringstream s;
  s << name();
  if (kind == PointwiseKind::LeakyRelu) s << "(alpha=" << alpha << ")";
  if (kind == PointwiseKind::HardSigmoid || kind == PointwiseKind::Affine) s << "(alpha=" << alpha << ", beta=" << beta << ")";
  return s.str();
}

PointwiseFunction pointwise_function(const std::string& name, float alpha, float beta) {
  for (PointwiseKind k : {PointwiseKind::LeakyRelu, PointwiseKind::Sigmoid, PointwiseKind::HardSigmoid,
                          PointwiseKind::HardSwish, PointwiseKind::Tanh, PointwiseKind::Silu, PointwiseKind::Affine}) {
    PointwiseFunction f{k, alpha, beta};
    if (f.name() == name) return f;
  }
  throw Error("unknown element-wise function '" + name +
              "' (known: leaky_relu, sigmoid, hard_sigmoid, hard_swish, tanh, silu, affine)");
}

std::array<uint8_t, 256> make_pointwise_table(const PointwiseFunction& f, float in_scale, int32_t in_zero_point,
                                              float out_scale, int32_t out_zero_point, int32_t out_qmin, int32_t out_qmax) {
  LOWBIT_CHECK(out_qmin >= 0 && out_qmax <= 255 && out_qmin <= out_qmax,
               "lookup table: output code range [" + std::to_string(out_qmin) + ", " + std::to_string(out_qmax) +
                   "] is not within uint8");
  std::array<uint8_t, 256> table{};
  for (int32_t q = 0; q < 256; ++q) {
    const float x = dequantize(q, in_scale, in_zero_point);
    const float y = static_cast<float>(f(static_cast<double>(x)));
    table[static_cast<size_t>(q)] = static_cast<uint8_t>(quantize_integer(y, out_scale, out_zero_point, out_qmin, out_qmax));
  }
  return table;
}

std::array<uint8_t, 256> make_requantize_table(float in_scale, int32_t in_zero_point, float out_scale,
                                               int32_t out_zero_point, int32_t out_qmin, int32_t out_qmax) {
  LOWBIT_CHECK(out_qmin >= 0 && out_qmax <= 255 && out_qmin <= out_qmax,
               "requantization table: output code range [" + std::to_string(out_qmin) + ", " +
                   std::to_string(out_qmax) + "] is not within uint8");
  std::array<uint8_t, 256> table{};
  for (int32_t q = 0; q < 256; ++q)
    table[static_cast<size_t>(q)] = static_cast<uint8_t>(
        quantize_integer(dequantize(q, in_scale, in_zero_point), out_scale, out_zero_point, out_qmin, out_qmax));
  return table;
}

}  // namespace lowbit::quant
