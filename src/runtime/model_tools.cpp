#include "runtime/model_tools.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>
#include <sstream>

#include "base/error.h"
#include "runtime/deployment_metrics.h"

namespace lowbit::runtime {

int64_t model_macs_per_item(const Model& model) { return macs_per_item(model, validate_model(model)); }

std::string describe_model(const Model& model) {
  const auto shapes = validate_model(model);
  const ModelMetrics metrics = model_metrics(model);  // params, bytes, MACs per op
  std::ostringstream s;
  char line[256];
  std::snprintf(line, sizeof line, "%-3s %-15s %-8s %-14s %-10s %10s %10s %12s\n", "#", "op", "inputs", "output [C,H,W]",
                "weights", "params", "bytes", "MACs/item");
  s << line;
  auto shape_str = [](const ValueShape& v) {
    return "[" + std::to_string(v.c) + "," + std::to_string(v.h) + "," + std::to_string(v.w) + "]";
  };
  std::snprintf(line, sizeof line, "%-3s %-15s %-8s %-14s %-10s %10s %10s %12s\n", "-", "input", "-",
                shape_str(shapes[0]).c_str(), "-", "0", "0", "0");
  s << line;
  for (size_t i = 0; i < model.ops.size(); ++i) {
    const Op& op = model.ops[i];
    const OpMetrics& o = metrics.ops[i];
    std::string inputs;
    for (int32_t v : op.inputs) inputs += (inputs.empty() ? "" : ",") + std::to_string(v);
    const std::string name = o.name + (op.output_layer ? "*" : "");
    std::snprintf(line, sizeof line, "%-3zu %-15s %-8s %-14s %-10s %10lld %10lld %12lld\n", i + 1, name.c_str(),
                  inputs.c_str(), shape_str(shapes[i + 1]).c_str(), o.weight_format.c_str(),
                  static_cast<long long>(o.params), static_cast<long long>(o.weight_bytes),
                  static_cast<long long>(o.macs));
    s << line;
  }
  s << "(* = output layer: int32 logits)\n";
  if (!model.input_mean.empty()) {  // applied to [0, 1] images before the input is quantized
    s << "input normalisation (x - mean) / std: mean";
    for (float v : model.input_mean) s << " " << v;
    s << ", std";
    for (float v : model.input_std) s << " " << v;
    s << "\n";
  }
  std::snprintf(line, sizeof line,
                "total: %lld parameters, %.3f bits/parameter, tensor bytes %lld, file bytes %lld, "
                "FP32 size %.0f bytes (%.2fx smaller), %lld MACs/item\n",
                static_cast<long long>(metrics.params), metrics.bits_per_parameter,
                static_cast<long long>(metrics.weight_bytes), static_cast<long long>(metrics.file_bytes),
                metrics.fp32_bytes, metrics.file_bytes ? metrics.fp32_bytes / double(metrics.file_bytes) : 0.0,
                static_cast<long long>(metrics.macs));
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

namespace {
std::vector<float> random_inputs(const Model& m, int64_t batch) {
  std::vector<float> x(static_cast<size_t>(batch * m.in_channels * m.in_height * m.in_width));
  std::mt19937 rng(1);
  const float lo = m.input.scale * (m.input.qmin - m.input.zero_point), hi = m.input.scale * (m.input.qmax - m.input.zero_point);
  std::uniform_real_distribution<float> d(lo, hi);
  for (auto& v : x) v = d(rng);
  return x;
}
double median_of(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0.0 : v[v.size() / 2];
}
}  // namespace

ProfileResult profile_model(Session& session, int64_t batch, int iterations) {
  const Model& m = session.model();
  const std::vector<float> x = random_inputs(m, batch);
  for (int i = 0; i < 2; ++i) session.run(x.data(), batch);
  const size_t n_ops = m.ops.size();
  LOWBIT_CHECK(session.op_times_ms().size() == n_ops + 1,
               "profile_model: the session was not created with SessionOptions::profile");
  std::vector<std::vector<double>> samples(n_ops + 1);
  for (int i = 0; i < std::max(1, iterations); ++i) {
    session.run(x.data(), batch);
    const std::vector<double>& t = session.op_times_ms();
    for (size_t k = 0; k <= n_ops; ++k) samples[k].push_back(t[k]);
  }
  ProfileResult r;
  r.batch = batch;
  r.threads = session.threads();
  r.isa = isa_name(session.isa());
  const std::vector<std::string> kernels = session.kernel_names();
  for (size_t k = 0; k < n_ops; ++k) {
    OpProfile o;
    o.index = static_cast<int32_t>(k + 1);
    o.kind = op_kind_name(m.ops[k].kind);
    o.kernel = k < kernels.size() ? kernels[k] : "";
    o.median_ms = median_of(samples[k]);
    r.total_ms += o.median_ms;
    r.ops.push_back(o);
  }
  r.io_ms = median_of(samples[n_ops]);
  r.total_ms += r.io_ms;
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
