// The in-memory decoder language model (gpt-tiny, models/gpt.h on the LibTorch side): what the
// converter fills, what a decoder .lbq file holds (format version 2, model kind "decoder",
// docs/transformers.md) and what a DecoderSession runs.
//
// Per layer (pre-norm, residual stream in float):
//   h = RMSNorm(x; norm1)
//   x = x + W_o . Attention(RoPE(W_q h), RoPE(W_k h), W_v h)      causal, multi-head
//   h = RMSNorm(x; norm2)
//   x = x + W_down . (silu(W_gate h) * W_up h)
// then RMSNorm(x; norm_f) and the output head (float, or quantized like the projections).
// Every projection W is a QuantLinear: per-token dynamic int8 inputs (quant/per_token.h) times
// low-bit weights with float scales per (output row, group of `group_size` inputs).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "quant/quant_spec.h"

namespace lowbit::runtime {

// A projection y = x . W^T (no bias) with packed low-bit weights.
// Codes [out_features, in_features] row-major, packed with quant::pack_codes (b-bit two's
// complement, little end first); value of a code c: Integer grid c, Odd grid 2c + 1 (the
// encoding of WeightTensor in model.h: int8, int4, ternary = 2-bit Integer {-1, 0, 1}, binary =
// 1-bit Odd, SEQ 2-bit = 2-bit Odd). scales[o * groups() + g] is the float scale of output row o,
// inputs [g * group_size, min((g + 1) * group_size, in_features)); per-channel scales are one
// group of in_features.
struct QuantLinear {
  int32_t in_features = 0, out_features = 0;
  int32_t group_size = 0;
  int32_t bits = 8;
  quant::Grid grid = quant::Grid::Integer;
  std::vector<uint8_t> packed;
  std::vector<float> scales;

  int32_t groups() const { return group_size > 0 ? (in_features + group_size - 1) / group_size : 0; }
  // Weight values [out_features * in_features] (unpacked; for kernels' packing and tools).
  std::vector<int8_t> values() const;
  // Short description, e.g. "int4 group32", "ternary per-channel".
  std::string format() const;
};

struct DecoderLayer {
  std::vector<float> norm1, norm2;  // [width] RMSNorm weights
  QuantLinear q, k, v, o;           // width -> width
  QuantLinear gate, up;             // width -> hidden
  QuantLinear down;                 // hidden -> width
};

struct DecoderModel {
  std::string name;
  int32_t vocab = 256;
  int32_t width = 0, heads = 0, hidden = 0, context = 0;
  double rope_base = 10000.0;
  float norm_eps = 1e-5f;
  std::vector<float> embedding;  // [vocab, width] (a quantized table is stored dequantized: exact)
  std::vector<DecoderLayer> layers;
  std::vector<float> norm_f;     // [width]
  bool head_quantized = false;
  std::vector<float> head;       // [vocab, width] when !head_quantized
  QuantLinear head_q;            // width -> vocab when head_quantized

  int32_t head_size() const { return heads > 0 ? width / heads : 0; }
};

// Checks every size, count, range and value; throws lowbit::Error naming `where`, the layer and
// the field.
void validate_decoder_model(const DecoderModel& m, const std::string& where = "decoder model");

// Fills `w` from weight values [out * in] (Integer: codes; Odd: odd values) and scales [out * groups].
void set_quant_linear(QuantLinear& w, int32_t in_features, int32_t out_features, int32_t group_size, int32_t bits,
                      quant::Grid grid, const std::vector<int32_t>& values, std::vector<float> scales);

// Parameters (weights, norms, embedding, head) and the bytes their stored form takes.
int64_t decoder_parameter_count(const DecoderModel& m);

// Text table: one row per op family (kind, float or integer, weights, kernel) and totals.
// `kernels`: the kernel names a session uses (DecoderSession::kernel_names), or empty.
std::string describe_decoder_model(const DecoderModel& m, const std::vector<std::string>& kernels = {});

}  // namespace lowbit::runtime
