// One linear of an encoder model (encoder_model.h, EncoderLinear), prepared for a kernel level:
//   integer (input on a static grid, quantized weights): acc from StaticQuantGemm, then
//       y[m, o] = s_x * sum_g s_w[o, g] * (float)acc[m, o, g] + bias[o]   (float32, g increasing);
//   float: y[m, o] = sum_k x[m, k] * W[o, k] + bias[o] (k increasing), W the dequantized weights
//       s_w[o, g] * w[o, k] (the fake-quantized weights of QAT) or the float weights;
//   then GELU 0.5 x (1 + erf(x / sqrt(2))) if the layer has it, then the output grid's fake
//   quantization (quant::quantize_integer, quant::dequantize), which also gives the codes the
//   next integer linear reads.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "runtime/encoder_model.h"
#include "runtime/ops/static_quant_gemm.h"

namespace lowbit::runtime::ops {

float gelu(float x);  // the erf form, as torch::gelu's default

class EncoderLinearOp {
 public:
  EncoderLinearOp() = default;
  EncoderLinearOp(const EncoderLinear& l, Isa isa);
  // y [rows, out] from x [rows, in] (float) or, for an integer layer, from `codes` [rows, in].
  // `y_codes` (optional, layers with an output grid): the output codes [rows, out].
  // `acc`: scratch for the integer accumulators (one per thread; the op itself is read only).
  void run(const float* x, const uint8_t* codes, int64_t rows, float* y, uint8_t* y_codes,
           std::vector<int32_t>& acc) const;
  bool integer() const { return integer_; }
  std::string kernel_name() const;

 private:
  const EncoderLinear* l_ = nullptr;  // the model's layer (the model outlives the op)
  bool integer_ = false;
  StaticQuantGemm gemm_;
  std::vector<float> weight_;  // float path: [out, in]
};

}  // namespace lowbit::runtime::ops
