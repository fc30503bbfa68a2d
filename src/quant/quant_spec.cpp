#include "quant/quant_spec.h"

#include "base/error.h"

namespace lowbit::quant {

int32_t QuantSpec::qmin() const {
  if (grid == Grid::Odd) return -((1 << bits) - 1);
  if (!is_signed) return 0;
  return narrow_range ? -(1 << (bits - 1)) + 1 : -(1 << (bits - 1));
}

int32_t QuantSpec::qmax() const {
  if (grid == Grid::Odd) return (1 << bits) - 1;
  if (!is_signed) return narrow_range ? (1 << bits) - 2 : (1 << bits) - 1;
  return (1 << (bits - 1)) - 1;
}

int32_t QuantSpec::code_min() const { return grid == Grid::Odd ? -(1 << (bits - 1)) : qmin(); }
int32_t QuantSpec::code_max() const { return grid == Grid::Odd ? (1 << (bits - 1)) - 1 : qmax(); }
int32_t QuantSpec::levels() const { return code_max() - code_min() + 1; }

void QuantSpec::validate() const {
  const std::string what = "quantization spec '" + describe() + "': ";
  if (grid == Grid::Integer) {
    LOWBIT_CHECK(bits >= 2 && bits <= 8,
                 what + "integer grids take 2 to 8 bits (got " + std::to_string(bits) +
                     "); for 1-bit weights use the binary quantizer");
  } else {
    LOWBIT_CHECK(bits >= 1 && bits <= 4,
                 what + "odd grids (binary, SEQ) take 1 to 4 bits (got " + std::to_string(bits) + ")");
    LOWBIT_CHECK(symmetric, what + "binary and SEQ grids are symmetric by construction; drop 'asymmetric'");
    LOWBIT_CHECK(is_signed, what + "binary and SEQ grids are signed by construction");
    LOWBIT_CHECK(!narrow_range, what + "narrow range applies to integer grids only");
  }
  if (grid == Grid::Integer && bits == 2 && narrow_range && is_signed) {
    LOWBIT_CHECK(symmetric, what + "ternary weights are symmetric; an asymmetric ternary grid is not supported");
  }
  if (!symmetric) {
    LOWBIT_CHECK(grid == Grid::Integer, what + "asymmetric quantization needs an integer grid");
  }
  switch (granularity) {
    case Granularity::PerTensor:
      break;
    case Granularity::PerChannel:
      LOWBIT_CHECK(axis >= 0, what + "channel axis must be >= 0 (got " + std::to_string(axis) + ")");
      break;
    case Granularity::PerGroup:
      LOWBIT_CHECK(group_size > 0, what + "per-group quantization needs a group size > 0 (e.g. 32, 64, 128)");
      break;
  }
}

std::string QuantSpec::describe() const {
  std::string s;
  if (grid == Grid::Odd) {
    s = bits == 1 ? "binary" : (bits == 2 ? "seq2" : "odd" + std::to_string(bits));
  } else if (bits == 2 && narrow_range && is_signed) {
    s = "ternary";
  } else {
    s = std::string(is_signed ? "int" : "uint") + std::to_string(bits) + (symmetric ? " sym" : " asym");
    if (narrow_range) s += " narrow";
  }
  switch (granularity) {
    case Granularity::PerTensor: s += " per-tensor"; break;
    case Granularity::PerChannel: s += " per-channel"; break;
    case Granularity::PerGroup: s += " group" + std::to_string(group_size); break;
  }
  return s;
}

bool QuantSpec::operator==(const QuantSpec& o) const {
  return bits == o.bits && is_signed == o.is_signed && symmetric == o.symmetric &&
         narrow_range == o.narrow_range && grid == o.grid && granularity == o.granularity &&
         axis == o.axis && group_size == o.group_size;
}

QuantSpec QuantSpec::int_symmetric(int bits, Granularity g) {
  QuantSpec s;
  s.bits = bits;
  s.granularity = g;
  return s;
}

QuantSpec QuantSpec::uint_asymmetric(int bits, Granularity g) {
  QuantSpec s;
  s.bits = bits;
  s.is_signed = false;
  s.symmetric = false;
  s.granularity = g;
  return s;
}

QuantSpec QuantSpec::ternary(Granularity g) {
  QuantSpec s;
  s.bits = 2;
  s.narrow_range = true;
  s.granularity = g;
  return s;
}

QuantSpec QuantSpec::binary(Granularity g) {
  QuantSpec s;
  s.bits = 1;
  s.grid = Grid::Odd;
  s.granularity = g;
  return s;
}

QuantSpec QuantSpec::seq2(Granularity g) {
  QuantSpec s;
  s.bits = 2;
  s.grid = Grid::Odd;
  s.granularity = g;
  return s;
}

namespace {
int64_t product(const std::vector<int64_t>& shape, size_t from) {
  int64_t p = 1;
  for (size_t i = from; i < shape.size(); ++i) p *= shape[i];
  return p;
}
}  // namespace

int64_t num_qparams(const QuantSpec& spec, const std::vector<int64_t>& shape) {
  switch (spec.granularity) {
    case Granularity::PerTensor:
      return 1;
    case Granularity::PerChannel:
      LOWBIT_CHECK(spec.axis < static_cast<int>(shape.size()),
                   "per-channel axis " + std::to_string(spec.axis) + " is out of range for a tensor of rank " +
                       std::to_string(shape.size()));
      return shape[spec.axis];
    case Granularity::PerGroup: {
      LOWBIT_CHECK(!shape.empty(), "per-group quantization needs a tensor of rank >= 1");
      const int64_t k = product(shape, 1);
      return shape[0] * ((k + spec.group_size - 1) / spec.group_size);
    }
  }
  return 1;
}

int64_t qparam_index(const QuantSpec& spec, const std::vector<int64_t>& shape, int64_t flat_index) {
  switch (spec.granularity) {
    case Granularity::PerTensor:
      return 0;
    case Granularity::PerChannel: {
      const int64_t inner = product(shape, spec.axis + 1);
      return (flat_index / inner) % shape[spec.axis];
    }
    case Granularity::PerGroup: {
      const int64_t k = product(shape, 1);
      const int64_t groups_per_row = (k + spec.group_size - 1) / spec.group_size;
      return (flat_index / k) * groups_per_row + (flat_index % k) / spec.group_size;
    }
  }
  return 0;
}

}  // namespace lowbit::quant
