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

double energy_pj(const Work& w, const EnergyTable& t) {
  return double(w.int_macs) * (t.int_mult(w.act_bits, w.weight_bits) + t.int32_add) +
         double(w.fp32_macs) * (t.fp32_mult + t.fp32_add) + double(w.fp32_mults) * t.fp32_mult +
         double(w.fp32_adds) * t.fp32_add + double(w.int32_mults) * t.int32_mult + double(w.int32_adds) * t.int32_add +
         double(w.weight_bytes) * t.weight_byte + double(w.activation_bytes) * t.activation_byte;
}

void add_op(ModelMetrics& m, OpMetrics o, const Work& w, const Work& fp32) {
  o.energy_pj = energy_pj(w, m.table);
  o.fp32_energy_pj = energy_pj(fp32, m.table);
  o.float_ops = w.fp32_mults + w.fp32_adds;
  m.params += o.params;
  m.weight_bytes += o.weight_bytes;
  m.macs += o.macs;
  m.bops += o.bops;
  m.activation_bytes += o.activation_bytes;
  m.energy_pj += o.energy_pj;
  m.fp32_energy_pj += o.fp32_energy_pj;
  if (o.math == "float") m.float_macs += o.macs;
  m.float_ops += o.float_ops;
  m.ops.push_back(std::move(o));
}

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
    Work w, f;  // integer model, FP32 model
    w.activation_bytes = o.activation_bytes;
    f.activation_bytes = 4 * (in_elems + out_elems);
    if (op.has_weights()) {
      o.weight_bits = op.weight.bits;
      o.weight_format = find_weight_format(op.weight.bits, op.weight.grid)->name;
      o.params = op.weight_count() + op.out_channels;
      o.weight_bytes = static_cast<int64_t>(op.weight.packed.size() + op.bias_q.size() * 4 +
                                            op.multipliers.size() * 8 + op.out_scale.size() * 4);
      o.weight_read_bytes = o.weight_bytes;
      o.macs = op.weight_count() * out.h * out.w;
      o.bops = o.macs * o.weight_bits * o.act_bits;
      weight_bits_total += op.weight_count() * op.weight.bits + int64_t{op.out_channels} * 32;
      // Integer: an a x w multiply and an int32 accumulate per MAC; per output an int32 bias add and
      // the requantization (int32 multiply, rounding add) or, for the output layer, one float multiply.
      w.int_macs = o.macs;
      w.act_bits = o.act_bits;
      w.weight_bits = o.weight_bits;
      w.int32_adds = op.output_layer ? out_elems : 2 * out_elems;
      w.int32_mults = op.output_layer ? 0 : out_elems;
      w.fp32_mults = op.output_layer ? out_elems : 0;
      w.weight_bytes = o.weight_bytes;
      // FP32: a float multiply-add per MAC, a float bias add per output, 4 bytes per parameter.
      f.fp32_macs = o.macs;
      f.fp32_adds = out_elems;
      f.weight_bytes = 4 * o.params;
    } else if (op.kind == OpKind::Lookup) {
      // One table read per element (the 256-byte table stays in L1, counted like an activation
      // byte); the float model evaluates the function instead, counted as one multiply and one add
      // per element (a lower bound for sigmoid and tanh).
      o.weight_format = "table";
      o.weight_bytes = static_cast<int64_t>(op.table.size());
      w.activation_bytes += in_elems;
      f.fp32_mults = f.fp32_adds = in_elems;
    } else {
      o.weight_format = "-";
      // Pools and adds: one add or compare per input element read; average pool and add also
      // requantize each output (int32 multiply and add). Flatten moves nothing (linears read around it).
      const bool requantizes = op.kind == OpKind::AvgPool2d || op.kind == OpKind::GlobalAvgPool || op.kind == OpKind::Add;
      const int64_t reads = op.kind == OpKind::Flatten ? 0
                            : (op.kind == OpKind::MaxPool2d || op.kind == OpKind::AvgPool2d)
                                ? out_elems * op.kernel_h * op.kernel_w
                                : in_elems;
      if (op.kind == OpKind::Flatten) o.activation_bytes = w.activation_bytes = f.activation_bytes = 0;
      w.int32_adds = reads + (requantizes ? out_elems : 0);
      w.int32_mults = requantizes ? out_elems : 0;
      f.fp32_adds = reads;
      f.fp32_mults = requantizes ? out_elems : 0;
    }
    add_op(r, std::move(o), w, f);
  }
  // The input image: its codes are written once (quantization) and counted as read by its readers.
  r.energy_pj += double(shapes[0].size()) * t.activation_byte;
  r.fp32_energy_pj += 4.0 * double(shapes[0].size()) * t.activation_byte;
  r.bits_per_parameter = r.params ? double(weight_bits_total) / double(r.params) : 0.0;
  r.fp32_bytes = 4.0 * double(r.params);
  return r;
}

