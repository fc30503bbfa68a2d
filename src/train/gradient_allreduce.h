// The data-parallel gradient sum, overlapped with backward (docs/distributed.md): a hook on every
// parameter copies its gradient into a flat bucket as soon as backward produces it, and a bucket
// whose gradients are all there is all-reduced asynchronously while backward goes on. LibTorch
// 1.13's C++ Reducer (DDP's) is tied to Python's DDP, so lowbit does its own.
//
// Buckets hold parameters in the order backward is expected to produce their gradients (the
// reverse of registration order for lowbit's models) and start strictly in bucket order, so every
// rank starts the same collectives in the same order. Each bucket carries one presence flag per
// parameter after the gradients: a parameter without a gradient on a rank contributes zeros and
// flag 0, and keeps no gradient only when no rank had one, as in one process.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include <ATen/core/Tensor.h>

namespace lowbit::train {

class DistributedContext;

// LOWBIT_GRAD_ALLREDUCE: "overlap" (default; hooks and asynchronous buckets) or "after" (one
// blocking all-reduce per bucket after backward, allreduce_gradients). Throws lowbit::Error for
// another value.
enum class GradientAllreduceMode { Overlap, AfterBackward };
GradientAllreduceMode gradient_allreduce_mode_from_environment();
// LOWBIT_GRAD_BUCKET_KB (default 1024): the overlapped buckets' size.
int64_t gradient_bucket_bytes_from_environment();

// `trained` ordered as backward produces gradients: the reverse of `registered` (a module's
// parameters()), then any trained tensor not in it.
std::vector<at::Tensor> in_backward_order(const std::vector<at::Tensor>& registered,
                                          const std::vector<at::Tensor>& trained);

// The hooks and buckets, without the network: `launch` receives each bucket's flat tensor
// (gradients, then flags) once it is complete and all earlier buckets are launched, during
// backward, or from finish() for buckets still incomplete when backward ended.
class GradientBuckets {
 public:
  GradientBuckets(std::vector<at::Tensor> params, int64_t bucket_bytes, std::function<void(const at::Tensor&)> launch);
  ~GradientBuckets();  // removes the hooks
  GradientBuckets(const GradientBuckets&) = delete;
  GradientBuckets& operator=(const GradientBuckets&) = delete;

  // Fresh buckets; the hooks act until finish() (they do nothing outside a begin / finish pair).
  void begin();
  // Launches what is left (missing gradients as zeros, flag 0) and stops the hooks.
  void finish();
  // Stops the hooks without launching (backward failed).
  void cancel();
  // After the launched all-reduces completed: each parameter's gradient becomes its slice of the
  // summed bucket, or none when every rank's flag was 0.
  void install();

  size_t bucket_count() const;
  // Per bucket of the last step: how many gradients had arrived when it was launched (equal to the
  // gradients in it and the buckets before it when backward followed the bucket order), or -1
  // when it was launched by finish().
  std::vector<int64_t> launched_after() const;

 private:
  struct State;
  void lay_out();
  std::shared_ptr<State> state_;
  std::vector<at::Tensor> params_;
  int64_t bucket_bytes_ = 0;
  std::vector<unsigned> hook_ids_;
};

// One data-parallel backward of `shard_mean_loss` weighted by shard / global, after which every
// rank holds the gradient of the global batch's mean loss (backward_global_mean's contract). On
// one process: loss.backward(), no hooks registered.
class GradientAllreduce {
 public:
  GradientAllreduce(DistributedContext& ctx, std::vector<at::Tensor> params_in_backward_order,
                    GradientAllreduceMode mode = gradient_allreduce_mode_from_environment(),
                    int64_t bucket_bytes = gradient_bucket_bytes_from_environment());
  ~GradientAllreduce();
  void backward(const at::Tensor& shard_mean_loss, int64_t shard, int64_t global);

 private:
  DistributedContext& ctx_;
  std::vector<at::Tensor> params_;
  GradientAllreduceMode mode_;
  std::unique_ptr<GradientBuckets> buckets_;
};

}  // namespace lowbit::train
