#include "runtime/weight_format.h"

#include <algorithm>
#include <string>

namespace lowbit::runtime {

int32_t weight_value_min(int32_t bits, quant::Grid grid) {
  const int32_t c = -(int32_t{1} << (bits - 1));
  return grid == quant::Grid::Odd ? 2 * c + 1 : c;
}

int32_t weight_value_max(int32_t bits, quant::Grid grid) {
  const int32_t c = (int32_t{1} << (bits - 1)) - 1;
  return grid == quant::Grid::Odd ? 2 * c + 1 : c;
}

namespace {

WeightFormat row(const char* name, int32_t bits, quant::Grid grid, const char* also, QdqWeightType qdq, int32_t opset) {
  return {name, bits, grid, -(int32_t{1} << (bits - 1)), (int32_t{1} << (bits - 1)) - 1, weight_value_min(bits, grid),
          weight_value_max(bits, grid), also, true, qdq, opset};
}

}  // namespace

const std::vector<WeightFormat>& weight_formats() {
  using quant::Grid;
  // ONNX: INT8 weights in every opset QDQ export writes (13+); INT4 from opset 21; no 2-bit or
  // odd-grid (2c + 1) integer type exists.
  static const std::vector<WeightFormat> table = {
      row("int8", 8, Grid::Integer, "", QdqWeightType::Int8, 13),
      row("int4", 4, Grid::Integer, "", QdqWeightType::Int4, 21),
      row("int2", 2, Grid::Integer, "ternary", QdqWeightType::None, 0),
      row("binary", 1, Grid::Odd, "", QdqWeightType::None, 0),
      row("seq2", 2, Grid::Odd, "", QdqWeightType::None, 0),
      row("odd4", 4, Grid::Odd, "", QdqWeightType::None, 0),
  };
  return table;
}

const WeightFormat* find_weight_format(int32_t bits, quant::Grid grid) {
  for (const WeightFormat& f : weight_formats())
    if (f.bits == bits && f.grid == grid) return &f;
  return nullptr;
}

std::string weight_bits_list(quant::Grid grid) {
  std::vector<int32_t> bits;
  for (const WeightFormat& f : weight_formats())
    if (f.grid == grid && f.runtime_kernels) bits.push_back(f.bits);
  std::sort(bits.begin(), bits.end());
  std::string s;
  for (size_t i = 0; i < bits.size(); ++i)
    s += (i == 0 ? "" : i + 1 == bits.size() ? " or " : ", ") + std::to_string(bits[i]);
  return s;
}

}  // namespace lowbit::runtime
