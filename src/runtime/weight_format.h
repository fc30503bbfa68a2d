// The weight formats a model may hold, in one table that the model validator, the GEMM config
// lookup, `lowbit inspect` and the ONNX QDQ exporter all read (in the spirit of ggml's type traits).
//
// A format is a (bits, grid) pair: weights are b-bit signed codes c packed with quant::pack_codes
// (8 / bits codes per byte, little end first); the Integer grid's value is c, the Odd grid's 2c + 1.
// Adding a format is adding a row here (plus its kernels, docs/runtime.md).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "quant/quant_spec.h"

namespace lowbit::runtime {

// How ONNX QDQ export stores a format's codes (DequantizeLinear input type), if it can.
enum class QdqWeightType { None, Int8, Int4 };

struct WeightFormat {
  const char* name;  // as `lowbit inspect` prints it: "int8", "int4", "int2", "binary", "seq2", "odd4"
  int32_t bits;
  quant::Grid grid;
  int32_t code_min, code_max;  // range of the stored codes
  int32_t value_min, value_max;  // range of the values the kernels multiply (Odd: 2c + 1)
  const char* also;              // another name for the same storage (ternary: int2 codes in -1..1), or ""
  bool runtime_kernels;          // the runtime runs it (reference kernels at least); validate_model admits it
  QdqWeightType qdq_type;        // QdqWeightType::None: ONNX QDQ export refuses it
  int32_t qdq_min_opset;         // the first opset whose DequantizeLinear takes qdq_type
};

// Every format, in the order of the table in docs/runtime.md.
const std::vector<WeightFormat>& weight_formats();
// The row of (bits, grid), or nullptr when no model may hold such weights.
const WeightFormat* find_weight_format(int32_t bits, quant::Grid grid);
// "2, 4 or 8": the bit widths the runtime takes on `grid`, ascending, for error messages.
std::string weight_bits_list(quant::Grid grid);

// Range of the values of b-bit codes on `grid`, for any width (formats outside the table too: the
// GEMM lookup asks whether a width's values fit in int8).
int32_t weight_value_min(int32_t bits, quant::Grid grid);
int32_t weight_value_max(int32_t bits, quant::Grid grid);

}  // namespace lowbit::runtime
