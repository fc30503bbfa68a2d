// Observers: range setting for fake quantization. An observer watches tensors, keeps one
// [min, max] per (scale, zero_point) pair of its QuantSpec, and turns them into quantization
// parameters with quant::choose_qparams, so the numbers are exactly those lowbit_quant (PTQ,
// convert, the runtime) would choose from the same range.
//
// Per-batch range, by kind:
//   MinMax               the batch's min and max;
//   MovingAverageMinMax  the batch's min and max;
//   Percentile           the (100 - p)-th and p-th percentiles (linear interpolation between
//                        order statistics, as numpy's default), p = options.percentile;
//   Mse                  the clipping range [f * min, f * max] that minimises
//                        sum (x - fake_quantize(x))^2 (quant::fake_quantize with the qparams
//                        choose_qparams gives for that range), f searched on an even grid of
//                        options.mse_candidates values in [options.mse_min_fraction, 1];
//                        ties keep the wider range. Cost: candidates x elements per batch, so
//                        use it for calibration batches and then freeze.
// Across batches: MinMax keeps the running min / max; the other kinds keep an exponential
// moving average  r <- (1 - momentum) * r + momentum * batch_r  (the first batch initialises).
// After options.freeze_after observe() calls (or freeze()), observe() changes nothing.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "qat/quantizer_options.h"  // ObserverKind, ObserverOptions
#include "quant/qparams.h"
#include "quant/quant_spec.h"
#include "torch_pch.h"

namespace lowbit::qat {

// Quantization parameters as tensors, one entry per (scale, zero_point) pair.
struct QParamTensors {
  torch::Tensor scale;       // float32 [P]
  torch::Tensor zero_point;  // int32 [P]
};

class Observer {
 public:
  explicit Observer(const quant::QuantSpec& spec, ObserverOptions options = {});

  // Updates the range from x (any float tensor; detached, CPU). No-op once frozen. The
  // number of (scale, zero_point) pairs is fixed by the first tensor's shape. With `combine`, the
  // batch range passes through the range combiner (set_range_combiner) first.
  void observe(const torch::Tensor& x, bool combine = false);

  void freeze() { frozen_ = true; }
  bool frozen() const { return frozen_; }
  int64_t steps() const { return steps_; }
  bool has_range() const { return min_.defined(); }
  const torch::Tensor& min() const { return min_; }  // float32 [P]
  const torch::Tensor& max() const { return max_; }  // float32 [P]

  // choose_qparams(min[p], max[p], spec) for every p. Throws if nothing was observed yet.
  QParamTensors qparams() const;
  std::vector<quant::QParams> qparams_vector() const;

  // Restore a saved state (from a checkpoint): min / max float32 [P].
  void load_state(const torch::Tensor& min, const torch::Tensor& max, int64_t steps, bool frozen);
  void reset();

  const quant::QuantSpec& spec() const { return spec_; }
  const ObserverOptions& options() const { return options_; }

 private:
  quant::QuantSpec spec_;
  ObserverOptions options_;
  torch::Tensor min_, max_;
  int64_t steps_ = 0;
  bool frozen_ = false;
};

// Data-parallel training: turns this process's batch range into the global batch's, in place
// (min over processes of the minima, max of the maxima), before the observer updates, so every
// process keeps the range one process would see on the whole batch. Exact for minmax and ema;
// for percentile and mse it combines per-shard ranges (an approximation). Every process must
// observe the same quantizers in the same order. Empty (the default): the local range only.
using RangeCombiner = std::function<void(torch::Tensor& lo, torch::Tensor& hi)>;
void set_range_combiner(RangeCombiner combiner);

// One batch's per-pair range under `options.kind` (what observe() combines across batches).
std::pair<torch::Tensor, torch::Tensor> batch_range(const torch::Tensor& x, const quant::QuantSpec& spec,
                                                    const ObserverOptions& options);

// Mean |x| per (scale, zero_point) pair, float32 [P]: ParetoQ's initial scale for binary
// weights (alpha = mean |W_row|, which for binary is exactly our scale).
torch::Tensor mean_abs_per_param(const torch::Tensor& x, const quant::QuantSpec& spec);

// Sum of squared fake-quantization errors per pair for the given qparams (double precision,
// quant::fake_quantize arithmetic). float64 [P]. Used by the MSE search and by tests.
torch::Tensor quantization_sse(const torch::Tensor& x, const quant::QuantSpec& spec, const QParamTensors& qp);

}  // namespace lowbit::qat
