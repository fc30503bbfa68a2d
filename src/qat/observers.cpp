#include "qat/observers.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>

#include "base/error.h"
#include "qat/qparam_layout.h"
#include "quant/quantize.h"

namespace lowbit::qat {
namespace {

std::vector<int64_t> shape_of(const torch::Tensor& t) { return std::vector<int64_t>(t.sizes().begin(), t.sizes().end()); }

torch::Tensor as_float_cpu(const torch::Tensor& x, const char* what) {
  LOWBIT_CHECK(x.defined() && x.is_floating_point(), std::string(what) + ": expected a floating-point tensor");
  return x.detach().to(torch::kCPU, torch::kFloat32).contiguous();
}

// The values of each (scale, zero_point) pair, copied out in element order.
std::vector<std::vector<float>> values_per_param(const torch::Tensor& x, const quant::QuantSpec& spec) {
  const QParamLayout layout(spec, shape_of(x));
  std::vector<std::vector<float>> out(layout.num_params());
  for (int64_t p = 0; p < layout.num_params(); ++p) out[p].reserve(layout.elements_of(p));
  const float* xp = x.data_ptr<float>();
  for (int64_t i = 0; i < layout.num_segments(); ++i) {
    const Segment s = layout.segment(i);
    out[s.param].insert(out[s.param].end(), xp + s.begin, xp + s.begin + s.length);
  }
  return out;
}

// Linear interpolation between order statistics at fractional rank q * (n - 1).
float percentile_of(std::vector<float>& v, double q) {
  const double rank = q * static_cast<double>(v.size() - 1);
  const size_t lo = static_cast<size_t>(std::floor(rank));
  const size_t hi = std::min(lo + 1, v.size() - 1);
  std::nth_element(v.begin(), v.begin() + lo, v.end());
  const float a = v[lo];
  float b = a;
  if (hi != lo) b = *std::min_element(v.begin() + lo + 1, v.end());  // next order statistic
  return static_cast<float>(a + (rank - static_cast<double>(lo)) * (static_cast<double>(b) - a));
}

double sse_of(const std::vector<float>& v, const quant::QParams& qp, const quant::GridParams& g) {
  double sum = 0.0;
  for (float x : v) {
    const double e = static_cast<double>(x) - quant::fake_quantize(x, qp.scale, qp.zero_point, g);
    sum += e * e;
  }
  return sum;
}

}  // namespace

std::pair<torch::Tensor, torch::Tensor> batch_range(const torch::Tensor& x_in, const quant::QuantSpec& spec,
                                                    const ObserverOptions& options) {
  spec.validate();
  options.validate();
  const torch::Tensor x = as_float_cpu(x_in, "observer");
  LOWBIT_CHECK(x.numel() > 0, "observer: cannot observe an empty tensor of shape " + c10::str(x.sizes()));
  const auto not_finite = [&] {
    return Error("observer: the observed tensor of shape " + c10::str(x.sizes()) +
                 " has inf or NaN values (diverged training or bad input data?)");
  };
  const bool plain_range = options.kind == ObserverKind::MinMax || options.kind == ObserverKind::MovingAverageMinMax;
  const bool per_tensor = spec.granularity == quant::Granularity::PerTensor;
  const bool per_leading_channel = spec.granularity == quant::Granularity::PerChannel && spec.axis == 0 && x.dim() >= 1;
  if (plain_range && (per_tensor || per_leading_channel)) {
    // The common case (activations per tensor, weights per output channel): one vectorised pass
    // of ATen's aminmax, without copying the values out. NaN and inf propagate into the extremes,
    // so checking the extremes checks every value.
    torch::Tensor lo, hi;
    if (per_tensor) {  // full reductions: ATen's dim-wise aminmax on one long row is far slower
      lo = x.min().reshape({1});
      hi = x.max().reshape({1});
    } else {
      std::tie(lo, hi) = torch::aminmax(x.reshape({x.size(0), -1}), 1);
    }
    if (!torch::isfinite(lo).all().item<bool>() || !torch::isfinite(hi).all().item<bool>()) throw not_finite();
    return {lo.contiguous(), hi.contiguous()};
  }
  if (!torch::isfinite(x).all().item<bool>()) throw not_finite();
  std::vector<std::vector<float>> values = values_per_param(x, spec);
  const int64_t n = static_cast<int64_t>(values.size());
  torch::Tensor lo = torch::empty({n}, torch::kFloat32), hi = torch::empty({n}, torch::kFloat32);
  float* lop = lo.data_ptr<float>();
  float* hip = hi.data_ptr<float>();
  const auto g = quant::GridParams::of(spec);
  at::parallel_for(0, n, 1, [&](int64_t first, int64_t last) {
    for (int64_t p = first; p < last; ++p) {
      std::vector<float>& v = values[p];
      if (v.empty()) {  // a zero-length dimension: any range will do
        lop[p] = hip[p] = 0.0f;
        continue;
      }
      const auto [mn, mx] = std::minmax_element(v.begin(), v.end());
      float a = *mn, b = *mx;
      if (options.kind == ObserverKind::Percentile) {
        const double q = options.percentile / 100.0;
        b = percentile_of(v, q);
        a = percentile_of(v, 1.0 - q);
      } else if (options.kind == ObserverKind::Mse) {
        float best_a = a, best_b = b;
        double best = sse_of(v, quant::choose_qparams(a, b, spec), g);
        const int k = options.mse_candidates;
        for (int i = k - 1; i >= 1; --i) {  // from wide to narrow: ties keep the wider range
          const double f = options.mse_min_fraction + (1.0 - options.mse_min_fraction) * (i - 1) / std::max(1, k - 1);
          const float ca = static_cast<float>(a * f), cb = static_cast<float>(b * f);
          const double e = sse_of(v, quant::choose_qparams(ca, cb, spec), g);
          if (e < best) {
            best = e;
            best_a = ca;
            best_b = cb;
          }
        }
        a = best_a;
        b = best_b;
      }
      lop[p] = a;
      hip[p] = b;
    }
  });
  return {lo, hi};
}

Observer::Observer(const quant::QuantSpec& spec, ObserverOptions options) : spec_(spec), options_(options) {
  spec_.validate();
  options_.validate();
}

namespace {
RangeCombiner& range_combiner() {
  static RangeCombiner combiner;
  return combiner;
}
}  // namespace

void set_range_combiner(RangeCombiner combiner) { range_combiner() = std::move(combiner); }

void Observer::observe(const torch::Tensor& x, bool combine) {
  if (frozen_) return;
  auto [lo, hi] = batch_range(x, spec_, options_);
  if (combine && range_combiner()) range_combiner()(lo, hi);
  if (!min_.defined()) {
    min_ = lo;
    max_ = hi;
  } else {
    LOWBIT_CHECK(lo.numel() == min_.numel(),
                 "observer for " + spec_.describe() + " saw " + std::to_string(min_.numel()) +
                     " quantization groups before and now a tensor of shape " + c10::str(x.sizes()) + " with " +
                     std::to_string(lo.numel()) + "; one observer watches one tensor");
    if (options_.kind == ObserverKind::MinMax) {
      min_ = torch::minimum(min_, lo);
      max_ = torch::maximum(max_, hi);
    } else {
      // In double, then rounded once to float.
      const double m = options_.momentum;
      min_ = ((1.0 - m) * min_.to(torch::kFloat64) + m * lo.to(torch::kFloat64)).to(torch::kFloat32);
      max_ = ((1.0 - m) * max_.to(torch::kFloat64) + m * hi.to(torch::kFloat64)).to(torch::kFloat32);
    }
  }
  ++steps_;
  if (options_.freeze_after >= 0 && steps_ >= options_.freeze_after) frozen_ = true;
}

std::vector<quant::QParams> Observer::qparams_vector() const {
  LOWBIT_CHECK(has_range(), "observer for " + spec_.describe() +
                                " has not observed any data yet; run at least one calibration batch first");
  std::vector<quant::QParams> out(min_.numel());
  for (int64_t p = 0; p < min_.numel(); ++p) {
    out[p] = quant::choose_qparams(min_[p].item<float>(), max_[p].item<float>(), spec_);
  }
  return out;
}

QParamTensors Observer::qparams() const {
  const std::vector<quant::QParams> v = qparams_vector();
  QParamTensors t{torch::empty({static_cast<int64_t>(v.size())}, torch::kFloat32),
                  torch::empty({static_cast<int64_t>(v.size())}, torch::kInt32)};
  for (size_t p = 0; p < v.size(); ++p) {
    t.scale.data_ptr<float>()[p] = v[p].scale;
    t.zero_point.data_ptr<int32_t>()[p] = v[p].zero_point;
  }
  return t;
}

void Observer::load_state(const torch::Tensor& min, const torch::Tensor& max, int64_t steps, bool frozen) {
  LOWBIT_CHECK(min.defined() == max.defined() && (!min.defined() || min.numel() == max.numel()),
               "observer state: min and max must both be present with the same number of entries");
  min_ = min.defined() ? min.detach().to(torch::kFloat32).contiguous().clone() : torch::Tensor();
  max_ = max.defined() ? max.detach().to(torch::kFloat32).contiguous().clone() : torch::Tensor();
  steps_ = steps;
  frozen_ = frozen;
}

void Observer::reset() {
  min_ = torch::Tensor();
  max_ = torch::Tensor();
  steps_ = 0;
  frozen_ = false;
}

torch::Tensor mean_abs_per_param(const torch::Tensor& x_in, const quant::QuantSpec& spec) {
  const torch::Tensor x = as_float_cpu(x_in, "mean_abs_per_param");
  const std::vector<std::vector<float>> values = values_per_param(x, spec);
  torch::Tensor out = torch::empty({static_cast<int64_t>(values.size())}, torch::kFloat32);
  for (size_t p = 0; p < values.size(); ++p) {
    double sum = 0.0;
    for (float v : values[p]) sum += std::abs(static_cast<double>(v));
    out.data_ptr<float>()[p] = values[p].empty() ? 0.0f : static_cast<float>(sum / values[p].size());
  }
  return out;
}

torch::Tensor quantization_sse(const torch::Tensor& x_in, const quant::QuantSpec& spec, const QParamTensors& qp) {
  const torch::Tensor x = as_float_cpu(x_in, "quantization_sse");
  const std::vector<std::vector<float>> values = values_per_param(x, spec);
  LOWBIT_CHECK(qp.scale.numel() == static_cast<int64_t>(values.size()) && qp.zero_point.numel() == qp.scale.numel(),
               "quantization_sse: expected " + std::to_string(values.size()) + " scales and zero points");
  const torch::Tensor s = qp.scale.to(torch::kFloat32).contiguous();
  const torch::Tensor z = qp.zero_point.to(torch::kInt32).contiguous();
  const auto g = quant::GridParams::of(spec);
  torch::Tensor out = torch::empty({static_cast<int64_t>(values.size())}, torch::kFloat64);
  for (size_t p = 0; p < values.size(); ++p) {
    out.data_ptr<double>()[p] = sse_of(values[p], {s.data_ptr<float>()[p], z.data_ptr<int32_t>()[p]}, g);
  }
  return out;
}

}  // namespace lowbit::qat
