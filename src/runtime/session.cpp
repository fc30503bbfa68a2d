#include "runtime/session.h"

#include <algorithm>
#include <ctime>
#include <cstring>
#include <thread>

#include "base/error.h"
#include "quant/quantize.h"
#include "runtime/kernels/gemm_config.h"
#include "runtime/kernels/im2col_kernels.h"
#include "runtime/kernels/isa_kernels.h"
#include "runtime/kernels/ref_kernels.h"
#include "runtime/model_file.h"
#include "runtime/thread_pool.h"

namespace lowbit::runtime {
namespace {

// A conv2d / linear prepared for a GEMM kernel: weights reordered to im2col order
// (k = (kh * KW + kw) * Cg + c) and packed once, per group.
struct PreparedGemm {
  const GemmConfig* config = nullptr;
  std::vector<std::vector<uint8_t>> packed;  // [groups]
  std::vector<int32_t> multiplier, shift;
  std::vector<int32_t> bias;  // bias_q, with -z_x * sum(w) folded in for U8-input kernels
  int32_t K = 0, Kp = 0;      // reduction length and its padded length (row stride of A)
  bool stacked = false;       // im2col rows come from the stacked-rows image (see stacks_rows)
  bool fits_pairs = true;     // pair_bounded configs: gemm_weights_fit_pairs holds for every group
};

// Small-K convolutions (conv1: C = 1, 3x3, K = 9) spend most of their time building im2col rows
// from KH short runs. Instead the input is rewritten once as a "stacked rows" image
// S[n][oh][w] = 4 bytes (P[oh * stride_h + kh][w][c] for kh, c; zero after KH * C), P the padded
// input, so that the im2col row of (oh, ow) is the 4 * KW contiguous bytes at S[n][oh][ow * stride_w]
// (one 16-byte copy). The weights are reordered to match, k = 4 * kw + C * kh + c, with zero weights
// at the unused bytes. Used when this costs no extra quads of K (4 * KW = round_up(K, 4)).
bool stacks_rows(const Op& op, const GemmConfig* config) {
  if (op.kind != OpKind::Conv2d || op.groups != 1 || config->input != GemmInput::U8 || config->k_align != 4) return false;
  const int32_t col = op.in_channels * op.kernel_h, K = col * op.kernel_w;
  return col <= 4 && op.kernel_w <= 4 && 4 * op.kernel_w == (K + 3) / 4 * 4;
}

// nhwc_hw > 0 (linear only): the linear reads the NHWC tensor [H, W, C] (H * W = nhwc_hw) that a
// Flatten would have turned into C-major order; its weight columns are permuted to match.
// x_max: the largest activation value the GEMM reads (for pair_bounded configs).
PreparedGemm prepare_gemm(const Op& op, const GemmConfig* config, int32_t zx, int32_t nhwc_hw = 0, int32_t x_max = 255) {
  PreparedGemm p;
  p.config = config;
  const int32_t groups = op.kind == OpKind::Conv2d ? op.groups : 1;
  const int32_t cg = op.in_channels / groups, og = op.out_channels / groups;
  const int32_t kh_n = op.kind == OpKind::Conv2d ? op.kernel_h : 1, kw_n = op.kind == OpKind::Conv2d ? op.kernel_w : 1;
  p.stacked = stacks_rows(op, config);
  p.K = p.stacked ? 4 * kw_n : cg * kh_n * kw_n;
  p.Kp = (p.K + config->k_align - 1) / config->k_align * config->k_align;
  p.bias = op.bias_q;
  std::vector<int32_t> w(static_cast<size_t>(og) * p.K);
  for (int32_t g = 0; g < groups; ++g) {
    for (int32_t o = 0; o < og; ++o)
      for (int32_t c = 0; c < cg; ++c)
        for (int32_t kh = 0; kh < kh_n; ++kh)
          for (int32_t kw = 0; kw < kw_n; ++kw)
            w[static_cast<size_t>(o) * p.K + (p.stacked ? 4 * kw + kh * cg : (kh * kw_n + kw) * cg) + c] =
                op.weight.value(((static_cast<size_t>(g * og + o) * cg + c) * kh_n + kh) * kw_n + kw);
  if (nhwc_hw > 1) {  // column c * HW + q of the PyTorch weight becomes column q * C + c
    const int32_t C = p.K / nhwc_hw;
    std::vector<int32_t> perm(w.size());
    for (int32_t o = 0; o < og; ++o)
      for (int32_t c = 0; c < C; ++c)
        for (int32_t q = 0; q < nhwc_hw; ++q)
          perm[static_cast<size_t>(o) * p.K + q * C + c] = w[static_cast<size_t>(o) * p.K + c * nhwc_hw + q];
    w.swap(perm);
  }
    if (config->pair_bounded && !gemm_weights_fit_pairs(w.data(), og, p.K, x_max)) p.fits_pairs = false;
    p.packed.push_back(config->pack(w.data(), og, p.K));
    if (config->input == GemmInput::U8) {
      const std::vector<int32_t> folded = fold_zero_point(op.bias_q.data() + g * og, w.data(), og, p.K, zx);
      std::copy(folded.begin(), folded.end(), p.bias.begin() + g * og);
    }
  }
  for (const auto& m : op.multipliers) {
    p.multiplier.push_back(m.multiplier);
    p.shift.push_back(m.shift);
  }
  return p;
}

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// im2col runs are short (conv1: 3 bytes, conv2: 96): they are copied in whole 16-byte blocks here
// or by the level's gather kernel (avx2: 32-byte blocks), which may read and write up to 31 bytes
// past the run. The buffers carry that slack (in elements, so more for int16); the bytes
// written past a run are overwritten by the next run or row, or lie in the row's padding K..Kp,
// which is zeroed after the row is built.
constexpr int64_t kCopySlack = 32;
static_assert(kCopySlack >= kGatherSlack, "buffers read and written by the gather kernels need their slack");
inline void copy_run(void* dst, const void* src, size_t bytes) {
  auto* d = static_cast<uint8_t*>(dst);
  const auto* s = static_cast<const uint8_t*>(src);
  for (size_t j = 0; j < bytes; j += 16) std::memcpy(d + j, s + j, 16);
}

// Position of im2col row m in the (item n, pooled row ph, pooled column pw, window tap ti, tj) order
// of the conv + pool fusion (no pool: 1x1 windows), advanced row by row without divisions; the conv
// output position is (ph * pkh + ti, pw * pkw + tj).
struct RowCursor {
  int64_t n;
  int32_t ph, pw, ti, tj;
  const int32_t pooled_h, pooled_w, pkh, pkw;
  RowCursor(int64_t m, int64_t rows_per_item, int32_t taps, int32_t pooled_w_, int32_t pkh_, int32_t pkw_)
      : n(m / rows_per_item),
        pooled_h(static_cast<int32_t>(rows_per_item / taps / pooled_w_)), pooled_w(pooled_w_), pkh(pkh_), pkw(pkw_) {
    const int32_t pos = static_cast<int32_t>((m % rows_per_item) / taps), tap = static_cast<int32_t>((m % rows_per_item) % taps);
    ph = pos / pooled_w;
    pw = pos % pooled_w;
    ti = tap / pkw;
    tj = tap % pkw;
  }
  int64_t oh() const { return int64_t{ph} * pkh + ti; }
  int64_t ow() const { return int64_t{pw} * pkw + tj; }
  void next() {
    if (++tj < pkw) return;
    tj = 0;
    if (++ti < pkh) return;
    ti = 0;
    if (++pw < pooled_w) return;
    pw = 0;
    if (++ph < pooled_h) return;
    ph = 0;
    ++n;
  }
};

// Stacked-rows image of one padded item (stacks_rows): rows oh < OH of 4-byte columns w < pad_w.
// stack_c1: the level's vector build for C == 1 (nullptr: the scalar loops below).
void stack_rows(const Op& op, const uint8_t* padded, int64_t pad_w, int32_t C, int32_t OH, StackRowsC1Fn stack_c1,
                uint8_t* out) {
  const int32_t col = C * op.kernel_h;
  for (int32_t oh = 0; oh < OH; ++oh) {
    const uint8_t* rows = padded + int64_t{oh} * op.stride_h * pad_w * C;
    uint8_t* t = out + int64_t{oh} * pad_w * 4;
    if (C == 1 && pad_w >= 16 && stack_c1 != nullptr) {
      const uint8_t* r[4] = {rows, rows, rows, rows};
      for (int32_t j = 1; j < op.kernel_h; ++j) r[j] = rows + j * pad_w;
      stack_c1(r, op.kernel_h, pad_w, t);
      continue;
    }
    if (C == 1) {  // whole 32-bit columns
      const uint8_t* r0 = rows;
      const uint8_t* r1 = rows + (op.kernel_h > 1 ? pad_w : 0);
      const uint8_t* r2 = rows + (op.kernel_h > 2 ? 2 * pad_w : 0);
      const uint8_t* r3 = rows + (op.kernel_h > 3 ? 3 * pad_w : 0);
      const uint32_t m1 = op.kernel_h > 1, m2 = op.kernel_h > 2, m3 = op.kernel_h > 3;
      for (int64_t w = 0; w < pad_w; ++w) {
        const uint32_t v = uint32_t{r0[w]} | (m1 * r1[w]) << 8 | (m2 * r2[w]) << 16 | (m3 * r3[w]) << 24;
        std::memcpy(t + 4 * w, &v, 4);
      }
      continue;
    }
    for (int64_t w = 0; w < pad_w; ++w)
      for (int32_t j = 0; j < 4; ++j)
        t[4 * w + j] = j < col ? rows[(j / C) * pad_w * C + w * C + j % C] : 0;
  }
}

}  // namespace

struct Session::Impl {
  Model model;
  std::vector<ValueShape> shapes;
  std::vector<const ActQParams*> qparams;  // per value (nullptr for the output layer's value)
  Isa isa = Isa::Ref;
  const IsaKernels* kernels = nullptr;     // the non-GEMM kernels of `isa`
  std::unique_ptr<ThreadPool> pool;
  std::vector<PreparedGemm> gemm;          // per op (config nullptr: reference kernel)
  std::vector<int32_t> gemm_src;           // per op: the value a GEMM op reads
  std::vector<bool> skip;                  // per op: Flatten folded into the following linear(s), or fused max pool
  std::vector<int32_t> pool_of;            // per conv op: the max pool fused into its output stage, or -1
  struct PreparedDepthwise {
    std::vector<int32_t> w;  // [KH * KW][C]
    std::vector<int32_t> multiplier, shift;
  };
  std::vector<std::unique_ptr<PreparedDepthwise>> depthwise;  // per op, for depthwise convs (kernels->depthwise)
  // The buffers of one run through the graph. A batch of several pieces runs piece-parallel: each
  // pool thread takes whole pieces through the whole graph on its own workspace, so there is no
  // barrier (thread wake-up) per op; a single piece runs on workspace 0 with each op split over the
  // pool.
  struct Workspace {
    std::vector<std::vector<uint8_t>> values;  // per value, [batch, H, W, C]
    std::vector<int32_t> output;
    std::vector<int16_t> padded16;  // conv input widened to int16 (x - zx) with zero borders
    std::vector<uint8_t> padded8;   // conv input with zero-point borders
    std::vector<uint8_t> stacked8;  // stacked-rows image of padded8 (stacks_rows)
    int64_t batch_capacity = 0;
    int thread = -1;  // >= 0: this run is alone on that pool thread (its scratch); -1: ops use the pool
    std::vector<double> op_ms;  // profile: CPU ms per op (thread time when thread >= 0, else process time)
    double run_start = 0;
  };
  std::vector<Workspace> ws;                    // per thread
  std::vector<std::vector<int16_t>> scratch16;  // per thread: im2col rows
  std::vector<std::vector<uint8_t>> scratch8;
  std::vector<std::vector<int64_t>> row_offsets;  // per thread: im2col source offsets (kernels->gather_rows)
  bool profile = false;
  int64_t min_parallel_macs = 0;
  std::vector<double> op_ms;  // summed over workspaces

