// ONNX export of a decoder language model (gpt-tiny as the integer runtime runs it:
// runtime/decoder_model.h, read from a decoder .lbq). The graph takes `tokens` int64 [1, T]
// (1 <= T <= context) and returns `logits` float [1, T, vocab] for every position: a full
// recompute of the window; with DecoderExportOptions::with_kv_cache, also the cache as inputs
// (past_key_<l>, past_value_<l>) and outputs (present_key_<l>, present_value_<l>).
//
// It computes what DecoderSession computes (docs/transformers.md, "ONNX export of the language
// model"): the float ops in the runtime's formulas (RMSNorm with its mean in double, RoPE on the
// pairs (x[2i], x[2i+1]) with the runtime's cos / sin table, scores / sqrt(hd), causal softmax,
// gate / (1 + exp(-gate)) * up), and in front of every projection the per-token activation
// quantization of quant/per_token.h written as ops:
//   s_t = Where(max|x_t| > 0, max|x_t| / 127, 1),  c = Clip(Round(x / s_t), -127, 127)
// (ONNX Round rounds half to even, lowbit's rule), then y = MatMul(c, W) * s_t with W the
// dequantized low-bit weights. Two forms of W:
//   Qdq          DequantizeLinear (opset 21) of INT4 (1-, 2- and 4-bit weights: their values,
//                odd-grid ones as the odd values 2c + 1) or INT8 initializers [1, in, out],
//                blocked along `in` (block_size = the group size, scales [1, groups, out]) or
//                per output channel (axis 2); standard ops only. The leading 1 keeps ONNX
//                Runtime's DequantizeLinear + MatMul -> MatMulNBits fusion (accuracy level 4,
//                which re-quantizes the activations per block) off the graph.
//   MatMulNBits  com.microsoft MatMulNBits (int4 weight-only, accuracy_level 1: A is not
//                re-quantized), uint4 codes = value + 8 with the default zero point 8; int4
//                projections only. block_size is the group size when it is a power of two >= 16,
//                otherwise the largest power of two >= 16 dividing it with each group's scale
//                repeated over its blocks (exact); per-channel weights take 32-wide blocks (or a
//                smaller power of two >= 16) with the channel scale repeated.
// The same int32-exact products become float sums in ONNX Runtime: the logits agree with the
// runtime's up to float summation order (tests/export/decoder_export_test.cpp measures it).
#pragma once
#include <string>
#include <vector>

#include "export/graph_builder.h"
#include "export/onnx_graph.h"
#include "runtime/decoder_model.h"

namespace lowbit::onnx {

enum class DecoderExportForm { Qdq, MatMulNBits };

// "onnx" / "qdq" -> Qdq, "matmulnbits" -> MatMulNBits; lowbit::Error otherwise.
DecoderExportForm parse_decoder_export_form(const std::string& name);

struct DecoderExportOptions {
  DecoderExportForm form = DecoderExportForm::Qdq;
  // KV-cache form, for one-token-per-run decoding: extra inputs past_key_<l> / past_value_<l>
  // float [1, heads, T_past, head_size] for every layer l (T_past may be 0: empty tensors for the
  // prefill) and extra outputs present_key_<l> / present_value_<l> = Concat(past, new) along the
  // time axis, [1, heads, T_past + T, head_size]. As the runtime's cache (ops::causal_attention):
  // keys after RoPE, values as projected. The new rows take RoPE positions T_past..T_past + T - 1
  // (T_past read from past_key_0's shape: Shape -> Gather) and new row i attends to every past
  // position and to new positions <= i. T_past + T <= context. Same weights and per-token
  // quantization as the full-recompute form (the same builders).
  bool with_kv_cache = false;
};

// Throws lowbit::Error naming the model (`where`), the projection (gpt-tiny's node name, e.g.
// block1_mlp_down) and what to do, for what the chosen form cannot express: a non-int4
// projection or a group size with no power-of-two block >= 16 under MatMulNBits.
Model decoder_model(const runtime::DecoderModel& m, const DecoderExportOptions& options = {},
                    const std::string& where = "decoder model");

// ---- FP32 export (gpt-tiny as LibTorch computes it in float) ----

// A float decoder language model, torch-free: what an FP32 (or QAT, fake quantization removed)
// gpt-tiny checkpoint holds (export/float_export.h fills it from a models::Net). Weights [out, in].
struct FloatDecoder {
  std::string name = "gpt-tiny";
  int32_t vocab = 256, width = 0, heads = 0, hidden = 0, context = 0;
  float norm_eps = 1e-5f;
  double rope_base = 10000.0;
  std::vector<float> embedding;  // [vocab, width]
  struct Layer {
    std::vector<float> norm1, norm2;
    std::vector<float> q, k, v, o;   // [width, width]
    std::vector<float> gate, up;     // [hidden, width]
    std::vector<float> down;         // [width, hidden]
  };
  std::vector<Layer> layers;
  std::vector<float> norm_f;  // [width]
  std::vector<float> head;    // [vocab, width]
};

struct FloatDecoderExportOptions {
  bool with_kv_cache = false;  // the same past / present inputs and outputs as DecoderExportOptions
};

// The same graph as decoder_model (same builder: inputs, outputs, RoPE table and positions,
// causal mask, KV cache), with float MatMuls on float weights [in, out] instead of the per-token
// quantization and low-bit weights, and LibTorch's float formulas: RMSNorm
// x * (1 / sqrt(ReduceMean(x * x) + eps)) * w in float, SwiGLU gate * Sigmoid(gate) * up.
// Standard opset-21 ops only. Throws lowbit::Error naming the tensor whose size is wrong.
Model float_decoder_model(const FloatDecoder& m, const FloatDecoderExportOptions& options = {});

// A projection's low-bit weights as `DequantizeLinear` (opset 21) of the initializer
// `name`.weight_q [1, in, out] (the QDQ form above: INT4 for 1-, 2- and 4-bit formats, odd grids
// as their odd values, INT8 for 8-bit; group scales blocked along `in`, per-channel on axis 2);
// returns the float weight's name. `uint8_if_wide`: 8-bit weights with a |value| > 64 as UINT8
// value + 128 with zero point 128 (qdq_export.h, WeightEncoding::Auto: exact where ONNX Runtime
// fuses it into a u8s8 integer kernel without VNNI). `matrix_if_8bit_per_channel`: 8-bit
// per-channel weights as a 2-D [in, out] initializer (axis 1) instead: ONNX Runtime 1.30 fuses
// DequantizeLinear(uint8 codes) x DequantizeLinear(8-bit weights) -> MatMul into
// MatMulIntegerToFloat (integer accumulation), whose kernel accepts a per-channel zero point only
// for a 2-D weight ("b zero point is not valid" for [1, in, out]); 4-bit and group weights keep
// [1, in, out] (a 2-D blocked INT4 weight would be fused into MatMulNBits at accuracy level 4,
// which re-quantizes the activations). Shared with the encoder export.
std::string qdq_weight(GraphBuilder& b, const runtime::QuantLinear& w, const std::string& name, bool uint8_if_wide = false,
                       bool matrix_if_8bit_per_channel = false);

// The block size MatMulNBits uses for a projection, or 0 when there is none (exposed for tests).
int32_t matmulnbits_block_size(const runtime::QuantLinear& w);

}  // namespace lowbit::onnx
