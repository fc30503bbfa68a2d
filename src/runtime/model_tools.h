// Library functions behind the CLI's `describe` and `bench` subcommands.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "runtime/model.h"
#include "runtime/session.h"

namespace lowbit::runtime {

// Text table: one row per op (index, op, inputs, output shape, weight bits and grid, parameters,
// weight bytes, MACs per item) and totals (file bytes of serialize_model(model), parameters,
// weight bits per parameter, size versus FP32).
std::string describe_model(const Model& model);


// Multiply-accumulates per item of every conv2d / linear (the usual GMAC/s denominator).
int64_t model_macs_per_item(const Model& model);

struct BenchmarkResult {
  int64_t batch = 0;
  int threads = 0;
  std::string isa;
  std::vector<double> samples_ms;  // one per timed iteration
  double median_ms = 0, p90_ms = 0, p99_ms = 0;
  double items_per_s = 0;          // batch / median
  double gmacs_per_s = 0;          // model_macs_per_item * batch / median
  std::string to_string() const;
};

// Runs `iterations` timed batches (after 2 warm-up runs) of random inputs through `session`.
// `threads` is informational: the session's own pool size is used (pass the same number).
BenchmarkResult benchmark_model(Session& session, int64_t batch, int threads, int iterations);

// Per-op time of a model: the median over `iterations` runs (after 2 warm-up runs) of the CPU
// milliseconds each op took (Session::op_times_ms, summed over threads), on the same random inputs
// as benchmark_model. `session` must have been created with SessionOptions::profile.
struct OpProfile {
  int32_t index = 0;       // op number, 1-based as `lowbit inspect` prints it
  std::string kind;        // "conv2d", "linear", "add", ...
  std::string kernel;      // Session::kernel_names()'s line for the op
  double median_ms = 0.0;
};
struct ProfileResult {
  int64_t batch = 0;
  int threads = 0;
  std::string isa;
  std::vector<OpProfile> ops;
  double io_ms = 0.0;      // input quantization and output conversion
  double total_ms = 0.0;   // sum of the medians (ops and io)
};
ProfileResult profile_model(Session& session, int64_t batch, int iterations);

// Fills median / p90 / p99 (nearest rank), items_per_s and gmacs_per_s from r.samples_ms and
// r.batch; shared with benchmarks of other engines so that all report the same statistics.
void summarize_samples(BenchmarkResult& r, double macs_per_item);

}  // namespace lowbit::runtime
