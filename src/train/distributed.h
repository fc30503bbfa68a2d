// Data-parallel training across processes and hosts on LibTorch's c10d with the Gloo backend
// (TCP, CPU tensors). Processes find each other like torchrun's: RANK, WORLD_SIZE, LOCAL_RANK,
// MASTER_ADDR, MASTER_PORT in the environment, rendezvous through a c10d::TCPStore served by
// rank 0. With WORLD_SIZE unset or 1 nothing here talks to the network: every collective is a
// no-op and rank() is 0. See docs/distributed.md.
//
// The c10d headers are slow to compile and only distributed.cpp includes them.
#pragma once
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <ATen/core/Tensor.h>

namespace torch::nn {
class Module;
}

namespace lowbit::train {

// torchrun's variables as read from the environment.
struct DistributedEnv {
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;
  std::string master_addr;
  int master_port = 0;
  std::chrono::milliseconds timeout{60000};  // LOWBIT_DIST_TIMEOUT (seconds), default 60
};
// Throws lowbit::Error naming the missing or bad variable and what to set. WORLD_SIZE unset or
// "1": world_size 1 and nothing else is required.
DistributedEnv distributed_env_from_environment();

// The rows [offset, offset + count) of a batch of `batch` rows that `rank` of `world` processes
// takes: contiguous, in rank order, sizes differing by at most one (the first batch % world ranks
// take one more). Concatenated in rank order they are the whole batch, so the ranks together see
// the single-process run's global batch in its order.
std::pair<int64_t, int64_t> shard_of_batch(int64_t batch, int rank, int world);

class DistributedContext {
 public:
  // Single process: no network.
  DistributedContext();
  // Joins (rank 0: serves) the rendezvous and builds a Gloo process group; throws lowbit::Error
  // on a bad address, a port in use or a timeout, saying which variable to check.
  explicit DistributedContext(const DistributedEnv& env);
  ~DistributedContext();
  DistributedContext(const DistributedContext&) = delete;
  DistributedContext& operator=(const DistributedContext&) = delete;

  int rank() const { return env_.rank; }
  int world_size() const { return env_.world_size; }
  int local_rank() const { return env_.local_rank; }
  bool is_main() const { return env_.rank == 0; }
  bool active() const { return env_.world_size > 1; }

  // In place, every tensor contiguous CPU; all ranks call with the same shapes in the same order.
  // Errors (a peer died, the timeout passed) throw lowbit::Error.
  void allreduce_sum(std::vector<at::Tensor>& tensors);
  void allreduce_min(std::vector<at::Tensor>& tensors);
  void allreduce_max(std::vector<at::Tensor>& tensors);
  void broadcast(std::vector<at::Tensor>& tensors, int root = 0);
  void barrier();

  // Starts a sum all-reduce of `t` (contiguous CPU) in place and returns at once; wait_started()
  // waits for every one started. They run on a second Gloo process group, in the order started,
  // so that their order need not interleave the same way with the blocking collectives above
  // (SyncBN's inside backward) on every rank. The tensor must not be touched until the wait.
  void start_allreduce_sum(const at::Tensor& t);
  void wait_started();

  // Bytes this process has all-reduced so far (sums, minima and maxima; 0 in one process):
  // gradients, their presence flags, observer ranges and epoch metrics.
  int64_t bytes_allreduced() const { return bytes_allreduced_; }

 private:
  struct Impl;
  void allreduce(std::vector<at::Tensor>& tensors, int op);
  DistributedEnv env_;
  std::unique_ptr<Impl> impl_;
  int64_t bytes_allreduced_ = 0;
};

// The process's context, created from the environment on first use (single process when
// WORLD_SIZE is unset or 1).
DistributedContext& distributed();

// Sums the gradients of `params` (those with a defined gradient, the same on every rank) over
// the ranks, in flat buckets of at most bucket_bytes. No-op on a single process.
void allreduce_gradients(DistributedContext& ctx, const std::vector<at::Tensor>& params,
                         int64_t bucket_bytes = 16 << 20);

// Copies rank 0's values into every rank's tensors (parameters, buffers).
void broadcast_from_main(DistributedContext& ctx, const std::vector<at::Tensor>& tensors);

// The same start on every rank (fresh or resumed): rank 0's parameters and buffers (only the
// buffers with parameters = false). No-op on a single process.
void broadcast_module_from_main(DistributedContext& ctx, const torch::nn::Module& module, bool parameters = true);

// One data-parallel backward. `shard_mean_loss` is the mean loss over this rank's `shard` of the
// `global` rows of the step's batch; it is weighted by shard / global before backward and the
// gradients are summed over the ranks, so every rank holds the gradient of the global batch's
// mean loss, also when shards differ in size by one. On a single process: loss.backward().
void backward_global_mean(DistributedContext& ctx, const at::Tensor& shard_mean_loss, int64_t shard, int64_t global,
                          const std::vector<at::Tensor>& params);

// An interval's running sums of the training metrics (loss x count, correct predictions, count)
// summed over the ranks in place, so that rank 0 reports the global figures. No-op on one process.
void allreduce_metric_sums(DistributedContext& ctx, at::Tensor& loss_sum, at::Tensor& correct, int64_t& seen);

// Throws lowbit::Error when the ranks' copies of `tensors` (parameters) disagree by more than
// `relative_tolerance` in a fingerprint (each tensor's sum and sum of squares): a change made on
// some ranks only outside the all-reduced step (e.g. a WinQ reset). Other data or noise on a rank
// does not show here (the summed gradients keep the ranks' parameters together). One small
// all-reduce; no-op on one process.
void check_ranks_agree(DistributedContext& ctx, const std::vector<at::Tensor>& tensors, const std::string& what,
                       double relative_tolerance = 1e-5);

// The torch threads of this process: LOWBIT_THREADS (set by `lowbit launch`: cores / processes)
// when set, else `configured`.
int threads_from_environment(int64_t configured);

}  // namespace lowbit::train