  void prepare_buffers(Workspace& w, int64_t batch) {
    if (batch <= w.batch_capacity) return;
    w.values.assign(shapes.size(), {});
    for (size_t v = 0; v + 1 < shapes.size(); ++v) w.values[v].resize(static_cast<size_t>(batch * shapes[v].size()));
    w.output.resize(static_cast<size_t>(batch * shapes.back().size()));
    w.batch_capacity = batch;
  }

  // Runs fn(first_item, count) over the batch, in parallel when not the reference ISA and the
  // workspace is not already alone on a thread.
  template <class Fn>
  void over_batch(const Workspace& w, int64_t batch, Fn fn) {
    if (isa == Isa::Ref || pool->threads() == 1 || w.thread >= 0) return fn(int64_t{0}, batch);
    const int64_t tasks = std::min<int64_t>(batch, pool->threads() * 4);
    pool->parallel_for(tasks, [&](int64_t t, int) {
      const int64_t b0 = batch * t / tasks, b1 = batch * (t + 1) / tasks;
      if (b1 > b0) fn(b0, b1 - b0);
    });
  }

  static std::vector<int16_t>& padded_buffer(Workspace& w, int16_t*) { return w.padded16; }
  static std::vector<uint8_t>& padded_buffer(Workspace& w, uint8_t*) { return w.padded8; }
  std::vector<int16_t>& scratch_buffer(int16_t*, int thread) { return scratch16[thread]; }
  std::vector<uint8_t>& scratch_buffer(uint8_t*, int thread) { return scratch8[thread]; }

