// The op layer: a model op prepared once (kernels chosen, weights packed; prepared_model.h), then run
// on any batch slice by any session, concurrently: run() is const and writes only the context's
// buffers. One file per op family (docs/runtime.md, "Ops"); a session only sequences ops and owns
// their buffers.
#pragma once
#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "runtime/cpu_features.h"
#include "runtime/kernels/isa_kernels.h"
#include "runtime/model.h"
#include "runtime/thread_pool.h"

namespace lowbit::runtime {

// What an op may look at while it is prepared: the validated model and what was derived from it,
// for the whole life of the PreparedModel. Nothing here depends on a session (its threads), so one
// prepared op serves every session that shares the model.
struct OpGraph {
  const Model& model;
  const std::vector<ValueShape>& shapes;          // per value
  const std::vector<const ActQParams*>& qparams;  // per value; nullptr for the output layer's
  Isa isa;
  const IsaKernels& kernels;  // the non-GEMM kernel records of `isa`

  // Number of ops that list value v among their inputs.
  int readers(int32_t v) const;
  // Quantization of input k of op `index`.
  const ActQParams& input_qparams(int32_t index, size_t k = 0) const { return *qparams[model.ops[index].inputs[k]]; }
};

// Buffers an op needs besides the values, for a slice of `items` items: `workspace` bytes per
// workspace (one per piece run in parallel, sized for the slice) and `per_thread` bytes per pool
// thread (independent of the batch). Contents are not preserved between ops or runs.
struct BufferNeeds {
  int64_t workspace = 0;
  int64_t per_thread = 0;
};

// Where one run of one op happens: the buffers of its workspace and how it may use threads.
struct OpRunContext {
  uint8_t* const* values;  // per value: [batch, H, W, C] uint8 (the output layer's entry is unused)
  int32_t* logits;         // the output layer's int32 accumulators, [batch, H, W, O]
  uint8_t* workspace;      // BufferNeeds::workspace bytes
  uint8_t* const* thread_scratch;  // per pool thread: BufferNeeds::per_thread bytes
  ThreadPool* pool;
  int thread;              // >= 0: this run is alone on that pool thread; -1: ops may split over the pool
  bool split_over_batch;   // false: element-wise ops stay on the calling thread (the reference level)
  int64_t min_parallel_macs;

  // Whether the op runs on the calling thread only.
  bool single_thread() const { return thread >= 0 || pool->threads() == 1; }
  // The scratch of the thread running a task (pool_thread: the pool's thread index of the task).
  uint8_t* scratch(int pool_thread) const { return thread_scratch[thread >= 0 ? thread : pool_thread]; }
  // Runs fn(first_item, count) over the batch, split over the pool when allowed.
  template <class Fn>
  void over_batch(int64_t batch, Fn fn) const {
    if (!split_over_batch || single_thread()) return fn(int64_t{0}, batch);
    const int64_t tasks = std::min<int64_t>(batch, pool->threads() * 4);
    pool->parallel_for(tasks, [&](int64_t t, int) {
      const int64_t b0 = batch * t / tasks, b1 = batch * (t + 1) / tasks;
      if (b1 > b0) fn(b0, b1 - b0);
    });
  }
};

class PreparedOp {
 public:
  PreparedOp(const OpGraph& g, int32_t index);
  virtual ~PreparedOp() = default;
  PreparedOp(const PreparedOp&) = delete;
  PreparedOp& operator=(const PreparedOp&) = delete;

  int32_t index() const { return index_; }
  const Op& op() const { return *op_; }
  // The kernel that runs the op, as Session::kernel_names() reports it: a kernel symbol.
  virtual std::string kernel_name() const = 0;
  virtual BufferNeeds buffers(int64_t items) const { return {}; }
  // Runs the op on `batch` items of ctx's values.
  virtual void run(const OpRunContext& ctx, int64_t batch) const = 0;

  // Graph rewrites an op may make while it is prepared (the session applies them):
  // the values it really reads (a linear may read around a Flatten);
  virtual std::vector<int32_t> reads() const { return op_->inputs; }
  // a following op whose work it does as well (a max pool fused into a conv's output stage), or -1;
  virtual int32_t absorbed_op() const { return -1; }
  // what kernel_names() says for the absorbed op;
  virtual std::string absorbed_note() const { return "done by op " + std::to_string(index_ + 1); }
  // true: the op need not run when no other op reads its output (Flatten before a linear that reads
  // around it), and what kernel_names() then says.
  virtual bool elidable() const { return false; }
  virtual std::string elided_note() const { return "not run: no op reads its output"; }

 protected:
  // The op's input k and its output in the run's values.
  const uint8_t* input(const OpRunContext& ctx, size_t k = 0) const { return ctx.values[op_->inputs[k]]; }
  uint8_t* output(const OpRunContext& ctx) const { return ctx.values[index_ + 1]; }
  const ValueShape& in_shape() const { return in_; }
  const ValueShape& out_shape() const { return out_; }

 private:
  const Op* op_;
  int32_t index_;
  ValueShape in_, out_;
};

// The registry: creates the prepared op of model op `index` for its kind (ops/op_registry.cpp).
std::unique_ptr<PreparedOp> create_op(const OpGraph& g, int32_t index);
// One entry per op kind; adding an op kind is adding its file and one line to the table.
using CreateOpFn = std::unique_ptr<PreparedOp> (*)(const OpGraph& g, int32_t index);
struct OpFactory {
  OpKind kind;
  CreateOpFn create;
};

}  // namespace lowbit::runtime
