#include "models/sync_batch_norm.h"

#include <ATen/Parallel.h>

#include <cmath>
#include <mutex>
#include <utility>

#include "base/error.h"

namespace lowbit::models {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

std::mutex g_mutex;
BatchStatsAllreduce g_allreduce;  // empty: per-process statistics

// The all-reduce travels from forward to backward inside the autograd context.
// Also the running statistics (updated in forward, possibly undefined: Function::apply takes no
// undefined tensors in LibTorch 1.13).
struct AllreduceHolder : torch::CustomClassHolder {
  explicit AllreduceHolder(BatchStatsAllreduce f) : fn(std::move(f)) {}
  BatchStatsAllreduce fn;
  torch::Tensor running_mean, running_var;
};

// x viewed as [N, C, S] contiguous float.
struct Layout {
  int64_t n, c, s;
};
Layout layout_of(const torch::Tensor& x) {
  const int64_t s = x.numel() / std::max<int64_t>(1, x.size(0) * x.size(1));
  return {x.size(0), x.size(1), s};
}

// Per channel, in float64 (as ATen accumulates float batch norm on the CPU): sum of a and, when
// b is given, sum of a * (b - shift[c]); b == a gives the centred sum of squares.
void channel_sums(const float* a, const float* b, const double* shift, Layout l, double* sum_a, double* sum_ab) {
  at::parallel_for(0, l.c, 1, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      double sa = 0.0, sab = 0.0;
      const double m = shift != nullptr ? shift[c] : 0.0;
      for (int64_t n = 0; n < l.n; ++n) {
        const float* pa = a + (n * l.c + c) * l.s;
        const float* pb = b != nullptr ? b + (n * l.c + c) * l.s : nullptr;
        for (int64_t i = 0; i < l.s; ++i) {
          sa += pa[i];
          if (pb != nullptr) sab += static_cast<double>(pa[i]) * (static_cast<double>(pb[i]) - m);
        }
      }
      sum_a[c] = sa;
      if (sum_ab != nullptr) sum_ab[c] = sab;
    }
  });
}

// out[n, c, i] = u[n, c, i] * p[c] + q[c] (+ v[n, c, i] * r[c] when v is given), in float.
void affine_per_channel(const float* u, const float* p, const float* q, const float* v, const float* r, Layout l,
                        float* out) {
  at::parallel_for(0, l.n * l.c, 1, [&](int64_t k0, int64_t k1) {
    for (int64_t k = k0; k < k1; ++k) {
      const int64_t c = k % l.c;
      const float* pu = u + k * l.s;
      float* po = out + k * l.s;
      const float pc = p[c], qc = q[c];
      if (v == nullptr) {
        for (int64_t i = 0; i < l.s; ++i) po[i] = pu[i] * pc + qc;
      } else {
        const float* pv = v + k * l.s;
        const float rc = r[c];
        for (int64_t i = 0; i < l.s; ++i) po[i] = pu[i] * pc + pv[i] * rc + qc;
      }
    }
  });
}