  void run_gemm_op(Workspace& w, size_t i, int64_t batch) {
    if (gemm[i].config->input == GemmInput::S16) return run_gemm_op_t<int16_t>(w, i, batch);
    return run_gemm_op_t<uint8_t>(w, i, batch);
  }

  // T = int16_t: A holds x - zx (padding 0); T = uint8_t: A holds x (padding zx, the bias has
  // -zx * sum(w) folded in).
  template <class T>
  void run_gemm_op_t(Workspace& w, size_t i, int64_t batch) {
    constexpr bool widened = sizeof(T) == 2;
    const Op& op = model.ops[i];
    const PreparedGemm& p = gemm[i];
    const int32_t src = gemm_src[i];  // op.inputs[0], or the input of an elided Flatten
    const ValueShape in = shapes[src], out = shapes[i + 1];
    // Fused max pool (kernel = stride, no padding): rows are ordered (item, pooled row, pooled
    // column, window tap) and the kernel writes the max of each window's taps rows to the pool's
    // output; the conv's own output is never stored.
    const int32_t pj = pool_of[i];
    const int32_t pkh = pj >= 0 ? model.ops[pj].kernel_h : 1, pkw = pj >= 0 ? model.ops[pj].kernel_w : 1;
    const int32_t taps = pkh * pkw;
    const ValueShape pooled = pj >= 0 ? shapes[pj + 1] : out;
    uint8_t* y_values = w.values[pj >= 0 ? pj + 1 : i + 1].data();
    const uint8_t* x = w.values[src].data();
    const int32_t zx = qparams[src]->zero_point;
    const int64_t row = in.size();  // linear: elements per item
    const bool conv = op.kind == OpKind::Conv2d;
    const int32_t groups = conv ? op.groups : 1, cg = op.in_channels / groups, og = op.out_channels / groups;
    const int64_t rows_per_item = int64_t{pooled.h} * pooled.w * taps, M = batch * rows_per_item;
    const int32_t mr = p.config->mr, nr = p.config->nr;
    int64_t chunk = std::max<int64_t>(mr, (32768 / int64_t(sizeof(T)) / p.Kp) / mr * mr);
    chunk = std::min<int64_t>(chunk, 256);
    const int64_t row_chunks = ceil_div(M, chunk);
    const int32_t col_blocks = static_cast<int32_t>(ceil_div(og, nr));
    const int32_t col_split = row_chunks * groups < pool->threads() ? std::min(pool->threads(), col_blocks) : 1;
    const int64_t tasks = row_chunks * groups * col_split;
    const int64_t pad_h = in.h + 2 * op.pad_h, pad_w = in.w + 2 * op.pad_w;  // padded input size
    std::vector<T>& padded = padded_buffer(w, static_cast<T*>(nullptr));
    const int64_t stacked_item = p.stacked ? int64_t{out.h} * pad_w * 4 : 0;
    if (p.stacked && static_cast<int64_t>(w.stacked8.size()) < batch * stacked_item + kCopySlack)
      w.stacked8.resize(static_cast<size_t>(batch * stacked_item + kCopySlack));
    uint8_t* stacked = w.stacked8.data();
    if (conv) {
      // Padded copy of the input: borders read as the zero point.
      const int64_t item = pad_h * pad_w * in.c;
      if (static_cast<int64_t>(padded.size()) < batch * item + kCopySlack)
        padded.resize(static_cast<size_t>(batch * item + kCopySlack));
      over_batch(w, batch, [&](int64_t b0, int64_t nb) {
        for (int64_t n = b0; n < b0 + nb; ++n) {
          T* dst = padded.data() + n * item;
          std::fill(dst, dst + item, widened ? T{0} : static_cast<T>(zx));
          for (int32_t h = 0; h < in.h; ++h) {
            const uint8_t* src = x + (n * in.h + h) * int64_t{in.w} * in.c;
            T* d = dst + ((h + op.pad_h) * pad_w + op.pad_w) * in.c;
            if constexpr (widened) {
              p.config->widen(src, int64_t{in.w} * in.c, zx, reinterpret_cast<int16_t*>(d));
            } else {
              std::memcpy(d, src, static_cast<size_t>(in.w) * in.c);
            }
          }
          if constexpr (!widened) {
            if (p.stacked)
              stack_rows(op, dst, pad_w, in.c, out.h, kernels->stack_rows_c1.fn, stacked + n * stacked_item);
          }
        }
      });
    }
    const GatherRowsFn gather_rows = kernels->gather_rows.fn;
    // int16 rows are gathered as bytes (runs and strides doubled)
    const bool gather = conv && groups == 1 && !p.stacked && gather_rows != nullptr;
    const auto body = [&](int64_t task, int thread) {
      const int32_t cs = static_cast<int32_t>(task % col_split);
      const int32_t g = static_cast<int32_t>((task / col_split) % groups);
      const int64_t rc = task / col_split / groups;
      const int64_t m0 = rc * chunk, rows = std::min(chunk, M - m0);
      const int th = w.thread >= 0 ? w.thread : thread;
      std::vector<T>& a = scratch_buffer(static_cast<T*>(nullptr), th);
      if (static_cast<int64_t>(a.size()) < chunk * p.Kp + kCopySlack) a.resize(static_cast<size_t>(chunk * p.Kp + kCopySlack));
      std::vector<int64_t>& offsets = row_offsets[th];
      if (gather && static_cast<int64_t>(offsets.size()) < chunk) offsets.resize(static_cast<size_t>(chunk));
      // im2col of rows [m0, m0 + rows) for group g from the padded copy of the input: per kernel
      // row one contiguous run of KW * C values (groups == 1) or per tap one run of cg values.
      // uint8 with groups == 1: one 16-byte copy from the stacked-rows image (stacks_rows), or the
      // rows' source offsets are collected here and the KH runs copied by the level's gather kernel.
      if (!conv) {
        for (int64_t r = 0; r < rows; ++r) {
          T* dst = a.data() + r * p.Kp;
          if constexpr (widened) {
            p.config->widen(x + (m0 + r) * row, p.K, zx, reinterpret_cast<int16_t*>(dst));
          } else {
            std::memcpy(dst, x + (m0 + r) * row, static_cast<size_t>(p.K));
          }
          for (int32_t k = p.K; k < p.Kp; ++k) dst[k] = 0;
        }
      } else if (p.stacked) {  // 4 * KW <= 16 contiguous bytes (the slack covers the rest of the copy)
        // Loop invariants in locals: the byte stores may alias anything the lambda captured.
        const int64_t kp = p.Kp, item_rows = out.h, row_bytes = pad_w * 4, col_bytes = int64_t{op.stride_w} * 4;
        const uint8_t* src_img = stacked;
        T* dst = a.data();  // stacks_rows: uint8 only
        RowCursor c(m0, rows_per_item, taps, pooled.w, pkh, pkw);
        for (int64_t r = 0; r < rows; ++r, c.next())
          copy_run(dst + r * kp, src_img + (c.n * item_rows + c.oh()) * row_bytes + c.ow() * col_bytes, 16);
      } else if (gather) {
        const int64_t item_rows = pad_h, sh = op.stride_h, sw = op.stride_w, pw_ = pad_w, ch = in.c;
        int64_t* offs = offsets.data();
        RowCursor c(m0, rows_per_item, taps, pooled.w, pkh, pkw);
        constexpr int64_t size = sizeof(T);
        for (int64_t r = 0; r < rows; ++r, c.next()) offs[r] = ((c.n * item_rows + c.oh() * sh) * pw_ + c.ow() * sw) * ch * size;
        gather_rows(reinterpret_cast<const uint8_t*>(padded.data()), offsets.data(), rows, op.kernel_h, pad_w * in.c * size,
                    static_cast<int32_t>(op.kernel_w * in.c * size), static_cast<int32_t>(p.K * size),
                    static_cast<int32_t>(p.Kp * size), reinterpret_cast<uint8_t*>(a.data()));
      } else {
        RowCursor c(m0, rows_per_item, taps, pooled.w, pkh, pkw);
        for (int64_t r = 0; r < rows; ++r, c.next()) {
          T* dst = a.data() + r * p.Kp;
          const T* base = padded.data() + ((c.n * pad_h + c.oh() * op.stride_h) * pad_w + c.ow() * op.stride_w) * in.c;
          for (int32_t kh = 0; kh < op.kernel_h; ++kh) {
            const T* src = base + int64_t{kh} * pad_w * in.c;
            if (groups == 1) {
              const int32_t len = op.kernel_w * in.c;
              copy_run(dst, src, static_cast<size_t>(len) * sizeof(T));
              dst += len;
            } else {
              for (int32_t kw = 0; kw < op.kernel_w; ++kw, dst += cg) {
                const T* s2 = src + int64_t{kw} * in.c + g * cg;
                for (int32_t ch = 0; ch < cg; ++ch) dst[ch] = s2[ch];
              }
            }
          }
          for (int32_t k = p.K; k < p.Kp; ++k) a[r * p.Kp + k] = 0;
        }
      }
      const int32_t b0 = static_cast<int32_t>(int64_t{col_blocks} * cs / col_split);
      const int32_t b1 = static_cast<int32_t>(int64_t{col_blocks} * (cs + 1) / col_split);
      if (b1 <= b0) return;
      const int32_t n0 = b0 * nr, ncols = std::min(og, b1 * nr) - n0;
      const int32_t c0 = g * og + n0;  // first output channel of this call
      const int64_t block_bytes = static_cast<int64_t>(p.packed[g].size() - 32) / col_blocks;
      GemmOutput o;
      o.bias = p.bias.data() + c0;
      o.ldy = out.c;
      if (op.output_layer) {
        o.y_i32 = w.output.data() + m0 * out.c + c0;
      } else {
        o.multiplier = p.multiplier.data() + c0;
        o.shift = p.shift.data() + c0;
        o.zero_point = op.out.zero_point;
        o.qmin = op.out.qmin;
        o.qmax = op.out.qmax;
        o.y_u8 = y_values + m0 / taps * out.c + c0;
        o.pool_rows = taps;
      }
      p.config->gemm(rows, ncols, p.K, a.data(), p.Kp, p.packed[g].data() + b0 * block_bytes, o);
    };
    // Layers under ~2 M MACs run on the calling thread: waking workers costs more than they save.
    if (w.thread >= 0 || M * og * int64_t{p.K} * groups < min_parallel_macs) {
      for (int64_t t = 0; t < tasks; ++t) body(t, 0);
    } else {
      pool->parallel_for(tasks, body);
    }
  }

