// QDQ ONNX export of an encoder image model (vit-tiny as the integer runtime runs it:
// runtime/encoder_model.h, read from an encoder .lbq). Input `input` float [N, channels, 28, 28]
// (pixel / 255, as lowbit's models take), output `logits` float [N, classes]; N symbolic; opset 21.
//
// It computes what EncoderSession computes (docs/transformers.md, "ONNX export of vit-tiny"):
//   * every static activation grid (the input's 1/255 grid, each linear's output grid, the
//     residual adds' grids) as QuantizeLinear(s, z) to uint8 codes (a Clip in float first when the
//     code range is narrower than [0, 255], e.g. 4-bit activations) and DequantizeLinear back
//     where a float op reads it; ONNX's QuantizeLinear rounds half to even, lowbit's rule;
//   * the patch embedding on the input codes rearranged into patches (Reshape / Transpose of the
//     uint8 codes: exact), k = (c * patch + kh) * patch + kw as the runtime's patches;
//   * each linear as MatMul(x, DequantizeLinear(W)) (+ bias, + Gelu), W the runtime's weight
//     values [1, in, out] (export/decoder_export.h, qdq_weight: INT4 for 1/2/4-bit formats, odd
//     grids as their odd values, INT8 or, for 8-bit values beyond +-64, UINT8 + 128); an input on a
//     grid is DequantizeLinear of its codes (the integer GEMMs' operands), a float input as is;
//   * LayerNormalization (epsilon of the model), non-causal attention (MatMul, Div(sqrt(hd)),
//     Softmax, MatMul), Gelu (erf form), ReduceMean over the tokens: float, as the runtime's float
//     ops.
// What is exact and what is float: the codes, weight values, scales, zero points and biases are
// the runtime's numbers; ONNX Runtime computes the integer GEMMs' products in float (or fuses
// them into integer kernels) and the float ops in its own summation order, so values agree up to
// float rounding, and an output code can move by one step when a value lies within float
// rounding of a rounding boundary (tests/export/encoder_export_test.cpp measures it).
#pragma once
#include <string>

#include "export/onnx_graph.h"
#include "runtime/encoder_model.h"

namespace lowbit::onnx {

// Throws lowbit::Error naming `where` and the layer for a model the runtime's validator refuses;
// every weight format and grid the runtime runs has a QDQ form.
Model encoder_qdq_model(const runtime::EncoderModel& m, const std::string& where = "encoder model");

}  // namespace lowbit::onnx
