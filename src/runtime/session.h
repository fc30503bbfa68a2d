// Running a model: a Session runs batches through a PreparedModel (prepared_model.h: kernels chosen
// and weights packed once for one instruction set).
//
// Threads: one Session must not run on two threads at once (it reuses its activation buffers and
// its pool). Several Sessions may share one PreparedModel and run concurrently on any threads:
//
//   auto model = PreparedModel::load("model.lbq");          // once, shared, never changes
//   // per worker thread:
//   Session session(model, {1});                            // activation buffers + a 1-thread pool
//   RunResult r = session.run(x, batch);
//
// Results do not depend on how many sessions run, nor on their thread counts (bit-exact).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "runtime/cpu_features.h"
#include "runtime/model.h"
#include "runtime/prepared_model.h"

namespace lowbit::runtime {

struct SessionOptions {
  int threads = 1;        // worker threads (including the caller); <= 0 means hardware concurrency
  // isa and limits apply when the session prepares the model itself (from a Model or a path). A
  // session over a shared PreparedModel uses the model's level; a different non-empty isa is an error.
  std::string isa;        // "", "ref", "avx2", "avx512vnni", "neon" or "neondot"; "" = LOWBIT_ISA or the best
                          // the CPU has
  bool profile = false;   // record the CPU time of every op (Session::op_times_ms)
  // Conv/linear layers with fewer multiply-accumulates than this (for the whole batch) run on the
  // calling thread: handing work to the pool's spinning workers costs about a microsecond, more than
  // such a layer saves. < 0: the default, 2^21 (at batch 1 the reference CNN's conv2, 3.6 M MAC,
  // is split; conv1 and the linears are not). Tests set 0 to exercise threading.
  int64_t min_parallel_macs = -1;
  // Per-item activation bytes and MACs a model may ask for, checked before any buffer is allocated
  // (model.h; defaults from LOWBIT_MAX_ACTIVATION_MB / LOWBIT_MAX_GMACS).
  ResourceLimits limits = default_resource_limits();
};

struct RunResult {
  int64_t batch = 0;
  int32_t classes = 0;                 // logits per item (O, or O*OH*OW for a conv output layer, NCHW order)
  std::vector<int32_t> int_logits;     // [batch, classes]: the output layer's int32 accumulators
  std::vector<float> logits;           // (float)int_logit * out_scale[o]
  std::vector<int32_t> argmax;         // [batch]: index of the largest float logit, ties -> lowest index
};

class Session {
 public:
  explicit Session(Model model, SessionOptions options = {});
  // A session over a model prepared once and shared (see the top of this file).
  explicit Session(std::shared_ptr<const PreparedModel> model, SessionOptions options = {});
  ~Session();
  Session(Session&&) noexcept;
  Session& operator=(Session&&) noexcept;
  static Session load(const std::string& path, SessionOptions options = {});

  // x: float [batch, C, H, W] (NCHW), normalised with the model's input_mean / input_std when it
  // has them ((x - mean[c]) / std[c], quant::normalise_input), then quantized with
  // quant::quantize_integer and the input qparams.
  RunResult run(const float* x, int64_t batch);
  // pixels: uint8 [batch, C, H, W] meaning pixel / 255; the model's input scale must be exactly
  // 1/255f with zero point 0, unless it normalises its input. Gives results identical to run() on
  // the floats pixel / 255.0f.
  RunResult run_u8(const uint8_t* pixels, int64_t batch);

  const Model& model() const;
  const std::shared_ptr<const PreparedModel>& prepared_model() const;
  Isa isa() const;
  int threads() const;
  // One line per op: "<op kind>: <kernel symbol>", e.g. "conv2d: s16_w8_gemm_fxp_4x16__avx2 + max pool" or
  // "add: ref::add"; an op done by another or elided says so instead (docs/runtime.md, "Ops").
  std::vector<std::string> kernel_names() const;
  // With SessionOptions::profile: process CPU milliseconds (summed over threads) spent in each op
  // during the last run, plus a last entry for input quantization and output conversion together.
  const std::vector<double>& op_times_ms() const;

 private:
  // One piece of a batch (at most one L2 slice of items) through the graph on workspace `workspace`.
  RunResult run_slice(const float* x, int64_t batch, int workspace);
  RunResult run_u8_slice(const uint8_t* pixels, int64_t batch, int workspace);
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace lowbit::runtime