  void run_op(Workspace& w, size_t i, int64_t batch) {
    const Op& op = model.ops[i];
    const int32_t vin = op.inputs[0];
    const ValueShape in = shapes[vin], out = shapes[i + 1];
    const uint8_t* x = w.values[vin].data();
    uint8_t* y = op.output_layer ? nullptr : w.values[i + 1].data();
    int32_t* y32 = op.output_layer ? w.output.data() : nullptr;
    const int64_t is = in.size(), os = out.size();
    if (skip[i]) return;
    if (op.has_weights() && gemm[i].config != nullptr) return run_gemm_op(w, i, batch);
    if (depthwise[i]) {
      const PreparedDepthwise& d = *depthwise[i];
      const int32_t zx = qparams[vin]->zero_point;
      return over_batch(w, batch, [&](int64_t b0, int64_t n) {
        GemmOutput o;
        o.bias = op.bias_q.data();
        o.ldy = out.c;
        if (op.output_layer) {
          o.y_i32 = y32 + b0 * os;
        } else {
          o.multiplier = d.multiplier.data();
          o.shift = d.shift.data();
          o.zero_point = op.out.zero_point;
          o.qmin = op.out.qmin;
          o.qmax = op.out.qmax;
          o.y_u8 = y + b0 * os;
        }
        kernels->depthwise.fn(op, d.w.data(), x + b0 * is, n, in, zx, out, o);
      });
    }
    const ActQParams& q = *qparams[vin];
    over_batch(w, batch, [&](int64_t b0, int64_t n) {
      const uint8_t* xb = x + b0 * is;
      uint8_t* yb = y ? y + b0 * os : nullptr;
      int32_t* y32b = y32 ? y32 + b0 * os : nullptr;
      switch (op.kind) {
        case OpKind::Conv2d: ref::conv2d(op, xb, n, in, q.zero_point, out, yb, y32b); break;
        case OpKind::Linear: ref::linear(op, xb, n, q.zero_point, yb, y32b); break;
        case OpKind::MaxPool2d: kernels->max_pool.fn(op, xb, n, in, out, yb); break;
        case OpKind::AvgPool2d:
        case OpKind::GlobalAvgPool: ref::avg_pool(op, xb, n, in, q, out, yb); break;
        case OpKind::Add: {
          const int32_t vb = op.inputs[1];
          ref::add(op, xb, q, w.values[vb].data() + b0 * is, *qparams[vb], n * is, yb);
          break;
        }
        case OpKind::Flatten: ref::flatten(xb, n, in, yb); break;
      }
    });
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
    w.op_ms.resize(model.ops.size() + 1, 0.0);  // reset by run_batch, summed over pieces
    if (profile) w.op_ms.back() += cpu_ms(w) - w.run_start;
    for (size_t i = 0; i < model.ops.size(); ++i) {
      const double t0 = profile ? cpu_ms(w) : 0.0;
      run_op(w, i, batch);
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
    for (Workspace& w : ws) w.op_ms.assign(model.ops.size() + 1, 0.0);
    int64_t largest = 1;
    for (const ValueShape& v : shapes) largest = std::max(largest, v.size());
    // a multiple of the GEMM tile height (6) so that linear layers see full tiles
    const int64_t slice = std::max<int64_t>(12, ((256 * 1024) / largest + 5) / 6 * 6);
    const int threads = pool->threads();
    const bool by_pieces = isa != Isa::Ref && threads > 1 && batch >= threads;
    // Pieces of `slice` items (the last one shorter), so that linear layers see whole 12-row
    // tiles; fewer items than threads * slice are split evenly over the threads instead.
    const int64_t size = by_pieces && ceil_div(batch, slice) < threads ? ceil_div(batch, threads) : slice;
    const int64_t pieces = ceil_div(batch, size);
    const int64_t item = int64_t{model.in_channels} * model.in_height * model.in_width;
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
    op_ms.assign(model.ops.size() + 1, 0.0);
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
    const Op& last = model.ops.back();
    const ValueShape out = shapes.back();
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

Session::Session(Model model, SessionOptions options) : impl_(std::make_unique<Impl>()) {
  Impl& s = *impl_;
  const std::string where = model.name.empty() ? "model" : "model '" + model.name + "'";
  s.shapes = validate_model(model, where);
  check_resource_limits(model, s.shapes, options.limits, where);
  s.model = std::move(model);
  s.qparams.push_back(&s.model.input);
  for (const Op& op : s.model.ops) s.qparams.push_back(op.output_layer ? nullptr : &op.out);
  if (options.isa.empty()) {
    s.isa = select_isa();
  } else {
    s.isa = parse_isa(options.isa);
    require_isa(s.isa);
  }
  s.kernels = &isa_kernels(s.isa);
  int threads = options.threads;
  if (threads <= 0) threads = std::max(1u, std::thread::hardware_concurrency());
  threads = std::min(threads, 256);
  s.pool = std::make_unique<ThreadPool>(threads);
  s.profile = options.profile;
  s.min_parallel_macs = options.min_parallel_macs >= 0 ? options.min_parallel_macs : int64_t{1} << 21;
  s.ws.resize(static_cast<size_t>(threads));
  s.scratch16.resize(static_cast<size_t>(threads));
  s.row_offsets.resize(static_cast<size_t>(threads));
  s.scratch8.resize(static_cast<size_t>(threads));
  s.gemm.resize(s.model.ops.size());
  s.depthwise.resize(s.model.ops.size());
  s.skip.assign(s.model.ops.size(), false);
  s.gemm_src.resize(s.model.ops.size());
  for (size_t i = 0; i < s.model.ops.size(); ++i) s.gemm_src[i] = s.model.ops[i].inputs[0];
  for (size_t i = 0; i < s.model.ops.size(); ++i) {
    const Op& op = s.model.ops[i];
    if (!op.has_weights()) continue;
    if (op.kind == OpKind::Conv2d && op.groups > 1 && op.groups == op.in_channels && op.groups == op.out_channels &&
        s.kernels->depthwise.fn != nullptr) {
      auto d = std::make_unique<Impl::PreparedDepthwise>();
      const int32_t taps = op.kernel_h * op.kernel_w, C = op.out_channels;
      d->w.resize(static_cast<size_t>(taps) * C);
      for (int32_t c = 0; c < C; ++c)
        for (int32_t t = 0; t < taps; ++t) d->w[static_cast<size_t>(t) * C + c] = op.weight.value(static_cast<size_t>(c) * taps + t);
      for (const auto& m : op.multipliers) {
        d->multiplier.push_back(m.multiplier);
        d->shift.push_back(m.shift);
      }
      s.depthwise[i] = std::move(d);
      continue;
    }
    // Other grouped convolutions with tiny groups stay on the reference kernel.
    if (op.kind == OpKind::Conv2d && op.out_channels / op.groups < 4) continue;
    const GemmConfig* c = find_gemm_config(s.isa, op.weight.bits, op.weight.grid);
    if (c == nullptr) continue;
    int32_t src = op.inputs[0], hw = 0;
    if (op.kind == OpKind::Linear && src > 0 && s.model.ops[src - 1].kind == OpKind::Flatten) {
      src = s.model.ops[src - 1].inputs[0];  // read the NHWC tensor, permute the weights instead
      hw = s.shapes[src].h * s.shapes[src].w;
    }
    s.gemm_src[i] = src;
    // A vpmaddubsw kernel for int8 weights where this layer's weights and activation range are
    // proven not to saturate its int16 pair sums (AVX2); otherwise the exact kernel from above.
    const ActQParams& xq = *s.qparams[src];
    if (const GemmConfig* pb = find_pair_bounded_gemm_config(s.isa, op.weight.bits, op.weight.grid)) {
      PreparedGemm p = prepare_gemm(op, pb, xq.zero_point, hw, std::max(xq.qmax, xq.zero_point));
      if (p.fits_pairs) {
        s.gemm[i] = std::move(p);
        continue;
      }
    }
    s.gemm[i] = prepare_gemm(op, c, xq.zero_point, hw);
  }
  // A max pool with kernel = stride, no padding and a window of 2 or 4 elements that is the only
  // reader of a conv's output is fused into the conv's output stage (GemmOutput::pool_rows).
  s.pool_of.assign(s.model.ops.size(), -1);
  for (size_t i = 0; i + 1 < s.model.ops.size(); ++i) {
    const Op& c = s.model.ops[i];
    const Op& p = s.model.ops[i + 1];
    const GemmConfig* cfg = s.gemm[i].config;
    if (cfg == nullptr || c.kind != OpKind::Conv2d || c.output_layer || p.kind != OpKind::MaxPool2d) continue;
    const int32_t taps = p.kernel_h * p.kernel_w, v = static_cast<int32_t>(i) + 1;
    if (p.inputs[0] != v || p.pad_h != 0 || p.pad_w != 0 || p.stride_h != p.kernel_h || p.stride_w != p.kernel_w ||
        (taps != 2 && taps != 4) || taps > cfg->pool_rows_max || cfg->mr % taps != 0)
      continue;
    int readers = 0;
    for (const Op& o : s.model.ops)
      for (int32_t in : o.inputs) readers += in == v;
    if (readers != 1) continue;
    s.pool_of[i] = static_cast<int32_t>(i) + 1;
    s.skip[i + 1] = true;
  }
  // A Flatten whose every reader is a linear that reads around it need not run.
  for (size_t f = 0; f < s.model.ops.size(); ++f) {
    if (s.model.ops[f].kind != OpKind::Flatten) continue;
    const int32_t v = static_cast<int32_t>(f) + 1;
    bool needed = false;
    for (size_t i = 0; i < s.model.ops.size(); ++i)
      for (int32_t in : s.model.ops[i].inputs)
        if (in == v && s.gemm_src[i] == in) needed = true;
    s.skip[f] = !needed;
  }
}

Session::~Session() = default;
Session::Session(Session&&) noexcept = default;
Session& Session::operator=(Session&&) noexcept = default;

Session Session::load(const std::string& path, SessionOptions options) {
  Model m = load_model(path);
  check_resource_limits(m, validate_model(m, path), options.limits, path);  // names the file, not the model
  return Session(std::move(m), options);
}

RunResult Session::run_slice(const float* x, int64_t batch, int workspace) {
  Impl& s = *impl_;
  Impl::Workspace& w = s.ws[workspace];
  if (s.profile) w.run_start = Impl::cpu_ms(w);
  s.prepare_buffers(w, batch);
  const ActQParams& q = s.model.input;
  const int32_t C = s.model.in_channels;
  const int64_t hw = int64_t{s.model.in_height} * s.model.in_width;
  uint8_t* dst = w.values[0].data();
  const QuantizeInputFn quantize = s.kernels->quantize_input.fn;
  s.over_batch(w, batch, [&](int64_t b0, int64_t n) {
    for (int64_t b = b0; b < b0 + n; ++b)
      for (int32_t c = 0; c < C; ++c)
        quantize(x + (b * C + c) * hw, hw, q.scale, q.zero_point, q.qmin, q.qmax, dst + b * hw * C + c, C);
  });
  return s.finish(w, batch);
}

RunResult Session::run_u8_slice(const uint8_t* pixels, int64_t batch, int workspace) {
  Impl& s = *impl_;
  Impl::Workspace& w = s.ws[workspace];
  if (s.profile) w.run_start = Impl::cpu_ms(w);
  const ActQParams& q = s.model.input;
  uint8_t lut[256];
  for (int p = 0; p < 256; ++p)
    lut[p] = static_cast<uint8_t>(quant::quantize_integer(static_cast<float>(p) / 255.0f, q.scale, 0, q.qmin, q.qmax));
  s.prepare_buffers(w, batch);
  const int32_t C = s.model.in_channels;
  const int64_t hw = int64_t{s.model.in_height} * s.model.in_width;
  uint8_t* dst = w.values[0].data();
  s.over_batch(w, batch, [&](int64_t b0, int64_t n) {
    for (int64_t b = b0; b < b0 + n; ++b)
      for (int32_t c = 0; c < C; ++c)
        for (int64_t p = 0; p < hw; ++p) dst[(b * hw + p) * C + c] = lut[pixels[(b * C + c) * hw + p]];
  });
  return s.finish(w, batch);
}

RunResult Session::run(const float* x, int64_t batch) {
  return impl_->run_batch("run", x, batch, [&](const float* p, int64_t n, int w) { return run_slice(p, n, w); });
}

RunResult Session::run_u8(const uint8_t* pixels, int64_t batch) {
  const ActQParams& q = impl_->model.input;
  LOWBIT_CHECK(q.scale == 1.0f / 255.0f && q.zero_point == 0,
               "run_u8: uint8 pixels need an input scale of exactly 1/255 and zero point 0 (the model has scale " +
                   std::to_string(q.scale) + ", zero point " + std::to_string(q.zero_point) + "); use run() with floats");
  return impl_->run_batch("run_u8", pixels, batch, [&](const uint8_t* p, int64_t n, int w) { return run_u8_slice(p, n, w); });
}

const std::vector<double>& Session::op_times_ms() const { return impl_->op_ms; }
const Model& Session::model() const { return impl_->model; }
Isa Session::isa() const { return impl_->isa; }
int Session::threads() const { return impl_->pool->threads(); }

std::vector<std::string> Session::kernel_names() const {
  std::vector<std::string> names;
  for (size_t i = 0; i < impl_->model.ops.size(); ++i) {
    const PreparedGemm& p = impl_->gemm[i];
    const OpKind k = impl_->model.ops[i].kind;
    const bool fused_pool = i > 0 && impl_->pool_of[i - 1] == static_cast<int32_t>(i);
    const char* kernel = p.config ? p.config->name
                         : impl_->depthwise[i] ? impl_->kernels->depthwise.name
                         : fused_pool          ? "fused into the conv's output stage"
                         : impl_->skip[i]      ? "folded into the next linear"
                         : k == OpKind::MaxPool2d ? impl_->kernels->max_pool.name
                                                  : "ref";
    names.push_back(std::string(op_kind_name(k)) + ": " + kernel + (impl_->pool_of[i] >= 0 ? " + max pool" : ""));
  }
  return names;
}

}  // namespace lowbit::runtime
