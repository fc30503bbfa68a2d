#include "train/distributed.h"

// Gloo's headers (libgloo-dev) are needed by c10d's; without them: one process only.
#if __has_include(<gloo/rendezvous/store.h>) && __has_include(<torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>)
#define LOWBIT_WITH_GLOO 1
#endif

#ifdef LOWBIT_WITH_GLOO
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#endif

// NCCL for CUDA tensors (--device cuda), only where LibTorch was built with it: CMakeLists.txt
// defines LOWBIT_TORCH_NCCL for this file when Torch is a CUDA build whose include folder has
// ProcessGroupNCCL.hpp (the header's content is guarded by USE_C10D_NCCL, set in PyTorch's own
// build only). The CPU-only build never sees it; CUDA tensors then go through Gloo.
#if defined(LOWBIT_WITH_GLOO) && defined(LOWBIT_TORCH_NCCL) && \
    __has_include(<torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>)
#ifndef USE_C10D_NCCL
#define USE_C10D_NCCL 1
#endif
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#define LOWBIT_WITH_NCCL 1
#endif
#include "train/device.h"

#include <ATen/ATen.h>
#include <torch/nn/module.h>

#include <cmath>
#include <cstdlib>
#include <limits>

#include "base/error.h"

namespace lowbit::train {
namespace {

const char* env_or_null(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? v : nullptr;
}

int env_int(const char* name, int lo, int hi, const std::string& what_to_do) {
  const char* v = env_or_null(name);
  LOWBIT_CHECK(v != nullptr, std::string(name) + " is not set; " + what_to_do);
  char* end = nullptr;
  const long x = std::strtol(v, &end, 10);
  LOWBIT_CHECK(end != v && *end == '\0' && x >= lo && x <= hi,
               std::string(name) + "='" + v + "' is not an integer in [" + std::to_string(lo) + ", " +
                   std::to_string(hi) + "]; " + what_to_do);
  return static_cast<int>(x);
}

// First line of a c10 error: the rest is a C++ stack trace.
[[maybe_unused]] std::string first_line(const std::string& s) { return s.substr(0, s.find('\n')); }

[[maybe_unused]] bool is_loopback(const std::string& addr) {
  return addr == "localhost" || addr.rfind("127.", 0) == 0 || addr == "::1";
}

}  // namespace

DistributedEnv distributed_env_from_environment() {
  DistributedEnv env;
  const char* ws = env_or_null("WORLD_SIZE");
  if (ws == nullptr || std::string(ws) == "1") return env;  // single process: nothing else needed
  const std::string howto = "set RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT as torchrun does, or start the "
                            "processes with 'lowbit launch --nproc N -- lowbit ...' (docs/distributed.md)";
  env.world_size = env_int("WORLD_SIZE", 1, 1 << 16, howto);
  env.rank = env_int("RANK", 0, std::numeric_limits<int>::max(), howto);
  LOWBIT_CHECK(env.rank < env.world_size, "RANK=" + std::to_string(env.rank) + " is not below WORLD_SIZE=" +
                                              std::to_string(env.world_size) + "; ranks are 0 .. WORLD_SIZE - 1");
  env.local_rank = env_or_null("LOCAL_RANK") != nullptr ? env_int("LOCAL_RANK", 0, 1 << 16, howto) : env.rank;
  const char* addr = env_or_null("MASTER_ADDR");
  LOWBIT_CHECK(addr != nullptr, "MASTER_ADDR is not set; set it to rank 0's host name or IP address (" + howto + ")");
  env.master_addr = addr;
  env.master_port = env_int("MASTER_PORT", 1, 65535, "set it to a free TCP port on rank 0's host, e.g. 29500");
  if (env_or_null("LOWBIT_DIST_TIMEOUT") != nullptr) {
    env.timeout = std::chrono::seconds(
        env_int("LOWBIT_DIST_TIMEOUT", 1, 24 * 3600, "it is the seconds a rank waits for the others (default 60)"));
  }
  return env;
}

std::pair<int64_t, int64_t> shard_of_batch(int64_t batch, int rank, int world) {
  LOWBIT_CHECK(world >= 1 && rank >= 0 && rank < world && batch >= 0,
               "shard_of_batch: rank " + std::to_string(rank) + " of " + std::to_string(world) + ", batch " +
                   std::to_string(batch));
  const int64_t base = batch / world, extra = batch % world;
  const int64_t offset = rank * base + std::min<int64_t>(rank, extra);
  return {offset, base + (rank < extra ? 1 : 0)};
}

#ifdef LOWBIT_WITH_GLOO
struct DistributedContext::Impl {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::ProcessGroupGloo> group;
#ifdef LOWBIT_WITH_NCCL
  c10::intrusive_ptr<c10d::ProcessGroupNCCL> nccl;  // --device cuda runs only; else null
#endif
  // Runs a collective on `t` in NCCL's group for a CUDA tensor when there is one, else in Gloo's
  // (which takes CUDA tensors too in a CUDA build of LibTorch, staging them through host memory).
  // (No common base class to return: Gloo and NCCL derive from ProcessGroup in LibTorch 1.x and
  // from Backend in 2.x.)
  template <typename Collective>
  c10::intrusive_ptr<c10d::Work> run_for(const at::Tensor& t, Collective collective) {
#ifdef LOWBIT_WITH_NCCL
    if (nccl && t.is_cuda()) return collective(*nccl);
#endif
    return collective(*group);
  }
  std::string where;  // for messages
  c10::intrusive_ptr<c10d::ProcessGroupGloo> async_group;  // start_allreduce_sum's, made on first use
  std::vector<c10::intrusive_ptr<c10d::Work>> started;
};

DistributedContext::DistributedContext() = default;

DistributedContext::DistributedContext(const DistributedEnv& env) : env_(env) {
  if (!active()) return;
  impl_ = std::make_unique<Impl>();
  impl_->where = "rank " + std::to_string(env.rank) + " of " + std::to_string(env.world_size);
  const std::string master = env.master_addr + ":" + std::to_string(env.master_port);
  const std::string timeout_s = std::to_string(env.timeout.count() / 1000);  // whole seconds (LOWBIT_DIST_TIMEOUT)
  try {
    c10d::TCPStoreOptions o;
    o.port = static_cast<uint16_t>(env.master_port);
    o.isServer = env.rank == 0;
    o.numWorkers = env.world_size;
    o.waitWorkers = true;  // rank 0 returns once every rank has connected (or the timeout)
    o.timeout = env.timeout;
    impl_->store = c10::make_intrusive<c10d::TCPStore>(env.master_addr, o);
  } catch (const std::exception& e) {
    const std::string why = first_line(e.what());
    if (env.rank == 0) {
      throw Error(impl_->where + ": cannot serve the rendezvous on " + master + " (" + why +
                  "); if the port is in use choose another MASTER_PORT (lowbit launch --master-port), and check that "
                  "MASTER_ADDR is an address of this host; or not all WORLD_SIZE=" + std::to_string(env.world_size) +
                  " ranks connected within " + timeout_s + " s (LOWBIT_DIST_TIMEOUT)");
    }
    throw Error(impl_->where + ": cannot reach the rendezvous at MASTER_ADDR:MASTER_PORT = " + master + " (" + why +
                ") within " + timeout_s +
                " s; check that rank 0 is running, that MASTER_ADDR resolves to its host and MASTER_PORT is its port");
  }
  try {
    // WORLD_SIZE mismatch: every rank checks the value rank 0 published.
    const std::string key = "lowbit/world_size";
    if (env.rank == 0) {
      const std::string ws = std::to_string(env.world_size);
      impl_->store->set(key, std::vector<uint8_t>(ws.begin(), ws.end()));
    }
    const auto got = impl_->store->get(key);
    const std::string theirs(got.begin(), got.end());
    LOWBIT_CHECK(theirs == std::to_string(env.world_size),
                 impl_->where + ": WORLD_SIZE=" + std::to_string(env.world_size) + " here but rank 0 has WORLD_SIZE=" +
                     theirs + "; start every process with the same WORLD_SIZE");
    auto options = c10d::ProcessGroupGloo::Options::create(env.timeout);
    // The interface: GLOO_SOCKET_IFNAME as in PyTorch; loopback for a single-host job on
    // 127.0.0.1; else the address this host's name resolves to.
    if (const char* ifname = env_or_null("GLOO_SOCKET_IFNAME")) {
      options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
    } else if (is_loopback(env.master_addr)) {
      options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
    } else {
      options->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
    }
    options->threads = 1;
    auto prefixed = c10::make_intrusive<c10d::PrefixStore>("lowbit", impl_->store);
    impl_->group = c10::make_intrusive<c10d::ProcessGroupGloo>(prefixed, env.rank, env.world_size, options);
#ifdef LOWBIT_WITH_NCCL
    if (process_training_device().is_cuda()) {
      auto nccl_options = c10d::ProcessGroupNCCL::Options::create();
      nccl_options->timeout = env.timeout;
      impl_->nccl = c10::make_intrusive<c10d::ProcessGroupNCCL>(
          c10::make_intrusive<c10d::PrefixStore>("lowbit-nccl", impl_->store), env.rank, env.world_size, nccl_options);
    }
#endif
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    throw Error(impl_->where + ": the other ranks did not connect within " + timeout_s +
                " s (LOWBIT_DIST_TIMEOUT) (" + first_line(e.what()) + "); check that all WORLD_SIZE=" +
                std::to_string(env.world_size) + " ranks were started, that the hosts reach each other, and "
                "GLOO_SOCKET_IFNAME");
  }
}

DistributedContext::~DistributedContext() = default;

void DistributedContext::allreduce(std::vector<at::Tensor>& tensors, int op) {
  if (!active() || tensors.empty()) return;
  for (const auto& t : tensors) bytes_allreduced_ += static_cast<int64_t>(t.nbytes());
  try {
    for (auto& t : tensors) {
      std::vector<at::Tensor> one{t};
      c10d::AllreduceOptions o;
      o.reduceOp = static_cast<c10d::ReduceOp::RedOpType>(op);
      o.timeout = env_.timeout;
      impl_->run_for(t, [&](auto& g) { return g.allreduce(one, o); })->wait(env_.timeout);
    }
  } catch (const std::exception& e) {
    throw Error(impl_->where + ": all-reduce failed (" + first_line(e.what()) +
                "); usually another rank exited, or did not answer within LOWBIT_DIST_TIMEOUT");
  }
}

void DistributedContext::start_allreduce_sum(const at::Tensor& t) {
  if (!active()) return;
  bytes_allreduced_ += static_cast<int64_t>(t.nbytes());
  try {
    if (!impl_->async_group) {
      // Every rank gets here at the same point (its first data-parallel backward); the group's
      // rendezvous uses its own key prefix in the same store.
      auto options = c10d::ProcessGroupGloo::Options::create(env_.timeout);
      options->devices = impl_->group->getOptions()->devices;
      options->threads = 1;  // one worker: the buckets run in the order started
      auto prefixed = c10::make_intrusive<c10d::PrefixStore>("lowbit-async", impl_->store);
      impl_->async_group = c10::make_intrusive<c10d::ProcessGroupGloo>(prefixed, env_.rank, env_.world_size, options);
    }
    std::vector<at::Tensor> one{t};
    c10d::AllreduceOptions o;
    o.reduceOp = c10d::ReduceOp::SUM;
    o.timeout = env_.timeout;
    impl_->started.push_back(impl_->async_group->allreduce(one, o));
  } catch (const std::exception& e) {
    throw Error(impl_->where + ": all-reduce failed (" + first_line(e.what()) +
                "); usually another rank exited, or did not answer within LOWBIT_DIST_TIMEOUT");
  }
}

void DistributedContext::wait_started() {
  if (!active()) return;
  std::vector<c10::intrusive_ptr<c10d::Work>> started;
  started.swap(impl_->started);
  try {
    for (auto& w : started) w->wait(env_.timeout);
  } catch (const std::exception& e) {
    throw Error(impl_->where + ": all-reduce failed (" + first_line(e.what()) +
                "); usually another rank exited, or did not answer within LOWBIT_DIST_TIMEOUT");
  }
}

void DistributedContext::allreduce_sum(std::vector<at::Tensor>& tensors) {
  allreduce(tensors, c10d::ReduceOp::SUM);
}
void DistributedContext::allreduce_min(std::vector<at::Tensor>& tensors) { allreduce(tensors, c10d::ReduceOp::MIN); }
void DistributedContext::allreduce_max(std::vector<at::Tensor>& tensors) { allreduce(tensors, c10d::ReduceOp::MAX); }

void DistributedContext::broadcast(std::vector<at::Tensor>& tensors, int root) {
  if (!active()) return;
  try {
    for (auto& t : tensors) {
      std::vector<at::Tensor> one{t};
      c10d::BroadcastOptions o;
      o.rootRank = root;
      o.timeout = env_.timeout;
      impl_->run_for(t, [&](auto& g) { return g.broadcast(one, o); })->wait(env_.timeout);
    }
  } catch (const std::exception& e) {
    throw Error(impl_->where + ": broadcast failed (" + first_line(e.what()) +
                "); usually another rank exited, or did not answer within LOWBIT_DIST_TIMEOUT");
  }
}

void DistributedContext::barrier() {
  if (!active()) return;
  try {
    c10d::BarrierOptions o;
    o.timeout = env_.timeout;
    impl_->group->barrier(o)->wait(env_.timeout);
  } catch (const std::exception& e) {
    throw Error(impl_->where + ": barrier failed (" + first_line(e.what()) +
                "); usually another rank exited, or did not answer within LOWBIT_DIST_TIMEOUT");
  }
}

#else  // built without Gloo's headers: a single process only
struct DistributedContext::Impl {};
DistributedContext::DistributedContext() = default;
DistributedContext::DistributedContext(const DistributedEnv& env) : env_(env) {
  LOWBIT_CHECK(!active(), "WORLD_SIZE=" + std::to_string(env.world_size) +
                              " but this lowbit was built without Gloo's headers (apt install libgloo-dev, then "
                              "reconfigure); it trains in one process only");
}
DistributedContext::~DistributedContext() = default;
void DistributedContext::allreduce(std::vector<at::Tensor>&, int) {}
void DistributedContext::allreduce_sum(std::vector<at::Tensor>&) {}
void DistributedContext::allreduce_min(std::vector<at::Tensor>&) {}
void DistributedContext::allreduce_max(std::vector<at::Tensor>&) {}
void DistributedContext::broadcast(std::vector<at::Tensor>&, int) {}
void DistributedContext::barrier() {}
void DistributedContext::start_allreduce_sum(const at::Tensor&) {}
void DistributedContext::wait_started() {}
#endif

DistributedContext& distributed() {
  static DistributedContext ctx(distributed_env_from_environment());
  return ctx;
}

void allreduce_gradients(DistributedContext& ctx, const std::vector<at::Tensor>& params, int64_t bucket_bytes) {
  if (!ctx.active()) return;
  at::NoGradGuard no_grad;
  // Which parameters have a gradient on any rank (a rank's shard may leave one unused): those
  // take part everywhere, with zeros where missing; the others stay without, as in one process.
  std::vector<at::Tensor> mask{at::zeros({static_cast<int64_t>(params.size())}, at::kFloat)};
  auto* m = mask[0].data_ptr<float>();
  for (size_t k = 0; k < params.size(); ++k) m[k] = params[k].grad().defined() ? 1.0f : 0.0f;
  ctx.allreduce_max(mask);
  std::vector<at::Tensor> grads;
  for (size_t k = 0; k < params.size(); ++k) {
    if (m[k] == 0.0f) continue;
    at::Tensor p = params[k];
    if (!p.grad().defined()) p.mutable_grad() = at::zeros_like(p);
    grads.push_back(p.grad());
  }
  // Buckets of consecutive gradients, one all-reduce each: few round trips, bounded copies.
  size_t i = 0;
  while (i < grads.size()) {
    size_t j = i;
    int64_t bytes = 0;
    std::vector<at::Tensor> flat_parts;
    while (j < grads.size() && (j == i || bytes + static_cast<int64_t>(grads[j].nbytes()) <= bucket_bytes)) {
      bytes += static_cast<int64_t>(grads[j].nbytes());
      flat_parts.push_back(grads[j].reshape({-1}));
      ++j;
    }
    std::vector<at::Tensor> bucket{at::cat(flat_parts)};
    ctx.allreduce_sum(bucket);
    int64_t off = 0;
    for (size_t k = i; k < j; ++k) {
      const int64_t n = grads[k].numel();
      grads[k].copy_(bucket[0].narrow(0, off, n).view(grads[k].sizes()));
      off += n;
    }
    i = j;
  }
}

void broadcast_from_main(DistributedContext& ctx, const std::vector<at::Tensor>& tensors) {
  if (!ctx.active()) return;
  at::NoGradGuard no_grad;
  // Gloo has no bool type, and needs contiguous tensors: such tensors go through a copy.
  auto needs_copy = [](const at::Tensor& t) { return !t.is_contiguous() || t.scalar_type() == at::kBool; };
  std::vector<at::Tensor> ts;
  for (const auto& t : tensors) {
    if (!t.defined() || t.numel() == 0) continue;
    if (!needs_copy(t)) ts.push_back(t.detach());
    else ts.push_back(t.scalar_type() == at::kBool ? t.detach().to(at::kByte).contiguous() : t.detach().contiguous());
  }
  ctx.broadcast(ts);
  size_t k = 0;
  for (const auto& t : tensors) {
    if (!t.defined() || t.numel() == 0) continue;
    if (needs_copy(t)) t.detach().copy_(ts[k]);
    ++k;
  }
}

void broadcast_module_from_main(DistributedContext& ctx, const torch::nn::Module& module, bool parameters) {
  if (!ctx.active()) return;
  std::vector<at::Tensor> state;
  if (parameters) {
    for (const auto& p : module.parameters()) state.push_back(p);
  }
  for (const auto& b : module.buffers()) state.push_back(b);
  broadcast_from_main(ctx, state);
}

void backward_global_mean(DistributedContext& ctx, const at::Tensor& shard_mean_loss, int64_t shard, int64_t global,
                          const std::vector<at::Tensor>& params) {
  if (!ctx.active()) {
    shard_mean_loss.backward();
    return;
  }
  (shard_mean_loss * (static_cast<double>(shard) / static_cast<double>(global))).backward();
  allreduce_gradients(ctx, params);
}

void allreduce_metric_sums(DistributedContext& ctx, at::Tensor& loss_sum, at::Tensor& correct, int64_t& seen) {
  if (!ctx.active()) return;
  std::vector<at::Tensor> sums{loss_sum.to(at::kDouble), correct.to(at::kDouble),
                               at::full({}, static_cast<double>(seen), at::TensorOptions().dtype(at::kDouble))};
  ctx.allreduce_sum(sums);
  loss_sum = sums[0].to(loss_sum.scalar_type());
  correct = sums[1].to(correct.scalar_type());
  seen = static_cast<int64_t>(sums[2].item<double>());
}

void check_ranks_agree(DistributedContext& ctx, const std::vector<at::Tensor>& tensors, const std::string& what,
                       double relative_tolerance) {
  if (!ctx.active() || tensors.empty()) return;
  at::NoGradGuard no_grad;
  const auto n = static_cast<int64_t>(tensors.size());
  at::Tensor f = at::empty({2 * n}, at::TensorOptions().dtype(at::kDouble));
  for (int64_t k = 0; k < n; ++k) {
    const at::Tensor t = tensors[static_cast<size_t>(k)].detach().to(at::kDouble);
    f[2 * k] = t.sum();
    f[2 * k + 1] = t.square().sum();
  }
  // max of (f, -f) over the ranks: the largest and (negated) smallest fingerprint at once.
  std::vector<at::Tensor> both{at::cat({f, -f})};
  ctx.allreduce_max(both);
  const at::Tensor hi = both[0].narrow(0, 0, 2 * n), lo = -both[0].narrow(0, 2 * n, 2 * n);
  const at::Tensor excess = (hi - lo).abs() / hi.abs().clamp_min(1.0);  // per entry, relative
  const double worst = excess.max().item<double>();
  LOWBIT_CHECK(worst <= relative_tolerance,
               "rank " + std::to_string(ctx.rank()) + " of " + std::to_string(ctx.world_size()) + ": the ranks' " + what +
                   " differ (relative fingerprint spread " + std::to_string(worst) +
                   "); every rank must draw the same data and noise");
}

int threads_from_environment(int64_t configured) {
  if (const char* v = std::getenv("LOWBIT_THREADS")) {
    char* end = nullptr;
    const long t = std::strtol(v, &end, 10);
    LOWBIT_CHECK(end != v && *end == '\0' && t >= 1 && t <= 1024,
                 std::string("LOWBIT_THREADS='") + v + "' is not a thread count (1 to 1024); unset it or fix it");
    return static_cast<int>(t);
  }
  return static_cast<int>(configured);
}

}  // namespace lowbit::train
