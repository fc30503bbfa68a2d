#include "runtime/session.h"

#include <algorithm>
#include <ctime>
#include <thread>

#include "base/error.h"
#include "quant/input_normalisation.h"
#include "quant/quantize.h"
#include "runtime/kernels/isa_kernels.h"
#include "runtime/model_file.h"
#include "runtime/ops/prepared_op.h"
#include "runtime/thread_pool.h"

namespace lowbit::runtime {
namespace {

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

}  // namespace

struct Session::Impl {
  std::shared_ptr<const PreparedModel> prepared;  // shared with other sessions: read only
  const Model* model = nullptr;                   // prepared->model()
  const IsaKernels* kernels = nullptr;            // the non-GEMM kernel records of the model's level
  bool split_work = false;  // IsaKernels::split_work
  std::unique_ptr<ThreadPool> pool;
  // The buffers of one run through the graph. A batch of several pieces runs piece-parallel: each
  // pool thread takes whole pieces through the whole graph on its own workspace, so there is no
  // barrier (thread wake-up) per op; a single piece runs on workspace 0 with each op split over the
  // pool.
  struct Workspace {
    std::vector<std::vector<uint8_t>> values;  // per value, [batch, H, W, C]
    std::vector<uint8_t*> value_ptrs;
    std::vector<int32_t> output;
    std::vector<uint8_t> scratch;  // the largest BufferNeeds::workspace of the ops
    int64_t batch_capacity = 0;
    int thread = -1;  // >= 0: this run is alone on that pool thread (its scratch); -1: ops use the pool
    std::vector<double> op_ms;  // profile: CPU ms per op (thread time when thread >= 0, else process time)
    double run_start = 0;
  };
  std::vector<Workspace> ws;                        // per thread
  std::vector<std::vector<uint8_t>> thread_scratch;  // per pool thread: the largest BufferNeeds::per_thread
  std::vector<uint8_t*> thread_scratch_ptrs;
  bool profile = false;
  int64_t min_parallel_macs = 0;
  std::vector<double> op_ms;  // summed over workspaces

  void prepare_buffers(Workspace& w, int64_t batch) {
    if (batch <= w.batch_capacity) return;
    const std::vector<ValueShape>& shapes = prepared->shapes();
    w.values.assign(shapes.size(), {});
    w.value_ptrs.assign(shapes.size(), nullptr);
    for (size_t v = 0; v + 1 < shapes.size(); ++v) {
      w.values[v].resize(static_cast<size_t>(batch * shapes[v].size()));
      w.value_ptrs[v] = w.values[v].data();
    }
    w.output.resize(static_cast<size_t>(batch * shapes.back().size()));
    w.scratch.resize(static_cast<size_t>(prepared->workspace_bytes(batch)));
    w.batch_capacity = batch;
  }

  OpRunContext context(Workspace& w) const {
    return {w.value_ptrs.data(), w.output.data(), w.scratch.data(), thread_scratch_ptrs.data(), pool.get(), w.thread,
            split_work, min_parallel_macs};
  }

