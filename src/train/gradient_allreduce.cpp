#include "train/gradient_allreduce.h"

#include <ATen/ATen.h>

#include <cstdlib>
#include <string>
#include <unordered_map>

#include "base/error.h"
#include "train/distributed.h"

namespace lowbit::train {

GradientAllreduceMode gradient_allreduce_mode_from_environment() {
  const char* v = std::getenv("LOWBIT_GRAD_ALLREDUCE");
  if (v == nullptr || *v == '\0' || std::string(v) == "overlap") return GradientAllreduceMode::Overlap;
  if (std::string(v) == "after") return GradientAllreduceMode::AfterBackward;
  throw Error(std::string("LOWBIT_GRAD_ALLREDUCE='") + v +
              "' is not a gradient all-reduce mode; use overlap (default: buckets all-reduced during backward) or "
              "after (after backward)");
}

int64_t gradient_bucket_bytes_from_environment() {
  const char* v = std::getenv("LOWBIT_GRAD_BUCKET_KB");
  if (v == nullptr || *v == '\0') return int64_t{1} << 20;
  char* end = nullptr;
  const long kb = std::strtol(v, &end, 10);
  LOWBIT_CHECK(end != v && *end == '\0' && kb >= 1 && kb <= (1 << 20),
               std::string("LOWBIT_GRAD_BUCKET_KB='") + v + "' is not a bucket size in KiB (1 to 1048576); unset it for 1024");
  return static_cast<int64_t>(kb) * 1024;
}

std::vector<at::Tensor> in_backward_order(const std::vector<at::Tensor>& registered,
                                          const std::vector<at::Tensor>& trained) {
  std::unordered_map<const void*, size_t> index;
  for (size_t k = 0; k < trained.size(); ++k) index.emplace(trained[k].unsafeGetTensorImpl(), k);
  std::vector<char> taken(trained.size(), 0);
  std::vector<at::Tensor> out;
  for (auto it = registered.rbegin(); it != registered.rend(); ++it) {
    auto f = index.find(it->unsafeGetTensorImpl());
    if (f == index.end() || taken[f->second]) continue;
    taken[f->second] = 1;
    out.push_back(trained[f->second]);
  }
  for (size_t k = 0; k < trained.size(); ++k) {
    if (!taken[k]) out.push_back(trained[k]);
  }
  return out;
}

// ---- GradientBuckets ----------------------------------------------------------------------

struct GradientBuckets::State {
  struct Bucket {
    std::vector<size_t> members;   // parameter indices
    std::vector<int64_t> offsets;  // of each member's gradient in flat
    int64_t numel = 0;             // gradients; the member flags follow
    at::Tensor flat;
    size_t arrived = 0;
    int64_t launched_after = -1;
  };
  std::vector<Bucket> buckets;
  std::vector<size_t> bucket_of, slot_of;
  std::vector<char> seen;
  std::vector<int64_t> numel;
  std::function<void(const at::Tensor&)> launch;
  bool armed = false;
  size_t next = 0;  // the first bucket not launched
  int64_t arrived_total = 0;

  void launch_complete() {
    while (next < buckets.size() && buckets[next].arrived == buckets[next].members.size()) {
      buckets[next].launched_after = arrived_total;
      launch(buckets[next].flat);
      ++next;
    }
  }

