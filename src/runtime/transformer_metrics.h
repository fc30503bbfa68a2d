// Deployment metrics of the transformer models (decoder_model.h: gpt-tiny; encoder_model.h:
// vit-tiny): the same per-op rows, totals and EnergyTable as deployment_metrics.h's op graphs, so
// that `lowbit inspect --metrics` reads alike for every .lbq (docs/metrics.md, "Transformers").
//
// Each row is one op as the runtime sequences it (decoder_session.cpp, encoder_session.cpp), with
// `math` saying whether the runtime computes it in integers or in float. Float ops (norms,
// attention with its softmax, SwiGLU / GELU, residual adds, the embedding, linears whose input is
// float) are counted as FP32 work in the integer model too: their MACs as float MACs (32 x 32 bit
// operations), their other arithmetic as float multiplies and adds.
#pragma once
#include <cstdint>
#include <string>

#include "runtime/decoder_model.h"
#include "runtime/deployment_metrics.h"
#include "runtime/encoder_model.h"

namespace lowbit::runtime {

// One inference of a decoder = one generated token at position T - 1 with the T - 1 earlier tokens
// in the KV cache (the token attends to T positions). `context_tokens`: T, 1 to the model's
// context; 0 = the model's context (the last token of a full window: the dearest one).
ModelMetrics decoder_metrics(const DecoderModel& model, int64_t context_tokens = 0, const EnergyTable& table = {},
                             const std::string& where = "decoder model");

// One inference of an encoder = one image (all its tokens).
ModelMetrics encoder_metrics(const EncoderModel& model, const EnergyTable& table = {},
                             const std::string& where = "encoder model");

}  // namespace lowbit::runtime