  // Profiling measures CPU time: on a shared machine wall time mostly measures the other tenants.
  // A workspace alone on a thread counts that thread's time (the workspaces' sums add up to the
  // process time); one whose ops use the pool counts the process's (summed over threads).
  static double cpu_ms(const Workspace& w) {
    timespec ts;
    clock_gettime(w.thread >= 0 ? CLOCK_THREAD_CPUTIME_ID : CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
  }

  RunResult finish(Workspace& w, int64_t batch) {
    w.op_ms.resize(model->ops.size() + 1, 0.0);  // reset by run_batch, summed over pieces
    if (profile) w.op_ms.back() += cpu_ms(w) - w.run_start;
    const OpRunContext ctx = context(w);
    const auto& ops = prepared->ops();
    for (size_t i = 0; i < ops.size(); ++i) {
      const double t0 = profile ? cpu_ms(w) : 0.0;
      if (prepared->runs(i)) ops[i]->run(ctx, batch);
      if (profile) w.op_ms[i] += cpu_ms(w) - t0;
    }
    const double t_out = profile ? cpu_ms(w) : 0.0;
    RunResult r = make_result(w, batch);
    if (profile) w.op_ms.back() += cpu_ms(w) - t_out;
    return r;
  }

  // Runs fn(x_piece, items, workspace) over the batch in pieces of at most one L2 slice (items
  // whose activations fit in L2; results are identical: every op treats items independently).
  // With several threads and at least as many items as threads the pieces run in parallel, one
  // workspace per thread, taken dynamically (a thread slowed by another tenant takes fewer).
  template <class T, class Fn>
  RunResult run_batch(const char* api, const T* x, int64_t batch, Fn fn) {
    LOWBIT_CHECK(batch >= 1, std::string(api) + ": batch must be >= 1 (got " + std::to_string(batch) + ")");
    for (Workspace& w : ws) w.op_ms.assign(model->ops.size() + 1, 0.0);
    int64_t largest = 1;
    for (const ValueShape& v : prepared->shapes()) largest = std::max(largest, v.size());
    // a multiple of the GEMM tile height (6) so that linear layers see full tiles
    const int64_t slice = std::max<int64_t>(12, ((256 * 1024) / largest + 5) / 6 * 6);
    const int threads = pool->threads();
    const bool by_pieces = split_work && threads > 1 && batch >= threads;
    // Pieces of `slice` items (the last one shorter), so that linear layers see whole 12-row
    // tiles; fewer items than threads * slice are split evenly over the threads instead.
    const int64_t size = by_pieces && ceil_div(batch, slice) < threads ? ceil_div(batch, threads) : slice;
    const int64_t pieces = ceil_div(batch, size);
    const int64_t item = int64_t{model->in_channels} * model->in_height * model->in_width;
    std::vector<RunResult> parts(static_cast<size_t>(pieces));
    const auto piece = [&](int64_t t, int thread) {
      const int64_t b0 = t * size, b1 = std::min(batch, b0 + size);
      ws[thread].thread = by_pieces ? thread : -1;
      parts[t] = fn(x + b0 * item, b1 - b0, thread);
    };
    if (by_pieces) {
      pool->parallel_for(pieces, piece);
    } else {
      for (int64_t t = 0; t < pieces; ++t) piece(t, 0);
    }
    op_ms.assign(model->ops.size() + 1, 0.0);
    for (const Workspace& w : ws)
      for (size_t i = 0; i < w.op_ms.size(); ++i) op_ms[i] += w.op_ms[i];
    if (pieces == 1) return std::move(parts[0]);
    RunResult all;
    all.batch = batch;
    all.classes = parts[0].classes;
    for (const RunResult& r : parts) {
      all.int_logits.insert(all.int_logits.end(), r.int_logits.begin(), r.int_logits.end());
      all.logits.insert(all.logits.end(), r.logits.begin(), r.logits.end());
      all.argmax.insert(all.argmax.end(), r.argmax.begin(), r.argmax.end());
    }
    return all;
  }

  RunResult make_result(const Workspace& w, int64_t batch) {
    const Op& last = model->ops.back();
    const ValueShape out = prepared->shapes().back();
    const int64_t hw = int64_t{out.h} * out.w, classes = out.size();
    RunResult r;
    r.batch = batch;
    r.classes = static_cast<int32_t>(classes);
    r.int_logits.resize(static_cast<size_t>(batch * classes));
    r.logits.resize(r.int_logits.size());
    r.argmax.resize(static_cast<size_t>(batch));
    for (int64_t n = 0; n < batch; ++n) {
      int64_t best = 0;
      for (int32_t c = 0; c < out.c; ++c)
        for (int64_t p = 0; p < hw; ++p) {
          const int64_t dst = n * classes + c * hw + p;  // NCHW order
          const int32_t acc = w.output[static_cast<size_t>((n * hw + p) * out.c + c)];
          r.int_logits[dst] = acc;
          r.logits[dst] = static_cast<float>(acc) * last.out_scale[c];
        }
      for (int64_t k = 1; k < classes; ++k)
        if (r.logits[n * classes + k] > r.logits[n * classes + best]) best = k;
      r.argmax[n] = static_cast<int32_t>(best);
    }
    return r;
  }
};

namespace {

// Options for a session over a model just prepared with `options` (its level is the model's).
SessionOptions without_isa(SessionOptions options) {
  options.isa.clear();
  return options;
}

}  // namespace

Session::Session(Model model, SessionOptions options)
    : Session(PreparedModel::create(std::move(model), {options.isa, options.limits}), without_isa(options)) {}

Session::Session(std::shared_ptr<const PreparedModel> model, SessionOptions options) : impl_(std::make_unique<Impl>()) {
  LOWBIT_CHECK(model != nullptr, "Session: the prepared model is null");
  Impl& s = *impl_;
  if (!options.isa.empty() && parse_isa(options.isa) != model->isa())
    throw Error("Session: the shared model was prepared for " + std::string(isa_name(model->isa())) +
                ", not for the requested " + options.isa + "; prepare it for that level (PrepareOptions::isa)");
  s.prepared = std::move(model);
  s.model = &s.prepared->model();
  s.kernels = &s.prepared->kernels();
  s.split_work = s.kernels->split_work;
  int threads = options.threads;
  if (threads <= 0) threads = std::max(1u, std::thread::hardware_concurrency());
  threads = std::min(threads, 256);
  s.pool = std::make_unique<ThreadPool>(threads);
  s.profile = options.profile;
  s.min_parallel_macs = options.min_parallel_macs >= 0 ? options.min_parallel_macs : int64_t{1} << 21;
  s.ws.resize(static_cast<size_t>(threads));
  s.thread_scratch.assign(static_cast<size_t>(threads),
                          std::vector<uint8_t>(static_cast<size_t>(s.prepared->per_thread_bytes())));
  for (auto& t : s.thread_scratch) s.thread_scratch_ptrs.push_back(t.data());
}

Session::~Session() = default;
Session::Session(Session&&) noexcept = default;
Session& Session::operator=(Session&&) noexcept = default;

Session Session::load(const std::string& path, SessionOptions options) {
  return Session(PreparedModel::load(path, {options.isa, options.limits}), without_isa(options));
}

RunResult Session::run_slice(const float* x, int64_t batch, int workspace) {
  Impl& s = *impl_;
  Impl::Workspace& w = s.ws[workspace];
  if (s.profile) w.run_start = Impl::cpu_ms(w);
  s.prepare_buffers(w, batch);
  const ActQParams& q = s.model->input;
  const int32_t C = s.model->in_channels;
  const int64_t hw = int64_t{s.model->in_height} * s.model->in_width;
  uint8_t* dst = w.values[0].data();
  const QuantizeInputFn quantize = s.kernels->quantize.quantize_input.fn;
  const std::vector<float>& mean = s.model->input_mean;
  const std::vector<float>& std_dev = s.model->input_std;
  s.context(w).over_batch(batch, [&](int64_t b0, int64_t n) {
    // Input normalisation (x - mean[c]) / std[c] in float, a scalar pass over each NCHW plane
    // before the quantize kernel: the same expression as training and the integer simulation.
    std::vector<float> normalised(mean.empty() ? 0 : static_cast<size_t>(hw));
    for (int64_t b = b0; b < b0 + n; ++b)
      for (int32_t c = 0; c < C; ++c) {
        const float* plane = x + (b * C + c) * hw;
        if (!mean.empty()) {
          for (int64_t p = 0; p < hw; ++p) normalised[p] = quant::normalise_input(plane[p], mean[c], std_dev[c]);
          plane = normalised.data();
        }
        quantize(plane, hw, q.scale, q.zero_point, q.qmin, q.qmax, dst + b * hw * C + c, C);
      }
  });
  return s.finish(w, batch);
}

RunResult Session::run_u8_slice(const uint8_t* pixels, int64_t batch, int workspace) {
  Impl& s = *impl_;
  Impl::Workspace& w = s.ws[workspace];
  if (s.profile) w.run_start = Impl::cpu_ms(w);
  const ActQParams& q = s.model->input;
  const int32_t C = s.model->in_channels;
  // One table per channel: quantize((p / 255 - mean[c]) / std[c]), or one for all without normalisation.
  const std::vector<float>& mean = s.model->input_mean;
  const std::vector<float>& std_dev = s.model->input_std;
  const int32_t tables = mean.empty() ? 1 : C;
  std::vector<uint8_t> lut(static_cast<size_t>(tables) * 256);
  for (int32_t c = 0; c < tables; ++c)
    for (int p = 0; p < 256; ++p) {
      float v = static_cast<float>(p) / 255.0f;
      if (!mean.empty()) v = quant::normalise_input(v, mean[c], std_dev[c]);
      lut[c * 256 + p] = static_cast<uint8_t>(quant::quantize_integer(v, q.scale, q.zero_point, q.qmin, q.qmax));
    }
  s.prepare_buffers(w, batch);
  const int64_t hw = int64_t{s.model->in_height} * s.model->in_width;
  uint8_t* dst = w.values[0].data();
  s.context(w).over_batch(batch, [&](int64_t b0, int64_t n) {
    for (int64_t b = b0; b < b0 + n; ++b)
      for (int32_t c = 0; c < C; ++c) {
        const uint8_t* table = lut.data() + (tables == 1 ? 0 : c * 256);
        for (int64_t p = 0; p < hw; ++p) dst[(b * hw + p) * C + c] = table[pixels[(b * C + c) * hw + p]];
      }
  });
  return s.finish(w, batch);
}

RunResult Session::run(const float* x, int64_t batch) {
  return impl_->run_batch("run", x, batch, [&](const float* p, int64_t n, int w) { return run_slice(p, n, w); });
}

RunResult Session::run_u8(const uint8_t* pixels, int64_t batch) {
  const ActQParams& q = impl_->model->input;
  // A normalised model takes pixels / 255 whatever its input quantization (the tables above).
  LOWBIT_CHECK(!impl_->model->input_mean.empty() || (q.scale == 1.0f / 255.0f && q.zero_point == 0),
               "run_u8: uint8 pixels need an input scale of exactly 1/255 and zero point 0 (the model has scale " +
                   std::to_string(q.scale) + ", zero point " + std::to_string(q.zero_point) + "); use run() with floats");
  return impl_->run_batch("run_u8", pixels, batch, [&](const uint8_t* p, int64_t n, int w) { return run_u8_slice(p, n, w); });
}

const std::vector<double>& Session::op_times_ms() const { return impl_->op_ms; }
const Model& Session::model() const { return *impl_->model; }
const std::shared_ptr<const PreparedModel>& Session::prepared_model() const { return impl_->prepared; }
Isa Session::isa() const { return impl_->prepared->isa(); }
int Session::threads() const { return impl_->pool->threads(); }
std::vector<std::string> Session::kernel_names() const { return impl_->prepared->kernel_names(); }

}  // namespace lowbit::runtime
