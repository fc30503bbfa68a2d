// QuantSpec: a declarative description of one quantizer's integer grid.
//
// Two grids exist:
//  * Grid::Integer — q is an integer in [qmin, qmax], value = scale * (q - zero_point).
//    bits 2..8, signed or unsigned, symmetric (zero_point = 0) or asymmetric, optional
//    narrow range (signed: drop -2^(b-1), so the grid is symmetric; 2-bit narrow = ternary).
//  * Grid::Odd — q is an odd integer in [-(2^b - 1), 2^b - 1], value = scale * q, always
//    symmetric. bits = 1 is binary (sign) weights {-1, +1}; bits = 2 is ParetoQ's stretched
//    elastic quantizer (SEQ) with levels {-3, -1, 1, 3} * scale = {+-0.25, +-0.75} * alpha.
//    Stored as the b-bit code c = (q - 1) / 2 in [-2^(b-1), 2^(b-1) - 1].
//
// Granularity says how many (scale, zero_point) pairs a tensor gets:
//  * PerTensor: one.
//  * PerChannel: one per index of `axis` (axis 0 = output channels for weights).
//  * PerGroup: the tensor is viewed as [channels along axis 0, K]; each channel's K values
//    are split into consecutive groups of `group_size` (the last group may be shorter).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace lowbit::quant {

enum class Grid { Integer, Odd };
enum class Granularity { PerTensor, PerChannel, PerGroup };

struct QuantSpec {
  int bits = 8;
  bool is_signed = true;
  bool symmetric = true;
  bool narrow_range = false;
  Grid grid = Grid::Integer;
  Granularity granularity = Granularity::PerTensor;
  int axis = 0;        // PerChannel only
  int group_size = 0;  // PerGroup only

  // Range of the stored integer q (for Grid::Odd, the odd values, not the codes).
  int32_t qmin() const;
  int32_t qmax() const;
  // Range of the b-bit code that is packed into memory (Integer: q itself; Odd: (q-1)/2).
  int32_t code_min() const;
  int32_t code_max() const;
  // Number of distinct representable values (2^bits, minus one when narrow).
  int32_t levels() const;

  // Throws lowbit::Error describing the first impossible combination and what to do.
  void validate() const;
  // Short human-readable form, e.g. "int4 sym per-channel", "ternary per-channel",
  // "uint8 asym per-tensor", "binary per-channel", "seq2 per-channel", "int4 sym group128".
  std::string describe() const;
  bool operator==(const QuantSpec& o) const;
  bool operator!=(const QuantSpec& o) const { return !(*this == o); }

  // Named constructors for the common cases.
  static QuantSpec int_symmetric(int bits, Granularity g = Granularity::PerTensor);
  static QuantSpec uint_asymmetric(int bits, Granularity g = Granularity::PerTensor);
  static QuantSpec ternary(Granularity g = Granularity::PerChannel);
  static QuantSpec binary(Granularity g = Granularity::PerChannel);
  static QuantSpec seq2(Granularity g = Granularity::PerChannel);
};

// Number of (scale, zero_point) pairs for a tensor of `shape` under `spec`.
int64_t num_qparams(const QuantSpec& spec, const std::vector<int64_t>& shape);
// Index of the (scale, zero_point) pair that element `flat_index` (row-major) uses.
int64_t qparam_index(const QuantSpec& spec, const std::vector<int64_t>& shape, int64_t flat_index);

}  // namespace lowbit::quant
