// Deployment metrics of an integer model beyond accuracy: parameters, bytes, bits per parameter,
// multiply-accumulates, bit operations and an energy estimate per inference, per op and in total,
// with the FP32 model of the same graph alongside (docs/metrics.md explains every formula).
//
// Energy is an estimate from published per-operation energies, not a measurement: the 45 nm
// figures of Horowitz, "Computing's energy problem (and what we can do about it)", ISSCC 2014
// (EnergyTable below), applied to counts of arithmetic and memory traffic.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "runtime/model.h"

namespace lowbit::runtime {

// Picojoules per operation (Horowitz, ISSCC 2014, 45 nm, 0.9 V) and per byte of memory traffic.
struct EnergyTable {
  double int8_add = 0.03, int32_add = 0.1, int8_mult = 0.2, int32_mult = 3.1;
  double fp32_add = 0.9, fp32_mult = 3.7;
  // Memory, per byte: the paper's 64-bit accesses divided by 8. Weights come from a 1 MB SRAM
  // (100 pJ / 64 bit: the whole model stays on chip, an optimistic level for deployment), activations
  // from a 32 KB SRAM (20 pJ / 64 bit).
  double weight_byte = 100.0 / 8, activation_byte = 20.0 / 8;
  // An a-bit by w-bit integer multiply costs int8_mult * a * w / 64: a multiplier's area and energy
  // grow with the product of its operand widths (array multiplier). 1-bit weights: a sign flip,
  // counted as 8/64 of an int8 multiply.
  double int_mult(int32_t act_bits, int32_t weight_bits) const {
    return int8_mult * double(act_bits) * double(weight_bits) / 64.0;
  }
};

struct OpMetrics {
  int32_t index = 0;          // op number, 1-based (value index + 0)
  std::string name;           // "conv2d 3x3", "linear", "max pool 2x2", ...
  int32_t weight_bits = 0;    // 0: no weights
  std::string weight_format;  // "int8", "int4", "ternary", "binary", "seq2", or "-"
  int32_t act_bits = 0;       // bits of the input activation codes (8 or 4)
  int64_t params = 0;         // weights + biases
  int64_t weight_bytes = 0;   // packed weights, int32 biases, multipliers / output scales
  int64_t macs = 0;           // per item
  int64_t bops = 0;           // macs * weight_bits * act_bits
  int64_t activation_bytes = 0;  // per item: input codes read + output codes written
  double energy_pj = 0;       // per item, integer model
  double fp32_energy_pj = 0;  // per item, the same op in FP32
};

struct ModelMetrics {
  std::vector<OpMetrics> ops;
  int64_t params = 0, weight_bytes = 0, file_bytes = 0, macs = 0, bops = 0, activation_bytes = 0;
  double bits_per_parameter = 0;  // weight bits (codes and 32-bit biases) per parameter
  double fp32_bytes = 0;          // 4 bytes per parameter
  double energy_pj = 0, fp32_energy_pj = 0;
  EnergyTable table;
};

// Counts and estimates for `model` (validated here; errors name `where`).
ModelMetrics model_metrics(const Model& model, const EnergyTable& table = {}, const std::string& where = "model");

// Text table, one row per op and a total row; energies in nJ per inference.
std::string metrics_table(const ModelMetrics& m);

}  // namespace lowbit::runtime
