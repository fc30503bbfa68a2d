// Conversion of a gpt-tiny QAT model (models/gpt.h prepared with per-token activations,
// qat/quantized_transformer.h) into the runtime's DecoderModel (runtime/decoder_model.h).
//
// Each projection's weights are quantized with its quantizer's current scales exactly as its
// fake-quantization forward does (quant::quantize, one float32 division, round half to even), and
// packed at the smallest width the runtime has (1, 2, 4 or 8 bits); scales are per (output row,
// group of group_size inputs), per-channel ones one group of the whole row, a per-tensor scale
// repeated per row. The embedding is copied as the model's evaluation sees it (a quantized table
// dequantized, s * q, which is exact); norms and a float head are copied.
#pragma once
#include <string>

#include "models/gpt.h"
#include "runtime/decoder_model.h"

namespace lowbit::convert {

// Throws lowbit::Error naming the node for what the decoder runtime cannot run: a projection left
// in float, static (per-tensor) activation quantizers (a QAT run made before per-token
// activations: re-run lowbit qat), asymmetric weights, another model than gpt-tiny.
runtime::DecoderModel to_decoder_model(models::Net& net, const models::GptOptions& options,
                                       const std::string& description = "");

}  // namespace lowbit::convert
