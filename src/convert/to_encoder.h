// Conversion of a vit-tiny model (models/vit.h; QAT-prepared with static per-tensor activations,
// qat/quantized_layers.h, or float) into the runtime's EncoderModel (runtime/encoder_model.h).
//
// What each node becomes (the runtime then computes what QAT simulated):
//   input quantizer      the image grid (uint8, 1/255, 0)
//   patch_embed          a linear over the patches: per-channel (or group) weights quantized with
//                        the quantizer's scales (quant::quantize, as its fake quantization), the
//                        bias the evaluation adds (quant::quantize_bias when the input is on a
//                        grid), the output quantizer's grid
//   attn_q/k/v/o, mlp_fc1, mlp_fc2, head   the same; fc2's input is fc1's output grid, so it runs
//                        as an integer GEMM; the others read float (LayerNorm / attention outputs)
//   add1 / add2          the output quantizer's grid (or none for a float add)
//   tokens, layernorm, attention, token_mean   copied (float)
// A float (unprepared) linear keeps float weights. Throws lowbit::Error naming the node for what
// the runtime cannot run (asymmetric or per-tensor-grid-less weights, per-channel activation
// quantizers, a causal or RoPE attention, input normalisation, another model than vit-tiny).
#pragma once
#include <string>

#include "models/vit.h"
#include "runtime/encoder_model.h"
#include "runtime/encoder_session.h"

namespace lowbit::convert {

runtime::EncoderModel to_encoder_model(models::Net& net, const models::VitOptions& options,
                                       const std::string& description = "");

// The runtime's logits against the LibTorch model's evaluation forward (fake quantization) on
// images [N, 1, 28, 28] (batches of `batch_size`).
struct EncoderAgreement {
  int64_t count = 0;
  int64_t predictions_equal = 0;   // argmax (lowest index on ties) equal
  int64_t runtime_correct = 0, torch_correct = 0;  // with labels
  double max_abs_diff = 0.0;       // max |runtime - LibTorch| over all logits
  double max_abs_logit = 0.0;      // max |LibTorch logit|
  double mean_abs_diff = 0.0;
  double max_rel_diff() const { return max_abs_diff / (1.0 + max_abs_logit); }
};
EncoderAgreement compare_encoder_with_torch(runtime::EncoderSession& session, models::Net& net,
                                            const torch::Tensor& images, const torch::Tensor& labels = {},
                                            int64_t batch_size = 256);

}  // namespace lowbit::convert