  // A leaf's hook runs once per backward with its gradient summed over all its uses (AccumulateGrad
  // sums its inputs before its pre-hooks run); a second call would mean a second backward.
  void arrive(size_t k, const at::Tensor& grad) {
    LOWBIT_CHECK(!seen[k], "gradient all-reduce: parameter " + std::to_string(k) +
                               " received two gradients in one backward; run one backward per step");
    seen[k] = 1;
    Bucket& b = buckets[bucket_of[k]];
    const size_t j = slot_of[k];
    at::NoGradGuard no_grad;
    b.flat.narrow(0, b.offsets[j], numel[k]).copy_(grad.reshape({-1}));
    b.flat.data_ptr<float>()[b.numel + static_cast<int64_t>(j)] = 1.0f;
    ++b.arrived;
    ++arrived_total;
    launch_complete();
  }
};

GradientBuckets::GradientBuckets(std::vector<at::Tensor> params, int64_t bucket_bytes,
                                 std::function<void(const at::Tensor&)> launch)
    : state_(std::make_shared<State>()), params_(std::move(params)) {
  LOWBIT_CHECK(bucket_bytes > 0, "gradient buckets: bucket size must be positive");
  State& s = *state_;
  s.launch = std::move(launch);
  s.bucket_of.resize(params_.size());
  s.slot_of.resize(params_.size());
  s.seen.assign(params_.size(), 0);
  bucket_bytes_ = bucket_bytes;
  lay_out();
  for (size_t k = 0; k < params_.size(); ++k) {
    std::shared_ptr<State> st = state_;
    hook_ids_.push_back(params_[k].register_hook([st, k](const at::Tensor& grad) {
      if (st->armed && grad.defined()) st->arrive(k, grad);
    }));
  }
}

// Buckets from the parameters' current sizes: a learned scale may take its shape at the first
// forward (per channel), after the trainer made this object; the shapes are the same on every rank.
void GradientBuckets::lay_out() {
  State& s = *state_;
  s.buckets.clear();
  s.numel.clear();
  int64_t bytes = 0;
  for (size_t k = 0; k < params_.size(); ++k) {
    const at::Tensor& p = params_[k];
    LOWBIT_CHECK(p.requires_grad() && p.scalar_type() == at::kFloat && p.device().is_cpu(),
                 "gradient all-reduce: parameter " + std::to_string(k) + " is not a float32 CPU tensor that requires grad");
    const int64_t nb = p.numel() * 4;
    if (s.buckets.empty() || (bytes + nb > bucket_bytes_ && !s.buckets.back().members.empty())) {
      s.buckets.emplace_back();
      bytes = 0;
    }
    State::Bucket& b = s.buckets.back();
    s.bucket_of[k] = s.buckets.size() - 1;
    s.slot_of[k] = b.members.size();
    b.members.push_back(k);
    b.offsets.push_back(b.numel);
    b.numel += p.numel();
    s.numel.push_back(p.numel());
    bytes += nb;
  }
}

GradientBuckets::~GradientBuckets() {
  for (size_t k = 0; k < params_.size(); ++k) {
    try {
      params_[k].remove_hook(hook_ids_[k]);
    } catch (...) {  // a destructor does not throw
    }
  }
}

void GradientBuckets::begin() {
  State& s = *state_;
  for (size_t k = 0; k < params_.size(); ++k) {
    if (params_[k].numel() != s.numel[k]) {
      lay_out();
      break;
    }
  }
  for (auto& b : s.buckets) {
    // Gradients are all written by their hooks or zeroed in finish(); only the flags start at 0.
    b.flat = at::empty({b.numel + static_cast<int64_t>(b.members.size())}, at::kFloat);
    b.flat.narrow(0, b.numel, static_cast<int64_t>(b.members.size())).zero_();
    b.arrived = 0;
    b.launched_after = -1;
  }
  std::fill(s.seen.begin(), s.seen.end(), 0);
  s.next = 0;
  s.arrived_total = 0;
  s.armed = true;
}

void GradientBuckets::finish() {
  State& s = *state_;
  s.armed = false;
  for (size_t bi = s.next; bi < s.buckets.size(); ++bi) {
    State::Bucket& b = s.buckets[bi];
    for (size_t j = 0; j < b.members.size(); ++j) {
      const size_t k = b.members[j];
      if (!s.seen[k]) b.flat.narrow(0, b.offsets[j], s.numel[k]).zero_();  // flag stays 0
    }
    s.launch(b.flat);
  }
  s.next = s.buckets.size();
}

void GradientBuckets::cancel() { state_->armed = false; }

void GradientBuckets::install() {
  State& s = *state_;
  for (const auto& b : s.buckets) {
    const float* flags = b.flat.data_ptr<float>() + b.numel;
    for (size_t j = 0; j < b.members.size(); ++j) {
      at::Tensor p = params_[b.members[j]];
      if (flags[j] > 0.0f) {
        p.mutable_grad() = b.flat.narrow(0, b.offsets[j], s.numel[b.members[j]]).view(p.sizes());
      } else {
        p.mutable_grad().reset();  // no rank had a gradient
      }
    }
  }
}

size_t GradientBuckets::bucket_count() const { return state_->buckets.size(); }

std::vector<int64_t> GradientBuckets::launched_after() const {
  std::vector<int64_t> out;
  for (const auto& b : state_->buckets) out.push_back(b.launched_after);
  return out;
}

// ---- GradientAllreduce --------------------------------------------------------------------

GradientAllreduce::GradientAllreduce(DistributedContext& ctx, std::vector<at::Tensor> params_in_backward_order,
                                     GradientAllreduceMode mode, int64_t bucket_bytes)
    : ctx_(ctx), params_(std::move(params_in_backward_order)), mode_(mode) {
  if (!ctx_.active() || mode_ != GradientAllreduceMode::Overlap) return;
  for (const auto& p : params_) {
    // The hooks' buckets are CPU tensors for Gloo; a GPU run (--device cuda) sums after backward.
    if (!p.device().is_cpu() || p.scalar_type() != at::kFloat) {
      mode_ = GradientAllreduceMode::AfterBackward;
      return;
    }
  }
  DistributedContext* c = &ctx_;
  buckets_ = std::make_unique<GradientBuckets>(params_, bucket_bytes,
                                               [c](const at::Tensor& flat) { c->start_allreduce_sum(flat); });
}

GradientAllreduce::~GradientAllreduce() = default;

void GradientAllreduce::backward(const at::Tensor& shard_mean_loss, int64_t shard, int64_t global) {
  if (!ctx_.active()) {
    shard_mean_loss.backward();
    return;
  }
  const at::Tensor weighted = shard_mean_loss * (static_cast<double>(shard) / static_cast<double>(global));
  if (!buckets_) {
    weighted.backward();
    allreduce_gradients(ctx_, params_);
    return;
  }
  buckets_->begin();
  try {
    weighted.backward();
  } catch (...) {
    buckets_->cancel();
    throw;
  }
  buckets_->finish();
  ctx_.wait_started();
  buckets_->install();
}

}  // namespace lowbit::train