struct SyncBatchNormFunction : torch::autograd::Function<SyncBatchNormFunction> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& input, const torch::Tensor& weight,
                               const torch::Tensor& bias, double momentum, double eps,
                               c10::intrusive_ptr<AllreduceHolder> allreduce) {
    torch::Tensor& running_mean = allreduce->running_mean;
    torch::Tensor& running_var = allreduce->running_var;
    LOWBIT_CHECK(input.dim() >= 2 && input.scalar_type() == torch::kFloat,
                 "sync_batch_norm: expects a float32 tensor [N, C, ...], got " + c10::str(input.sizes()) + " " +
                     c10::str(input.scalar_type()));
    const torch::Tensor x = input.contiguous();
    const Layout l = layout_of(x);
    const bool cpu = x.device().is_cpu();  // else ATen ops on the device, statistics via the host
    const auto f64 = torch::TensorOptions().dtype(torch::kDouble);
    // One all-reduce of [sum (C), sum of squares (C), count]. x * x of a float is exact in
    // float64, so the one-pass variance loses only float64 rounding.
    torch::Tensor stats = torch::empty({2 * l.c + 1}, f64);
    if (cpu) {
      double* st0 = stats.data_ptr<double>();
      channel_sums(x.data_ptr<float>(), x.data_ptr<float>(), nullptr, l, st0, st0 + l.c);
    } else {
      const torch::Tensor xd = x.view({l.n, l.c, l.s}).to(torch::kDouble);
      stats.narrow(0, 0, l.c).copy_(xd.sum(torch::IntArrayRef{0, 2}));
      stats.narrow(0, l.c, l.c).copy_(xd.square().sum(torch::IntArrayRef{0, 2}));
    }
    double* st = stats.data_ptr<double>();
    st[2 * l.c] = static_cast<double>(l.n * l.s);
    allreduce->fn(stats);
    st = stats.data_ptr<double>();
    const double count = st[2 * l.c];
    LOWBIT_CHECK(count > 1, "batch norm in training needs more than one value per channel over the global batch, got " +
                                std::to_string(static_cast<int64_t>(count)) + "; use a larger --batch-size");
    torch::Tensor mean_d = torch::empty({l.c}, f64), var_d = torch::empty({l.c}, f64);
    torch::Tensor invstd_d = torch::empty({l.c}, f64);
    for (int64_t c = 0; c < l.c; ++c) {
      const double m = st[c] / count;
      const double v = std::max(0.0, st[l.c + c] / count - m * m);  // biased, as batch norm normalises
      mean_d.data_ptr<double>()[c] = m;
      var_d.data_ptr<double>()[c] = v;
      invstd_d.data_ptr<double>()[c] = 1.0 / std::sqrt(v + eps);
    }
    {
      torch::NoGradGuard no_grad;
      if (running_mean.defined())
        running_mean.copy_(mean_d.to(running_mean.device()) * momentum + running_mean.to(torch::kDouble) * (1.0 - momentum));
      if (running_var.defined())
        running_var.copy_(var_d.to(running_var.device()) * (count / (count - 1.0) * momentum) +
                          running_var.to(torch::kDouble) * (1.0 - momentum));
    }
    // y = x * alpha + beta with alpha = invstd * w, beta = b - mean * alpha in float, the form of
    // ATen's CPU kernel, from the float mean and invstd it saves.
    const torch::Tensor mean_f = mean_d.to(torch::kFloat), invstd_f = invstd_d.to(torch::kFloat);
    const torch::Tensor w = weight.defined() ? weight.detach().to(torch::kCPU, torch::kFloat) : torch::ones({l.c});
    const torch::Tensor b = bias.defined() ? bias.detach().to(torch::kCPU, torch::kFloat) : torch::zeros({l.c});
    const torch::Tensor alpha = (invstd_f * w).contiguous();
    const torch::Tensor beta = (b - mean_f * alpha).contiguous();
    torch::Tensor y;
    if (cpu) {
      y = torch::empty_like(x);
      affine_per_channel(x.data_ptr<float>(), alpha.data_ptr<float>(), beta.data_ptr<float>(), nullptr, nullptr, l,
                         y.data_ptr<float>());
    } else {
      y = x.view({l.n, l.c, l.s}) * alpha.to(x.device()).view({1, l.c, 1}) + beta.to(x.device()).view({1, l.c, 1});
    }
    ctx->save_for_backward({x, weight, mean_d, invstd_d});
    ctx->saved_data["count"] = count;
    ctx->saved_data["allreduce"] = c10::IValue::make_capsule(allreduce);
    return y.view(input.sizes());
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const auto saved = ctx->get_saved_variables();
    const torch::Tensor& x = saved[0];
    const torch::Tensor& weight = saved[1];
    const torch::Tensor& mean_d = saved[2];
    const torch::Tensor& invstd_d = saved[3];
    const double count = ctx->saved_data["count"].toDouble();
    auto allreduce = c10::static_intrusive_pointer_cast<AllreduceHolder>(ctx->saved_data["allreduce"].toCapsule());
    const torch::Tensor dy = grad_outputs[0].to(torch::kFloat).contiguous();
    const Layout l = layout_of(x);
    const auto f64 = torch::TensorOptions().dtype(torch::kDouble);
    // This rank's sums of dy and dy * (x - mean): its share of the weight and bias gradients, and,
    // summed over the ranks, what every input's gradient depends on.
    const bool cpu = x.device().is_cpu();
    torch::Tensor sums = torch::empty({2 * l.c}, f64);
    if (cpu) {
      double* s0 = sums.data_ptr<double>();
      channel_sums(dy.data_ptr<float>(), x.data_ptr<float>(), mean_d.data_ptr<double>(), l, s0, s0 + l.c);
    } else {
      const torch::Tensor dyd = dy.view({l.n, l.c, l.s}).to(torch::kDouble);
      const torch::Tensor xmu = x.view({l.n, l.c, l.s}).to(torch::kDouble) - mean_d.to(x.device()).view({1, l.c, 1});
      sums.narrow(0, 0, l.c).copy_(dyd.sum(torch::IntArrayRef{0, 2}));
      sums.narrow(0, l.c, l.c).copy_((dyd * xmu).sum(torch::IntArrayRef{0, 2}));
    }
    double* s = sums.data_ptr<double>();
    torch::Tensor grad_weight, grad_bias;
    if (weight.defined()) {
      grad_weight = (sums.narrow(0, l.c, l.c) * invstd_d).to(weight.device(), weight.scalar_type());
      grad_bias = sums.narrow(0, 0, l.c).to(weight.device(), weight.scalar_type());
    }
    torch::Tensor grad_input;
    if (ctx->needs_input_grad(0)) {
      sums = sums.clone();  // the local sums above stay this rank's
      allreduce->fn(sums);
      s = sums.data_ptr<double>();
      // dx = (dy - mean(dy) - (x - mean) * invstd^2 * mean(dy (x - mean))) * invstd * w
      //    = dy * k + x * r + q per channel (float64 coefficients, applied in float).
      torch::Tensor k = torch::empty({l.c}), r = torch::empty({l.c}), q = torch::empty({l.c});
      const torch::Tensor w = weight.defined() ? weight.detach().to(torch::kCPU, torch::kDouble) : torch::ones({l.c}, f64);
      for (int64_t c = 0; c < l.c; ++c) {
        const double inv = invstd_d.data_ptr<double>()[c], m = mean_d.data_ptr<double>()[c];
        const double g = inv * w.data_ptr<double>()[c];
        const double mdy = s[c] / count, proj = s[l.c + c] / count * inv * inv;
        k.data_ptr<float>()[c] = static_cast<float>(g);
        r.data_ptr<float>()[c] = static_cast<float>(-proj * g);
        q.data_ptr<float>()[c] = static_cast<float>((m * proj - mdy) * g);
      }
      if (cpu) {
        grad_input = torch::empty_like(x);
        affine_per_channel(dy.data_ptr<float>(), k.data_ptr<float>(), q.data_ptr<float>(), x.data_ptr<float>(),
                           r.data_ptr<float>(), l, grad_input.data_ptr<float>());
      } else {
        auto per_channel = [&](const torch::Tensor& t) { return t.to(x.device()).view({1, l.c, 1}); };
        grad_input = (dy.view({l.n, l.c, l.s}) * per_channel(k) + x.view({l.n, l.c, l.s}) * per_channel(r) +
                      per_channel(q)).view(x.sizes());
      }
    }
    return {grad_input, grad_weight, grad_bias, torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

void set_batch_norm_allreduce(BatchStatsAllreduce allreduce) {
  std::lock_guard<std::mutex> lock(g_mutex);
  g_allreduce = std::move(allreduce);
}

bool batch_norm_is_synchronised() {
  std::lock_guard<std::mutex> lock(g_mutex);
  return static_cast<bool>(g_allreduce);
}

BatchNormAllreduceGuard::BatchNormAllreduceGuard(BatchStatsAllreduce allreduce) {
  set_batch_norm_allreduce(std::move(allreduce));
}
BatchNormAllreduceGuard::~BatchNormAllreduceGuard() { set_batch_norm_allreduce(nullptr); }

torch::Tensor sync_batch_norm(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias,
                              torch::Tensor running_mean, torch::Tensor running_var, double momentum, double eps,
                              BatchStatsAllreduce allreduce) {
  LOWBIT_CHECK(static_cast<bool>(allreduce), "sync_batch_norm: no all-reduce given");
  auto holder = c10::make_intrusive<AllreduceHolder>(std::move(allreduce));
  holder->running_mean = std::move(running_mean);
  holder->running_var = std::move(running_var);
  // No affine parameters: weight 1 and bias 0 that need no gradient.
  const int64_t c = x.dim() >= 2 ? x.size(1) : 0;
  const auto opts = x.options().dtype(torch::kFloat);
  return SyncBatchNormFunction::apply(x, weight.defined() ? weight : torch::ones({c}, opts),
                                      bias.defined() ? bias : torch::zeros({c}, opts), momentum, eps, std::move(holder));
}

torch::Tensor batch_norm(torch::nn::BatchNorm2dImpl& bn, const torch::Tensor& x) {
  BatchStatsAllreduce allreduce;
  {
    std::lock_guard<std::mutex> lock(g_mutex);
    allreduce = g_allreduce;
  }
  // The single-process path, and evaluation with running statistics, are LibTorch's own.
  if (!allreduce || !bn.is_training()) return bn.forward(x);
  // As BatchNormImplBase::forward: count the batch, and momentum-less layers average cumulatively.
  double factor = bn.options.momentum().value_or(0.0);
  if (bn.options.track_running_stats() && bn.num_batches_tracked.defined()) {
    torch::NoGradGuard no_grad;
    bn.num_batches_tracked += 1;
    if (!bn.options.momentum()) factor = 1.0 / bn.num_batches_tracked.item<double>();
  }
  const bool track = bn.options.track_running_stats();
  return sync_batch_norm(x, bn.weight, bn.bias, track ? bn.running_mean : torch::Tensor(),
                         track ? bn.running_var : torch::Tensor(), factor, bn.options.eps(), std::move(allreduce));
}

}  // namespace lowbit::models
