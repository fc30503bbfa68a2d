// Conversion of a QAT- or PTQ-prepared lowbit Net into the integer runtime's model.
//
// Walks the Net's nodes (the one model description) and, for each, takes the float parameters
// and the quantization parameters that training used, and computes the integer ones with the
// functions of lowbit_quant: weight codes with quant::quantize, bias_q and requantization
// multipliers with runtime::set_requantization (quant::make_fixed_point_multiplier), residual-add
// multipliers with quant::make_add_multipliers. BN is folded exactly as QConvBnAct's eval path
// folds it. What the runtime then computes is documented in docs/runtime.md.
#pragma once
#include <string>
#include <vector>

#include "models/net.h"
#include "runtime/model.h"

namespace lowbit::convert {

// What conversion used for one op, for tools that re-express the integer model in another format
// (ONNX export): the node it came from and the float per-output-channel weight scales s_w[o]
// (after keeping biases representable; empty for ops without weights). The runtime model itself
// keeps only the products of these scales (multipliers, out_scale).
struct ConvertedOp {
  std::string node;
  std::vector<float> weight_scales;
};

// Throws lowbit::Error naming the node for anything the runtime cannot express: a layer left in
// float (quantize = false), per-group weight scales, per-channel activation scales, an
// activation grid wider than 8 bits. With `record`, fills one ConvertedOp per runtime op.
runtime::Model to_runtime_model(models::Net& net, const std::string& description = "",
                                std::vector<ConvertedOp>* record = nullptr);

}  // namespace lowbit::convert
