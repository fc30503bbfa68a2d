// Synchronised batch norm (SyncBN): a BatchNorm2d that, in a data-parallel run, normalises every
// rank's shard with the statistics of the global batch, so that forward output, gradients and
// running averages are those of one process on the whole batch (docs/distributed.md).
//
// The models layer knows nothing of processes: the trainer installs a process-wide sum of small
// tensors over the ranks (set_batch_norm_allreduce); without one, batch_norm() is bn->forward,
// unchanged bit for bit.
#pragma once
#include <functional>
#include <memory>

#include "torch_pch.h"

namespace lowbit::models {

// Sums a 1-D float64 tensor over the ranks, in place. Every rank calls it with the same sizes in
// the same order (once per BN layer in forward, once in backward).
using BatchStatsAllreduce = std::function<void(torch::Tensor&)>;

// Installs (or, with an empty function, removes) the process-wide all-reduce that batch_norm()
// uses for layers running with batch statistics.
void set_batch_norm_allreduce(BatchStatsAllreduce allreduce);
bool batch_norm_is_synchronised();

// Installs an all-reduce for the guard's lifetime (e.g. one training run).
class BatchNormAllreduceGuard {
 public:
  explicit BatchNormAllreduceGuard(BatchStatsAllreduce allreduce);
  ~BatchNormAllreduceGuard();
  BatchNormAllreduceGuard(const BatchNormAllreduceGuard&) = delete;
  BatchNormAllreduceGuard& operator=(const BatchNormAllreduceGuard&) = delete;
};

// bn->forward(x), except when training with batch statistics and an all-reduce is installed:
// then sync_batch_norm with the layer's parameters and buffers (num_batches_tracked counts up as
// in bn->forward).
torch::Tensor batch_norm(torch::nn::BatchNorm2dImpl& bn, const torch::Tensor& x);

// Batch norm of x [N, C, ...] with the statistics of the batch that all ranks' x form together:
// per-channel sum, sum of squares and count (float64) all-reduced in forward; in backward the
// per-channel sums of dy and dy * (x - mean) all-reduced for the input's gradient. The gradients
// of weight and bias are this rank's share (the gradient all-reduce sums them). running_mean /
// running_var (may be undefined) are updated with `momentum` and the unbiased variance of the
// global count. weight / bias may be undefined (no affine).
torch::Tensor sync_batch_norm(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias,
                              torch::Tensor running_mean, torch::Tensor running_var, double momentum, double eps,
                              BatchStatsAllreduce allreduce);

}  // namespace lowbit::models
