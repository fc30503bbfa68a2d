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

// The work one op does per inference, in the units the EnergyTable prices. Every op of every model
// kind (op graphs here, transformers in transformer_metrics.h) is counted into a Work and priced by
// energy_pj, so that each per-operation formula lives in one place.
struct Work {
  int64_t int_macs = 0;                 // act_bits x weight_bits multiply + int32 accumulate each
  int32_t act_bits = 8, weight_bits = 8;
  int64_t fp32_macs = 0;                // float multiply + float add each
  int64_t fp32_mults = 0, fp32_adds = 0;  // other float work (compares, exp, erf: see docs/metrics.md)
  int64_t int32_mults = 0, int32_adds = 0;
  int64_t weight_bytes = 0;             // weight bytes read, from the 1 MB SRAM
  int64_t activation_bytes = 0;         // activation bytes written or read, from the 32 KB SRAM
};
double energy_pj(const Work& w, const EnergyTable& t);

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
  // What the runtime computes the op in: "integer" or "float" (transformers run norms, attention,
  // softmax and some linears in float; their MACs count 32 x 32 bit operations).
  std::string math = "integer";
  int64_t float_ops = 0;          // per item: float multiplies and adds besides MACs (Work::fp32_mults + fp32_adds)
  int64_t weight_read_bytes = 0;  // per item: weight bytes read (an embedding reads one row; float-math linears
                                  // read the dequantized float weights the runtime holds); op graphs: weight_bytes
};

struct ModelMetrics {
  std::vector<OpMetrics> ops;
  int64_t params = 0, weight_bytes = 0, file_bytes = 0, macs = 0, bops = 0, activation_bytes = 0;
  double bits_per_parameter = 0;  // weight bits (codes and 32-bit biases) per parameter
  double fp32_bytes = 0;          // 4 bytes per parameter
  double energy_pj = 0, fp32_energy_pj = 0;
  int64_t float_macs = 0, float_ops = 0;  // MACs of ops with math "float"; float_ops summed
  std::string inference = "one image";    // what one inference is (decoders: one token at a context length)
  int64_t context_tokens = 0;             // decoders: positions the token attends to
  EnergyTable table;
};

// Adds `o` with its energies (integer model `w`, FP32 model `fp32`) to `m` and to its totals
// (params, bytes, MACs, BOPs, activation bytes, energies, float MACs and ops).
void add_op(ModelMetrics& m, OpMetrics o, const Work& w, const Work& fp32);

// Counts and estimates for `model` (validated here; errors name `where`).
ModelMetrics model_metrics(const Model& model, const EnergyTable& table = {}, const std::string& where = "model");

// Text table, one row per op and a total row; energies in nJ per inference.
std::string metrics_table(const ModelMetrics& m);

}  // namespace lowbit::runtime
