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
#include <string>
#include <vector>

#include "convert/to_runtime.h"
#include "export/onnx_graph.h"
#include "models/net.h"
#include "runtime/model.h"

namespace lowbit::onnx {

// How 8-bit weight codes are stored. ONNX Runtime's u8s8 kernels on x86-64 CPUs without VNNI
// (AVX2, AVX-512F/BW) add pairs of uint8 x int8 products in int16 with saturation (vpmaddubsw),
// so int8 weights beyond +-64 can be computed wrongly there (2 * 255 * 127 > 32,767). uint8
// weights with zero point 128 take its u8u8 path, which widens to int16 first and is exact.
// docs/export.md has the arithmetic.
enum class WeightEncoding {
  Auto,   // per layer: INT8 when every |code| <= 64 (no pair can saturate), else UINT8 (code + 128, zp 128)
  Int8,   // always INT8, zero point 0: fastest in ONNX Runtime, exact only on VNNI / ARM or |code| <= 64
  Uint8,  // always UINT8 (code + 128), zero point 128: exact everywhere, ~1.4x slower in ONNX Runtime
};

// "auto", "int8", "uint8" (the CLI's --weight-type); throws lowbit::Error for anything else.
WeightEncoding parse_weight_encoding(const std::string& name);

// The largest |code| for which no pair of uint8 x int8 products (activations up to 255) exceeds
// int16: 255 * (64 + 64) = 32,640 <= 32,767.
constexpr int32_t kSaturationFreeWeightCode = 64;

struct QdqOptions {
  // 13..21. int4 weights need 21 (ONNX's INT4 type in DequantizeLinear).
  int64_t opset = 21;
  WeightEncoding weight_encoding = WeightEncoding::Auto;  // 8-bit weights only; int4 cannot saturate
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
