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

#include "models/net.h"
#include "runtime/model.h"

namespace lowbit::convert {

// Throws lowbit::Error naming the node for anything the runtime cannot express: a layer left in
// float (quantize = false), per-group weight scales, per-channel activation scales, an
// activation grid wider than 8 bits.
runtime::Model to_runtime_model(models::Net& net, const std::string& description = "");

}  // namespace lowbit::convert
