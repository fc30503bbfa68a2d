#include "qat/fake_quant_aten.h"

#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "qat/qparam_layout.h"
#include "quant/per_token.h"
#include "quant/qparams.h"
#include "quant/rounding.h"

namespace lowbit::qat {
namespace {

std::atomic<bool>& forced() {
  static std::atomic<bool> flag{[] {
    const char* v = std::getenv("LOWBIT_FAKE_QUANT_ATEN");
    return v != nullptr && std::strcmp(v, "1") == 0;
  }()};
  return flag;
}

std::vector<int64_t> shape_of(const torch::Tensor& t) { return std::vector<int64_t>(t.sizes().begin(), t.sizes().end()); }

// The (scale, zero point) index of every element, in row-major order: quant::qparam_index, as
// QParamLayout's segments give it.
torch::Tensor param_index(const quant::QuantSpec& spec, const std::vector<int64_t>& shape, int64_t numel,
                          const torch::Device& device) {
  const auto i = torch::arange(numel, torch::TensorOptions(torch::kInt64).device(device));
  switch (spec.granularity) {
    case quant::Granularity::PerTensor: return torch::zeros_like(i);
    case quant::Granularity::PerChannel: {
      int64_t inner = 1;
      for (size_t d = spec.axis + 1; d < shape.size(); ++d) inner *= shape[d];
      return i.div(inner, "floor").remainder(shape[spec.axis]);
    }
    case quant::Granularity::PerGroup: {
      const int64_t row = numel / shape[0];
      const int64_t groups_per_row = (row + spec.group_size - 1) / spec.group_size;
      return i.div(row, "floor") * groups_per_row + i.remainder(row).div(spec.group_size, "floor");
    }
  }
  return i;
}

// As fake_quant.cpp's effective_scales / effective_zps, with tensor ops: NaN or tiny scales become
// kMinScale; zero points are round_half_even(zp) clamped to the grid (0 when NaN), or 0 for
// symmetric and odd grids.
torch::Tensor effective_scales(const torch::Tensor& scale, const torch::Device& device) {
  const torch::Tensor s = scale.detach().to(device, torch::kFloat32).reshape({-1});
  return torch::where(torch::isnan(s), torch::full_like(s, quant::kMinScale), s.clamp_min(quant::kMinScale));
}

torch::Tensor effective_zps(const torch::Tensor& zero_point, const quant::QuantSpec& spec, int64_t n,
                            const torch::Device& device) {
  const auto options = torch::TensorOptions(torch::kFloat32).device(device);
  if (spec.grid != quant::Grid::Integer || spec.symmetric || !zero_point.defined()) return torch::zeros({n}, options);
  torch::Tensor r = zero_point.detach().to(device, torch::kFloat32).reshape({-1}).round();
  r = torch::where(torch::isnan(r), torch::zeros_like(r), r);
  return r.clamp(static_cast<double>(spec.qmin()), static_cast<double>(spec.qmax()));
}

// The clamp of the kernels before rounding (quant::kRoundBoundedLimit); NaN passes through.
torch::Tensor bounded(const torch::Tensor& v) {
  constexpr double lim = quant::kRoundBoundedLimit;
  return v.clamp(-lim, lim);
}

struct Expanded {
  torch::Tensor x, idx, s, z;  // flat x and, per element, its param index, scale, zero point
  torch::Tensor s_param, z_param;
  int64_t num_params = 0;
};

Expanded expand(const torch::Tensor& x_in, const torch::Tensor& scale, const torch::Tensor& zero_point,
                const quant::QuantSpec& spec) {
  Expanded e;
  const std::vector<int64_t> shape = shape_of(x_in);
  const torch::Device device = x_in.device();
  e.num_params = quant::num_qparams(spec, shape);
  e.x = x_in.detach().to(torch::kFloat32).contiguous().reshape({-1});
  e.idx = param_index(spec, shape, e.x.numel(), device);
  e.s_param = effective_scales(scale, device);
  e.z_param = effective_zps(zero_point, spec, e.num_params, device);
  e.s = e.s_param.index_select(0, e.idx);
  e.z = e.z_param.index_select(0, e.idx);
  return e;
}

}  // namespace

bool fused_kernels_apply(const torch::Tensor& x) { return x.device().is_cpu() && !forced().load(); }

void force_aten_fake_quant(bool force) { forced().store(force); }

torch::Tensor fake_quantize_forward_aten(const torch::Tensor& x_in, const torch::Tensor& scale,
                                         const torch::Tensor& zero_point, const quant::QuantSpec& spec) {
  const Expanded e = expand(x_in, scale, zero_point, spec);
  torch::Tensor y;
  if (spec.grid == quant::Grid::Odd) {
    const double cmin = spec.code_min(), cmax = spec.code_max();
    torch::Tensor t = bounded(e.x / (e.s * 2.0) - 0.5).round();
    t = torch::where(torch::isnan(t), torch::zeros_like(t), t).clamp(cmin, cmax);
    y = e.s * (t * 2.0 + 1.0);
  } else {
    torch::Tensor t = bounded(e.x / e.s).round() + e.z;
    t = torch::where(torch::isnan(t), e.z, t).clamp(static_cast<double>(spec.qmin()), static_cast<double>(spec.qmax()));
    y = e.s * (t - e.z);
  }
  return y.view(x_in.sizes());
}

FakeQuantizeGrads fake_quantize_backward_aten(const torch::Tensor& grad_output, const torch::Tensor& x_in,
                                              const torch::Tensor& scale, const torch::Tensor& zero_point,
                                              const quant::QuantSpec& spec, Estimator estimator) {
  const Expanded e = expand(x_in, scale, zero_point, spec);
  const torch::Tensor g = grad_output.detach().to(x_in.device(), torch::kFloat32).contiguous().reshape({-1});
  const bool odd = spec.grid == quant::Grid::Odd;
  const bool want_scale = estimator != Estimator::Ste;
  const bool want_zp = estimator == Estimator::LsqPlus && !odd && !spec.symmetric;
  const double qmin = spec.qmin(), qmax = spec.qmax();

  const torch::Tensor v = e.x / e.s;
  const torch::Tensor w = v + e.z;
  const torch::Tensor inside = (w >= qmin).logical_and(w <= qmax);
  FakeQuantizeGrads out;
  out.input = torch::where(inside, g, torch::zeros_like(g)).view(x_in.sizes());
  if (!want_scale) return out;

  // LSQ's case split (fake_quant.h): at or below qmin -> qmin - z; at or above qmax -> qmax - z;
  // strictly inside -> q - z - v; NaN -> 0.
  torch::Tensor qz;
  if (odd) {
    qz = (e.x / (e.s * 2.0) - 0.5).round().clamp(spec.code_min(), spec.code_max()) * 2.0 + 1.0;
  } else {
    qz = ((v.round() + e.z).clamp(qmin, qmax)) - e.z;
  }
  const torch::Tensor lower = w <= qmin, upper = w >= qmax;
  const torch::Tensor zeros = torch::zeros_like(v);
  const torch::Tensor ds =
      torch::where(lower, qmin - e.z, torch::where(upper, qmax - e.z, torch::where(inside, qz - v, zeros)));
  const torch::Tensor g64 = g.to(torch::kFloat64);
  const auto f64 = torch::TensorOptions(torch::kFloat64).device(x_in.device());
  const torch::Tensor sum_s = torch::zeros({e.num_params}, f64).index_add_(0, e.idx, g64 * ds.to(torch::kFloat64));

  // gs = 1 / sqrt(N * Qp) per scale, N its number of elements (QParamLayout, as the kernels).
  const QParamLayout layout(spec, shape_of(x_in));
  std::vector<double> gs(static_cast<size_t>(e.num_params));
  const double qp = std::max(1.0f, static_cast<float>(qmax));
  for (int64_t p = 0; p < e.num_params; ++p) {
    const int64_t n = layout.elements_of(p);
    gs[static_cast<size_t>(p)] = n > 0 ? 1.0 / std::sqrt(static_cast<double>(n) * qp) : 0.0;
  }
  const torch::Tensor gs_t = torch::from_blob(gs.data(), {e.num_params}, torch::kFloat64).to(x_in.device());
  out.scale = (sum_s * gs_t).to(torch::kFloat32).to(scale.device());
  if (want_zp) {
    const torch::Tensor clamped = lower.logical_or(upper);
    const torch::Tensor contrib = torch::where(clamped, -(g64 * e.s.to(torch::kFloat64)), torch::zeros_like(g64));
    const torch::Tensor sum_z = torch::zeros({e.num_params}, f64).index_add_(0, e.idx, contrib);
    out.zero_point = (sum_z * gs_t).to(torch::kFloat32).to(zero_point.defined() ? zero_point.device() : scale.device());
  }
  return out;
}

torch::Tensor fake_quantize_per_token_aten(const torch::Tensor& x_in) {
  const torch::Tensor x = x_in.detach().to(torch::kFloat32);
  if (x.numel() == 0) return torch::empty_like(x);
  torch::Tensor a = x.abs();
  a = torch::where(torch::isnan(a), torch::zeros_like(a), a);  // NaN is ignored by the row's maximum
  const torch::Tensor m = a.amax(-1, /*keepdim=*/true);
  const torch::Tensor s = torch::where(m > 0, m / static_cast<double>(quant::kTokenQMax), torch::ones_like(m));
  torch::Tensor t = (x / s).round();
  t = torch::where(torch::isnan(t), torch::zeros_like(t), t).clamp(-quant::kTokenQMax, quant::kTokenQMax);
  return s * t;
}

}  // namespace lowbit::qat