std::string metrics_table(const ModelMetrics& m) {
  // Models with float ops (transformers) get a math column and their float operations besides MACs.
  bool has_float = false;
  for (const OpMetrics& o : m.ops) has_float = has_float || o.math == "float";
  std::ostringstream s;
  char line[400];
  auto row = [&](const std::string& index, const std::string& name, const std::string& format, const std::string& math,
                 const std::string& abits, int64_t params, int64_t bytes, int64_t macs, int64_t bops, int64_t fops,
                 double nj, double fp32_nj) {
    int n = std::snprintf(line, sizeof line, "%-3s %-18s %-8s ", index.c_str(), name.c_str(), format.c_str());
    if (has_float) n += std::snprintf(line + n, sizeof line - n, "%-7s ", math.c_str());
    n += std::snprintf(line + n, sizeof line - n, "%5s %10lld %10lld %12lld %14lld ", abits.c_str(),
                       static_cast<long long>(params), static_cast<long long>(bytes), static_cast<long long>(macs),
                       static_cast<long long>(bops));
    if (has_float) n += std::snprintf(line + n, sizeof line - n, "%10lld ", static_cast<long long>(fops));
    std::snprintf(line + n, sizeof line - n, "%12.3f %12.3f\n", nj, fp32_nj);
    s << line;
  };
  {
    int n = std::snprintf(line, sizeof line, "%-3s %-18s %-8s ", "#", "op", "weights");
    if (has_float) n += std::snprintf(line + n, sizeof line - n, "%-7s ", "math");
    n += std::snprintf(line + n, sizeof line - n, "%5s %10s %10s %12s %14s ", "abits", "params", "bytes", "MACs", "BOPs");
    if (has_float) n += std::snprintf(line + n, sizeof line - n, "%10s ", "float ops");
    std::snprintf(line + n, sizeof line - n, "%12s %12s\n", "energy nJ", "FP32 nJ");
    s << line;
  }
  for (const OpMetrics& o : m.ops)
    row(std::to_string(o.index), o.name, o.weight_format, o.math, o.act_bits ? std::to_string(o.act_bits) : "-",
        o.params, o.weight_bytes, o.macs, o.bops, o.float_ops, o.energy_pj / 1e3, o.fp32_energy_pj / 1e3);
  row("", "total", "", "", "", m.params, m.weight_bytes, m.macs, m.bops, m.float_ops, m.energy_pj / 1e3,
      m.fp32_energy_pj / 1e3);
  std::snprintf(line, sizeof line,
                "file %lld bytes (FP32 %.0f bytes, %.2fx smaller), %.3f bits/parameter, energy %.3f nJ per inference "
                "(FP32 %.3f nJ, %.2fx less)\n",
                static_cast<long long>(m.file_bytes), m.fp32_bytes,
                m.file_bytes ? m.fp32_bytes / double(m.file_bytes) : 0.0, m.bits_per_parameter, m.energy_pj / 1e3,
                m.fp32_energy_pj / 1e3, m.energy_pj > 0 ? m.fp32_energy_pj / m.energy_pj : 0.0);
  s << line;
  s << "one inference: " << m.inference << "\n";
  if (has_float) {
    std::snprintf(line, sizeof line,
                  "float in the runtime: %lld of %lld MACs (%.1f%%; BOPs at 32 x 32 bits) and %lld other float "
                  "operations (norms, softmax, epilogues, quantization of activations)\n",
                  static_cast<long long>(m.float_macs), static_cast<long long>(m.macs),
                  m.macs ? 100.0 * double(m.float_macs) / double(m.macs) : 0.0, static_cast<long long>(m.float_ops));
    s << line;
  }
  s << "energy: estimate from Horowitz, ISSCC 2014 (45 nm) per-operation energies; weights from a 1 MB SRAM, "
       "activations from a 32 KB SRAM (docs/metrics.md)\n";
  return s.str();
}

}  // namespace lowbit::runtime
