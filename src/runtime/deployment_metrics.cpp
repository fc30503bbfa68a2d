#include "runtime/deployment_metrics.h"

#include <cmath>
#include <cstdio>
#include <sstream>

#include "runtime/model_file.h"
#include "runtime/weight_format.h"

namespace lowbit::runtime {
namespace {

// Bits of the codes of a uint8 value with clamp range up to qmax (4-bit activations: qmax 15).
int32_t code_bits(const ActQParams& q) {
  int32_t bits = 1;
  while ((int64_t{1} << bits) <= q.qmax) ++bits;
  return bits;
}

const ActQParams& value_qparams(const Model& m, int32_t v) { return v == 0 ? m.input : m.ops[v - 1].out; }

std::string op_name(const Op& op) {
  std::string name = op_kind_name(op.kind);
  if (op.kind == OpKind::Conv2d || op.kind == OpKind::MaxPool2d || op.kind == OpKind::AvgPool2d)
    name += " " + std::to_string(op.kernel_h) + "x" + std::to_string(op.kernel_w);
  if (op.kind == OpKind::Conv2d && op.groups > 1 && op.groups == op.in_channels) name += " dw";
  if (op.dilation_h != 1 || op.dilation_w != 1)
    name += " dil" + std::to_string(op.dilation_h) +
            (op.dilation_w != op.dilation_h ? "x" + std::to_string(op.dilation_w) : std::string());
  return name;
}

}  // namespace

ModelMetrics model_metrics(const Model& model, const EnergyTable& t, const std::string& where) {
  const std::vector<ValueShape> shapes = validate_model(model, where);
  ModelMetrics r;
  r.table = t;
  r.file_bytes = static_cast<int64_t>(serialize_model(model).size());
  int64_t weight_bits_total = 0;
  for (size_t i = 0; i < model.ops.size(); ++i) {
    const Op& op = model.ops[i];
    const ValueShape& out = shapes[i + 1];
    OpMetrics o;
    o.index = static_cast<int32_t>(i + 1);
    o.name = op_name(op);
    o.act_bits = code_bits(value_qparams(model, op.inputs[0]));
    int64_t in_elems = 0;
    for (int32_t v : op.inputs) in_elems += shapes[v].size();
    const int64_t out_elems = out.size();
    // Codes are stored one per byte in the runtime whatever their width; the output layer writes int32.
    o.activation_bytes = in_elems + (op.output_layer ? 4 * out_elems : out_elems);
    const double act_energy = double(o.activation_bytes) * t.activation_byte;
    const double fp32_act_energy = 4.0 * double(in_elems + out_elems) * t.activation_byte;
    if (op.has_weights()) {
      o.weight_bits = op.weight.bits;
      o.weight_format = find_weight_format(op.weight.bits, op.weight.grid)->name;
      o.params = op.weight_count() + op.out_channels;
      o.weight_bytes = static_cast<int64_t>(op.weight.packed.size() + op.bias_q.size() * 4 +
                                            op.multipliers.size() * 8 + op.out_scale.size() * 4);
      o.macs = op.weight_count() * out.h * out.w;
      o.bops = o.macs * o.weight_bits * o.act_bits;
      weight_bits_total += op.weight_count() * op.weight.bits + int64_t{op.out_channels} * 32;
      // Integer: an a x w multiply and an int32 accumulate per MAC; per output an int32 bias add and
      // the requantization (int32 multiply, rounding add) or, for the output layer, one float multiply.
      const double per_output = t.int32_add + (op.output_layer ? t.fp32_mult : t.int32_mult + t.int32_add);
      o.energy_pj = double(o.macs) * (t.int_mult(o.act_bits, o.weight_bits) + t.int32_add) +
                    double(out_elems) * per_output + double(o.weight_bytes) * t.weight_byte + act_energy;
      o.fp32_energy_pj = double(o.macs) * (t.fp32_mult + t.fp32_add) + double(out_elems) * t.fp32_add +
                         4.0 * double(o.params) * t.weight_byte + fp32_act_energy;
    } else if (op.kind == OpKind::Lookup) {
      // One table read per element (the 256-byte table stays in L1, counted like an activation
      // byte); the float model evaluates the function instead, counted as one multiply and one add
      // per element (a lower bound for sigmoid and tanh).
      o.weight_format = "table";
      o.weight_bytes = static_cast<int64_t>(op.table.size());
      o.energy_pj = double(in_elems) * t.activation_byte + double(o.activation_bytes) * t.activation_byte;
      o.fp32_energy_pj = double(in_elems) * (t.fp32_mult + t.fp32_add) + fp32_act_energy;
    } else {
      o.weight_format = "-";
      // Pools and adds: one add or compare per input element read; average pool and add also
      // requantize each output (int32 multiply and add). Flatten moves nothing (linears read around it).
      const bool requantizes = op.kind == OpKind::AvgPool2d || op.kind == OpKind::GlobalAvgPool || op.kind == OpKind::Add;
      const int64_t reads = op.kind == OpKind::Flatten ? 0
                            : (op.kind == OpKind::MaxPool2d || op.kind == OpKind::AvgPool2d)
                                ? out_elems * op.kernel_h * op.kernel_w
                                : in_elems;
      if (op.kind == OpKind::Flatten) o.activation_bytes = 0;
      o.energy_pj = double(reads) * t.int32_add + (requantizes ? double(out_elems) * (t.int32_mult + t.int32_add) : 0.0) +
                    double(o.activation_bytes) * t.activation_byte;
      o.fp32_energy_pj = double(reads) * t.fp32_add + (requantizes ? double(out_elems) * t.fp32_mult : 0.0) +
                         (op.kind == OpKind::Flatten ? 0.0 : fp32_act_energy);
    }
    r.params += o.params;
    r.weight_bytes += o.weight_bytes;
    r.macs += o.macs;
    r.bops += o.bops;
    r.activation_bytes += o.activation_bytes;
    r.energy_pj += o.energy_pj;
    r.fp32_energy_pj += o.fp32_energy_pj;
    r.ops.push_back(std::move(o));
  }
  // The input image: its codes are written once (quantization) and counted as read by its readers.
  r.energy_pj += double(shapes[0].size()) * t.activation_byte;
  r.fp32_energy_pj += 4.0 * double(shapes[0].size()) * t.activation_byte;
  r.bits_per_parameter = r.params ? double(weight_bits_total) / double(r.params) : 0.0;
  r.fp32_bytes = 4.0 * double(r.params);
  return r;
}

std::string metrics_table(const ModelMetrics& m) {
  std::ostringstream s;
  char line[320];
  std::snprintf(line, sizeof line, "%-3s %-16s %-8s %5s %10s %10s %12s %14s %12s %12s\n", "#", "op", "weights",
                "abits", "params", "bytes", "MACs", "BOPs", "energy nJ", "FP32 nJ");
  s << line;
  for (const OpMetrics& o : m.ops) {
    std::snprintf(line, sizeof line, "%-3d %-16s %-8s %5d %10lld %10lld %12lld %14lld %12.3f %12.3f\n", o.index,
                  o.name.c_str(), o.weight_format.c_str(), o.act_bits, static_cast<long long>(o.params),
                  static_cast<long long>(o.weight_bytes), static_cast<long long>(o.macs),
                  static_cast<long long>(o.bops), o.energy_pj / 1e3, o.fp32_energy_pj / 1e3);
    s << line;
  }
  std::snprintf(line, sizeof line, "%-3s %-16s %-8s %5s %10lld %10lld %12lld %14lld %12.3f %12.3f\n", "", "total", "",
                "", static_cast<long long>(m.params), static_cast<long long>(m.weight_bytes),
                static_cast<long long>(m.macs), static_cast<long long>(m.bops), m.energy_pj / 1e3,
                m.fp32_energy_pj / 1e3);
  s << line;
  std::snprintf(line, sizeof line,
                "file %lld bytes (FP32 %.0f bytes, %.2fx smaller), %.3f bits/parameter, energy %.3f nJ per inference "
                "(FP32 %.3f nJ, %.2fx less)\n",
                static_cast<long long>(m.file_bytes), m.fp32_bytes,
                m.file_bytes ? m.fp32_bytes / double(m.file_bytes) : 0.0, m.bits_per_parameter, m.energy_pj / 1e3,
                m.fp32_energy_pj / 1e3, m.energy_pj > 0 ? m.fp32_energy_pj / m.energy_pj : 0.0);
  s << line;
  s << "energy: estimate from Horowitz, ISSCC 2014 (45 nm) per-operation energies; weights from a 1 MB SRAM, "
       "activations from a 32 KB SRAM (docs/metrics.md)\n";
  return s.str();
}

}  // namespace lowbit::runtime
