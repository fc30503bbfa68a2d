// Export of a lowbit model as a float32 ONNX model: from an FP32 checkpoint as trained (conv,
// batch norm, activation), or from a QAT checkpoint with its fake quantization removed (batch
// norm folded into the conv exactly as QAT's evaluation path folds it, weights unquantized).
// Image models (the CNNs and vit-tiny: patch tokens, LayerNorm, non-causal attention, GELU,
// token mean) go through float_model; gpt-tiny through float_gpt_model (the decoder graph of
// export/decoder_export.h with float weights).
#pragma once
#include "export/decoder_export.h"
#include "export/onnx_graph.h"
#include "models/net.h"

namespace lowbit::onnx {

// Throws lowbit::Error naming the node for a layer kind the exporter does not know (and for
// vit-tiny's LayerNorm below opset 17, GELU below opset 13).
Model float_model(models::Net& net, int64_t opset = 21);

// gpt-tiny (models/gpt.h) as a torch-free FloatDecoder: the embedding, norms, projections and
// head of an FP32 checkpoint, or of a QAT one with fake quantization removed (latent float
// weights). `context`: the run's context (the RoPE table's rows; GptOptions::context). Throws
// lowbit::Error naming the node when the net is not gpt-tiny's graph.
FloatDecoder float_decoder_of(models::Net& net, int64_t context);

// float_decoder_model(float_decoder_of(net, context), options): opset 21.
Model float_gpt_model(models::Net& net, int64_t context, const FloatDecoderExportOptions& options = {});

}  // namespace lowbit::onnx
