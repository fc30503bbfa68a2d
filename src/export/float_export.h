// Export of a lowbit model as a float32 ONNX model: from an FP32 checkpoint as trained (conv,
// batch norm, activation), or from a QAT checkpoint with its fake quantization removed (batch
// norm folded into the conv exactly as QAT's evaluation path folds it, weights unquantized).
#pragma once
#include "export/onnx_graph.h"
#include "models/net.h"

namespace lowbit::onnx {

// Throws lowbit::Error naming the node for a layer kind the exporter does not know.
Model float_model(models::Net& net, int64_t opset = 21);

}  // namespace lowbit::onnx
