// Export of a quantized lowbit model as a QDQ ONNX model: QuantizeLinear / DequantizeLinear
// pairs around float operators, the form ONNX Runtime and other tools recognise as a quantized
// model (and fuse into integer kernels where they can).
//
// The graph is built from the converted integer model (convert::to_runtime_model), so it holds
// exactly the numbers the integer runtime uses: the same weight codes, per-channel weight scales,
// int32 biases and activation scales / zero points / clamp ranges. How each op maps, and where
// ONNX Runtime's float arithmetic can round differently from lowbit's fixed-point
// requantization, is written down in docs/export.md.
#pragma once
#include <vector>

#include "convert/to_runtime.h"
#include "export/onnx_graph.h"
#include "models/net.h"
#include "runtime/model.h"

namespace lowbit::onnx {

struct QdqOptions {
  // 13..21. int4 weights need 21 (ONNX's INT4 type in DequantizeLinear).
  int64_t opset = 21;
};

// From an integer model and what its conversion recorded (one ConvertedOp per op: node names
// for error messages and tensor names, weight scales). Throws lowbit::Error naming the layer for
// anything QDQ ONNX cannot express at this opset: 2-bit (ternary, int2) or odd-grid (binary,
// SEQ) weights, int4 weights below opset 21.
Model qdq_model(const runtime::Model& model, const std::vector<convert::ConvertedOp>& record,
                const QdqOptions& options = {});

// Converts a QAT- or PTQ-prepared net (convert::to_runtime_model) and exports the result.
Model qdq_model_from_net(models::Net& net, const QdqOptions& options = {});

}  // namespace lowbit::onnx
