// The in-memory encoder image model (vit-tiny, models/vit.h on the LibTorch side): what the
// converter fills (convert/to_encoder.h), what an encoder .lbq file holds (format version 2, model
// kind 3 "encoder", docs/transformers.md) and what an EncoderSession runs.
//
//   codes   = quantize(image, 1/255, 0)                        the QAT input quantizer
//   x       = PatchEmbed(patches) + position                   [tokens, width]
//   per layer (pre-norm, residual):
//     h = LayerNorm(x; norm1)
//     x = Q_add1(x + W_o . Attention(W_q h, W_k h, W_v h))      non-causal, multi-head, no RoPE
//     h = LayerNorm(x; norm2)
//     x = Q_add2(x + W_fc2 . GELU(W_fc1 h))
//   logits  = W_head . LayerNorm(mean over tokens of x; norm_f)
//
// Every linear (patch embedding included) is an EncoderLinear. It reproduces what QAT simulated
// for that node (qat/quantized_layers.h, QLinearAct / QConvBnAct):
//   * input on a static grid (the producer's output quantizer: the image's 1/255 grid for the patch
//     embedding, fc1's output quantizer for fc2) and quantized weights: an INTEGER GEMM of the
//     uint8 input codes (minus the zero point) by the weight values, one int32 accumulator per
//     weight group, then y = s_x * sum_g s_w[o, g] * acc[o, g] + bias[o] in float;
//   * float input (a LayerNorm output, the attention output): the quantized weights dequantized
//     (s_w * w, exactly the fake-quantized weights LibTorch multiplies) times the float input,
//     + bias, in float (QAT quantizes no activation there, so neither does the runtime);
//   * then GELU (erf form, as torch::gelu) when the node has it, then its static output quantizer
//     (quant::fake_quantize: the codes q = clamp(round_half_even(y / s) + z) and the value s (q - z)).
// The bias is the one the QAT model adds in evaluation (for an integer-input linear with
// per-channel weights: a whole number of accumulator units, quant::quantize_bias).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "runtime/decoder_model.h"  // QuantLinear

namespace lowbit::runtime {

// A static per-tensor activation grid: code q in [qmin, qmax] (within [0, 255]), value s * (q - z).
struct ActGrid {
  float scale = 1.0f;
  int32_t zero_point = 0;
  int32_t qmin = 0, qmax = 255;
  bool operator==(const ActGrid& o) const {
    return scale == o.scale && zero_point == o.zero_point && qmin == o.qmin && qmax == o.qmax;
  }
  bool operator!=(const ActGrid& o) const { return !(*this == o); }
  std::string describe() const;  // e.g. "u4 s=0.0123 z=3"
};

struct EncoderLinear {
  int32_t in_features = 0, out_features = 0;
  bool quantized = true;      // weights: `w` (codes + scales); false: `weight` in float
  QuantLinear w;              // when quantized
  std::vector<float> weight;  // [out, in] when !quantized
  std::vector<float> bias;    // [out], or empty (no bias)
  bool gelu = false;          // GELU after the bias
  bool has_input_grid = false;   // the input lies on `input_grid` (integer GEMM when quantized)
  ActGrid input_grid;
  bool has_output_grid = false;  // fake-quantize the output onto `output_grid`
  ActGrid output_grid;

  bool integer() const { return quantized && has_input_grid; }
};

struct EncoderLayer {
  std::vector<float> norm1_w, norm1_b, norm2_w, norm2_b;  // [width] LayerNorm scale and shift
  EncoderLinear q, k, v, o;                               // width -> width
  EncoderLinear fc1;                                      // width -> hidden (GELU)
  EncoderLinear fc2;                                      // hidden -> width
  bool has_add1_grid = false, has_add2_grid = false;      // residual adds' output quantizers
  ActGrid add1_grid, add2_grid;
};

struct EncoderModel {
  std::string name;
  int32_t channels = 1, image_size = 28, patch = 4;
  int32_t width = 0, heads = 0, hidden = 0, classes = 10;
  float norm_eps = 1e-5f;
  bool input_quantized = true;  // the image is quantized onto `input_grid` (QAT's input quantizer)
  ActGrid input_grid;           // uint8, 1/255, 0
  EncoderLinear patch_embed;    // channels * patch * patch -> width (k = (c * patch + kh) * patch + kw)
  std::vector<float> position;  // [tokens, width]
  std::vector<EncoderLayer> layers;
  std::vector<float> norm_f_w, norm_f_b;  // [width]
  EncoderLinear head;                      // width -> classes (no output grid: the logits)

  int32_t grid_side() const { return patch > 0 ? image_size / patch : 0; }
  int32_t tokens() const { return grid_side() * grid_side(); }
  int32_t head_size() const { return heads > 0 ? width / heads : 0; }
  int32_t patch_features() const { return channels * patch * patch; }
};

// Checks every size, count, range and value; throws lowbit::Error naming `where`, the layer and the
// field.
void validate_encoder_model(const EncoderModel& m, const std::string& where = "encoder model");

// Parameters (weights, biases, norms, position embedding).
int64_t encoder_parameter_count(const EncoderModel& m);

// Text table: one row per op (kind, float or integer, weights, kernel) and totals. `gemm`: the
// integer GEMM kernel names a session uses (EncoderSession::kernel_names), or empty.
std::string describe_encoder_model(const EncoderModel& m, const std::vector<std::string>& kernels = {});

}  // namespace lowbit::runtime
