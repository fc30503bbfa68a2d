#include "runtime/model_tools.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>
#include <sstream>

#include "runtime/model_file.h"
#include "runtime/weight_format.h"

namespace lowbit::runtime {

int64_t model_macs_per_item(const Model& model) { return macs_per_item(model, validate_model(model)); }

ModelTotals model_totals(const Model& model) {
  const auto shapes = validate_model(model);
  ModelTotals t;
  for (size_t i = 0; i < model.ops.size(); ++i) {
    const Op& op = model.ops[i];
    if (!op.has_weights()) continue;
    t.parameters += op.weight_count() + op.out_channels;
    t.weight_bits += op.weight_count() * op.weight.bits + op.out_channels * 32;
    t.macs_per_item += op.weight_count() * shapes[i + 1].h * shapes[i + 1].w;
  }
  return t;
}

std::string describe_model(const Model& model) {
  const auto shapes = validate_model(model);
  const size_t file_bytes = serialize_model(model).size();
  std::ostringstream s;
  char line[256];
  std::snprintf(line, sizeof line, "%-3s %-15s %-8s %-14s %-10s %10s %10s %12s\n", "#", "op", "inputs", "output [C,H,W]",
                "weights", "params", "bytes", "MACs/item");
  s << line;
  int64_t params = 0, weight_bits = 0, weight_bytes = 0, macs = 0;
  auto shape_str = [](const ValueShape& v) {
    return "[" + std::to_string(v.c) + "," + std::to_string(v.h) + "," + std::to_string(v.w) + "]";
  };
  std::snprintf(line, sizeof line, "%-3s %-15s %-8s %-14s %-10s %10s %10s %12s\n", "-", "input", "-",
                shape_str(shapes[0]).c_str(), "-", "0", "0", "0");
  s << line;
  for (size_t i = 0; i < model.ops.size(); ++i) {
    const Op& op = model.ops[i];
    std::string inputs;
    for (int32_t v : op.inputs) inputs += (inputs.empty() ? "" : ",") + std::to_string(v);
    std::string w = "-";
    int64_t p = 0, bytes = 0, mac = 0;
    if (op.has_weights()) {
      w = find_weight_format(op.weight.bits, op.weight.grid)->name;  // validate_model admitted it
      p = op.weight_count() + op.out_channels;  // weights + biases
      bytes = static_cast<int64_t>(op.weight.packed.size() + op.bias_q.size() * 4 + op.multipliers.size() * 8 +
                                   op.out_scale.size() * 4);
      mac = op.weight_count() * shapes[i + 1].h * shapes[i + 1].w;
      weight_bits += op.weight_count() * op.weight.bits + op.out_channels * 32;
    }
    std::string name = op_kind_name(op.kind);
    if (op.kind == OpKind::Conv2d || op.kind == OpKind::MaxPool2d || op.kind == OpKind::AvgPool2d)
      name += " " + std::to_string(op.kernel_h) + "x" + std::to_string(op.kernel_w);
    if (op.output_layer) name += "*";
    std::snprintf(line, sizeof line, "%-3zu %-15s %-8s %-14s %-10s %10lld %10lld %12lld\n", i + 1, name.c_str(),
                  inputs.c_str(), shape_str(shapes[i + 1]).c_str(), w.c_str(), static_cast<long long>(p),
                  static_cast<long long>(bytes), static_cast<long long>(mac));
    s << line;
    params += p;
    weight_bytes += bytes;
    macs += mac;
  }
  s << "(* = output layer: int32 logits)\n";
  const double fp32_bytes = 4.0 * static_cast<double>(params);
  std::snprintf(line, sizeof line,
                "total: %lld parameters, %.3f bits/parameter, tensor bytes %lld, file bytes %zu, "
                "FP32 size %.0f bytes (%.2fx smaller), %lld MACs/item\n",
                static_cast<long long>(params), params ? double(weight_bits) / params : 0.0,
                static_cast<long long>(weight_bytes), file_bytes, fp32_bytes,
                file_bytes ? fp32_bytes / double(file_bytes) : 0.0, static_cast<long long>(macs));
  s << line;
  return s.str();
}

std::string BenchmarkResult::to_string() const {
  char line[256];
  std::snprintf(line, sizeof line, "batch %lld, %d threads, isa %s: median %.4f ms, p90 %.4f ms, p99 %.4f ms, %.1f items/s",
                static_cast<long long>(batch), threads, isa.c_str(), median_ms, p90_ms, p99_ms, items_per_s);
  std::string out = line;
  if (gmacs_per_s > 0) {  // unknown (0) for engines whose MAC count lowbit does not compute
    std::snprintf(line, sizeof line, ", %.1f GMAC/s", gmacs_per_s);
    out += line;
  }
  return out;
}

BenchmarkResult benchmark_model(Session& session, int64_t batch, int threads, int iterations) {
  const Model& m = session.model();
  const int64_t n = batch * m.in_channels * m.in_height * m.in_width;
  std::vector<float> x(static_cast<size_t>(n));
  std::mt19937 rng(1);
  const float lo = m.input.scale * (m.input.qmin - m.input.zero_point), hi = m.input.scale * (m.input.qmax - m.input.zero_point);
  std::uniform_real_distribution<float> d(lo, hi);
  for (auto& v : x) v = d(rng);
  for (int i = 0; i < 2; ++i) session.run(x.data(), batch);
  BenchmarkResult r;
  r.batch = batch;
  r.threads = threads;
  r.isa = isa_name(session.isa());
  for (int i = 0; i < std::max(1, iterations); ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    session.run(x.data(), batch);
    const auto t1 = std::chrono::steady_clock::now();
    r.samples_ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
  }
  summarize_samples(r, static_cast<double>(model_macs_per_item(m)));
  return r;
}

void summarize_samples(BenchmarkResult& r, double macs_per_item) {
  std::vector<double> s = r.samples_ms;
  if (s.empty()) return;
  std::sort(s.begin(), s.end());
  auto pct = [&](double q) { return s[std::min(s.size() - 1, static_cast<size_t>(q * (s.size() - 1) + 0.5))]; };
  r.median_ms = pct(0.5);
  r.p90_ms = pct(0.9);
  r.p99_ms = pct(0.99);
  r.items_per_s = r.batch / (r.median_ms / 1000.0);
  r.gmacs_per_s = macs_per_item * r.batch / (r.median_ms / 1000.0) / 1e9;
}

}  // namespace lowbit::runtime
