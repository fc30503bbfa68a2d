#include "runtime/ops/gemm_op.h"

#include <algorithm>
#include <cstring>

#include "runtime/kernels/gemm_config.h"
#include "runtime/ops/im2col.h"

namespace lowbit::runtime {
namespace {

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
int64_t align64(int64_t n) { return (n + 63) / 64 * 64; }

// Weights reordered to im2col order (k = (kh * KW + kw) * Cg + c, or the stacked-rows order) and
// packed once per group, with the requantization and the bias the kernel's input needs.
struct PackedWeights {
  std::vector<std::vector<uint8_t>> packed;  // [groups]
  std::vector<int32_t> multiplier, shift;
  std::vector<int32_t> bias;  // bias_q, with -z_x * sum(w) folded in for U8-input kernels
  int32_t K = 0, Kp = 0;      // reduction length and its padded length (row stride of A)
  bool stacked = false;       // im2col rows come from the stacked-rows image (stacks_rows)
  bool fits_pairs = true;     // pair_bounded configs: gemm_weights_fit_pairs holds for every group
};

// nhwc_hw > 0 (linear only): the linear reads the NHWC tensor [H, W, C] (H * W = nhwc_hw) that a
// Flatten would have turned into C-major order; its weight columns are permuted to match.
// x_max: the largest activation value the GEMM reads (for pair_bounded configs).
PackedWeights pack_gemm_weights(const Op& op, const GemmConfig* config, int32_t zx, int32_t nhwc_hw, int32_t x_max) {
  PackedWeights p;
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

// A max pool with kernel = stride, no padding and a window of 2 or 4 elements that is the only
// reader of a hidden conv's output is fused into the conv's output stage (GemmOutput::pool_rows):
// returns its op index, or -1.
int32_t fusable_max_pool(const OpGraph& g, int32_t index, const GemmConfig* cfg) {
  const int32_t next = index + 1;
  if (next >= static_cast<int32_t>(g.model.ops.size())) return -1;
  const Op& c = g.model.ops[index];
  const Op& p = g.model.ops[next];
  if (c.kind != OpKind::Conv2d || c.output_layer || p.kind != OpKind::MaxPool2d) return -1;
  const int32_t taps = p.kernel_h * p.kernel_w, v = index + 1;
  if (p.inputs[0] != v || p.pad_h != 0 || p.pad_w != 0 || p.stride_h != p.kernel_h || p.stride_w != p.kernel_w ||
      (taps != 2 && taps != 4) || taps > cfg->pool_rows_max || cfg->mr % taps != 0)
    return -1;
  return g.readers(v) == 1 ? next : -1;
}

class GemmOp final : public PreparedOp {
 public:
  GemmOp(const OpGraph& g, int32_t index, const GemmConfig* config, PackedWeights w, int32_t src)
      : PreparedOp(g, index), config_(config), w_(std::move(w)), src_(src), src_shape_(g.shapes[src]), zx_(g.qparams[src]->zero_point) {
    const Op& o = op();
    conv_ = o.kind == OpKind::Conv2d;
    groups_ = conv_ ? o.groups : 1;
    og_ = o.out_channels / groups_;
    cg_ = o.in_channels / groups_;
    pool_ = fusable_max_pool(g, index, config);
    if (pool_ >= 0) {
      pkh_ = g.model.ops[pool_].kernel_h;
      pkw_ = g.model.ops[pool_].kernel_w;
    }
    taps_ = pkh_ * pkw_;
    pooled_ = pool_ >= 0 ? g.shapes[pool_ + 1] : out_shape();
    pad_h_ = src_shape_.h + 2 * int64_t{o.pad_h};
    pad_w_ = src_shape_.w + 2 * int64_t{o.pad_w};
    const int64_t elem = config->input == GemmInput::S16 ? 2 : 1;
    chunk_ = std::min<int64_t>(std::max<int64_t>(config->mr, (32768 / elem / w_.Kp) / config->mr * config->mr), 256);
    // The gather copies one run of KW * C contiguous values per kernel row: not for a dilation_w > 1.
    gather_ = conv_ && groups_ == 1 && !w_.stacked && o.dilation_w == 1 && g.kernels.im2col.gather_rows.fn != nullptr;
    im2col_ = g.kernels.im2col;
  }

  std::string kernel_name() const override { return std::string(config_->name) + (pool_ >= 0 ? " + max pool" : ""); }
  std::vector<int32_t> reads() const override { return {src_}; }
  int32_t absorbed_op() const override { return pool_; }
  std::string absorbed_note() const override { return "fused into the conv's output stage"; }

  // Workspace: the padded input (T elements) then the stacked-rows image; per thread: the chunk's
  // im2col rows (T elements) then the gather's source offsets.
  BufferNeeds buffers(int64_t items) const override {
    const int64_t elem = element_size();
    BufferNeeds b;
    if (conv_) b.workspace = align64((items * padded_item() + kCopySlack) * elem) + items * stacked_item() + kCopySlack;
    b.per_thread = align64((chunk_ * w_.Kp + kCopySlack) * elem) + chunk_ * int64_t{sizeof(int64_t)};
    return b;
  }

  void run(const OpRunContext& ctx, int64_t batch) const override {
    if (config_->input == GemmInput::S16) return run_t<int16_t>(ctx, batch);
    return run_t<uint8_t>(ctx, batch);
  }

 private:
  int64_t element_size() const { return config_->input == GemmInput::S16 ? 2 : 1; }
  int64_t padded_item() const { return pad_h_ * pad_w_ * src_shape_.c; }
  int64_t stacked_item() const { return w_.stacked ? int64_t{out_shape().h} * pad_w_ * 4 : 0; }

  // Padded copy of the conv input (borders read as the zero point: 0 once widened to x - zx for
  // T = int16_t), and its stacked-rows image when the weights were packed for one.
  template <class T>
  void pad_input(const OpRunContext& ctx, int64_t batch, const uint8_t* x, T* padded, uint8_t* stacked) const {
    constexpr bool widened = sizeof(T) == 2;
    const Op& o = op();
    const int64_t item = padded_item();
    ctx.over_batch(batch, [&](int64_t b0, int64_t nb) {
      for (int64_t n = b0; n < b0 + nb; ++n) {
        T* dst = padded + n * item;
        std::fill(dst, dst + item, widened ? T{0} : static_cast<T>(zx_));
        for (int32_t h = 0; h < src_shape_.h; ++h) {
          const uint8_t* src = x + (n * src_shape_.h + h) * int64_t{src_shape_.w} * src_shape_.c;
          T* d = dst + ((h + o.pad_h) * pad_w_ + o.pad_w) * src_shape_.c;
          if constexpr (widened) {
            config_->widen(src, int64_t{src_shape_.w} * src_shape_.c, zx_, reinterpret_cast<int16_t*>(d));
          } else {
            std::memcpy(d, src, static_cast<size_t>(src_shape_.w) * src_shape_.c);
          }
        }
        if constexpr (!widened) {
          if (w_.stacked)
            stack_rows(o, dst, pad_w_, src_shape_.c, out_shape().h, im2col_.stack_rows_c1.fn, stacked + n * stacked_item());
        }
      }
    });
  }

  // im2col of rows [m0, m0 + rows) for group g into a (row stride Kp): a linear's rows are its
  // input items; a conv's come from the padded copy of its input, per kernel row one contiguous run
  // of KW * C values (groups == 1, dilation_w == 1) or per tap one run of cg values. Kernel row kh
  // reads padded row oh * stride_h + kh * dilation_h, tap kw column ow * stride_w + kw * dilation_w
  // (ref::conv2d's arithmetic shifted by the padding). uint8 with groups == 1: one
  // 16-byte copy from the stacked-rows image, or the rows' source offsets collected here and the
  // KH runs copied by the level's gather kernel.
  template <class T>
  void build_rows(const uint8_t* x, const T* padded, const uint8_t* stacked, int64_t m0, int64_t rows, int32_t g, T* a,
                  int64_t* offsets) const {
    constexpr bool widened = sizeof(T) == 2;
    const Op& o = op();
    const PackedWeights& p = w_;
    const ValueShape out = out_shape();
    const int64_t rows_per_item = int64_t{pooled_.h} * pooled_.w * taps_;
    if (!conv_) {
      const int64_t row = src_shape_.size();  // elements per item
      for (int64_t r = 0; r < rows; ++r) {
        T* dst = a + r * p.Kp;
        if constexpr (widened) {
          config_->widen(x + (m0 + r) * row, p.K, zx_, reinterpret_cast<int16_t*>(dst));
        } else {
          std::memcpy(dst, x + (m0 + r) * row, static_cast<size_t>(p.K));
        }
        for (int32_t k = p.K; k < p.Kp; ++k) dst[k] = 0;
      }
    } else if (p.stacked) {  // 4 * KW <= 16 contiguous bytes (the slack covers the rest of the copy)
      // Loop invariants in locals: the byte stores may alias anything.
      const int64_t kp = p.Kp, item_rows = out.h, row_bytes = pad_w_ * 4, col_bytes = int64_t{o.stride_w} * 4;
      RowCursor c(m0, rows_per_item, taps_, pooled_.w, pkh_, pkw_);
      for (int64_t r = 0; r < rows; ++r, c.next())
        copy_run(a + r * kp, stacked + (c.n * item_rows + c.oh()) * row_bytes + c.ow() * col_bytes, 16);
    } else if (gather_) {
      // int16 rows are gathered as bytes (runs and strides doubled)
      const int64_t item_rows = pad_h_, sh = o.stride_h, sw = o.stride_w, pw_ = pad_w_, ch = src_shape_.c;
      RowCursor c(m0, rows_per_item, taps_, pooled_.w, pkh_, pkw_);
      constexpr int64_t size = sizeof(T);
      for (int64_t r = 0; r < rows; ++r, c.next())
        offsets[r] = ((c.n * item_rows + c.oh() * sh) * pw_ + c.ow() * sw) * ch * size;
      im2col_.gather_rows.fn(reinterpret_cast<const uint8_t*>(padded), offsets, rows, o.kernel_h,
                             int64_t{o.dilation_h} * pad_w_ * src_shape_.c * size,
                             static_cast<int32_t>(o.kernel_w * src_shape_.c * size), static_cast<int32_t>(p.K * size),
                             static_cast<int32_t>(p.Kp * size), reinterpret_cast<uint8_t*>(a));
    } else {
      RowCursor c(m0, rows_per_item, taps_, pooled_.w, pkh_, pkw_);
      for (int64_t r = 0; r < rows; ++r, c.next()) {
        T* dst = a + r * p.Kp;
        const T* base = padded + ((c.n * pad_h_ + c.oh() * o.stride_h) * pad_w_ + c.ow() * o.stride_w) * src_shape_.c;
        for (int32_t kh = 0; kh < o.kernel_h; ++kh) {
          const T* src = base + int64_t{kh} * o.dilation_h * pad_w_ * src_shape_.c;
          if (groups_ == 1 && o.dilation_w == 1) {
            const int32_t len = o.kernel_w * src_shape_.c;
            copy_run(dst, src, static_cast<size_t>(len) * sizeof(T));
            dst += len;
          } else {
            for (int32_t kw = 0; kw < o.kernel_w; ++kw, dst += cg_) {
              const T* s2 = src + int64_t{kw} * o.dilation_w * src_shape_.c + g * cg_;
              for (int32_t ch = 0; ch < cg_; ++ch) dst[ch] = s2[ch];
            }
          }
        }
        for (int32_t k = p.K; k < p.Kp; ++k) a[r * p.Kp + k] = 0;
      }
    }
  }

  // T = int16_t: A holds x - zx (padding 0); T = uint8_t: A holds x (padding zx, the bias has
  // -zx * sum(w) folded in). Fused max pool (kernel = stride, no padding): rows are ordered (item,
  // pooled row, pooled column, window tap) and the kernel writes the max of each window's taps
  // rows to the pool's output; the conv's own output is never stored.
  template <class T>
  void run_t(const OpRunContext& ctx, int64_t batch) const {
    const Op& o = op();
    const PackedWeights& p = w_;
    const ValueShape out = out_shape();
    uint8_t* y_values = ctx.values[pool_ >= 0 ? pool_ + 1 : index() + 1];
    const uint8_t* x = ctx.values[src_];
    const int64_t M = batch * pooled_.h * pooled_.w * taps_;
    const int32_t nr = config_->nr;
    const int64_t chunk = chunk_, row_chunks = ceil_div(M, chunk);
    const int32_t col_blocks = static_cast<int32_t>(ceil_div(og_, nr));
    const int32_t threads = ctx.pool->threads();
    const int32_t col_split = row_chunks * groups_ < threads ? std::min(threads, col_blocks) : 1;
    const int64_t tasks = row_chunks * groups_ * col_split;
    T* padded = reinterpret_cast<T*>(ctx.workspace);
    uint8_t* stacked = nullptr;
    if (conv_) {
      stacked = ctx.workspace + align64((batch * padded_item() + kCopySlack) * int64_t{sizeof(T)});
      pad_input<T>(ctx, batch, x, padded, stacked);
    }
    const auto body = [&](int64_t task, int thread) {
      const int32_t cs = static_cast<int32_t>(task % col_split);
      const int32_t g = static_cast<int32_t>((task / col_split) % groups_);
      const int64_t rc = task / col_split / groups_;
      const int64_t m0 = rc * chunk, rows = std::min(chunk, M - m0);
      uint8_t* scratch = ctx.scratch(thread);
      T* a = reinterpret_cast<T*>(scratch);
      int64_t* offsets = reinterpret_cast<int64_t*>(scratch + align64((chunk * p.Kp + kCopySlack) * int64_t{sizeof(T)}));
      build_rows<T>(x, padded, stacked, m0, rows, g, a, offsets);
      const int32_t b0 = static_cast<int32_t>(int64_t{col_blocks} * cs / col_split);
      const int32_t b1 = static_cast<int32_t>(int64_t{col_blocks} * (cs + 1) / col_split);
      if (b1 <= b0) return;
      const int32_t n0 = b0 * nr, ncols = std::min(og_, b1 * nr) - n0;
      const int32_t c0 = g * og_ + n0;  // first output channel of this call
      const int64_t block_bytes = static_cast<int64_t>(p.packed[g].size() - 32) / col_blocks;
      GemmOutput out_stage;
      out_stage.bias = p.bias.data() + c0;
      out_stage.ldy = out.c;
      if (o.output_layer) {
        out_stage.y_i32 = ctx.logits + m0 * out.c + c0;
      } else {
        out_stage.multiplier = p.multiplier.data() + c0;
        out_stage.shift = p.shift.data() + c0;
        out_stage.zero_point = o.out.zero_point;
        out_stage.qmin = o.out.qmin;
        out_stage.qmax = o.out.qmax;
        out_stage.y_u8 = y_values + m0 / taps_ * out.c + c0;
        out_stage.pool_rows = taps_;
      }
      config_->gemm(rows, ncols, p.K, a, p.Kp, p.packed[g].data() + b0 * block_bytes, out_stage);
    };
    // Layers under ~2 M MACs run on the calling thread: waking workers costs more than they save.
    if (ctx.thread >= 0 || M * og_ * int64_t{p.K} * groups_ < ctx.min_parallel_macs) {
      for (int64_t t = 0; t < tasks; ++t) body(t, 0);
    } else {
      ctx.pool->parallel_for(tasks, body);
    }
  }

  const GemmConfig* config_;
  PackedWeights w_;
  int32_t src_;    // op.inputs[0], or the input of a Flatten the linear reads around
  ValueShape src_shape_;  // shape of src_
  int32_t zx_;
  bool conv_ = false, gather_ = false;
  int32_t groups_ = 1, og_ = 0, cg_ = 0;
  int32_t pool_ = -1, pkh_ = 1, pkw_ = 1, taps_ = 1;  // the fused max pool and its window
  ValueShape pooled_;                                  // the fused pool's output shape, else the conv's
  int64_t pad_h_ = 0, pad_w_ = 0;                      // padded input size
  int64_t chunk_ = 0;                                  // im2col rows per task
  Im2colConfig im2col_;
};

}  // namespace

std::unique_ptr<PreparedOp> create_gemm_op(const OpGraph& g, int32_t index) {
  const Op& op = g.model.ops[index];
  // Grouped convolutions with tiny groups stay on the direct kernel.
  if (op.kind == OpKind::Conv2d && op.out_channels / op.groups < 4) return nullptr;
  const GemmConfig* c = find_gemm_config(g.isa, op.weight.bits, op.weight.grid);
  if (c == nullptr) return nullptr;
  int32_t src = op.inputs[0], hw = 0;
  if (op.kind == OpKind::Linear && src > 0 && g.model.ops[src - 1].kind == OpKind::Flatten) {
    src = g.model.ops[src - 1].inputs[0];  // read the NHWC tensor, permute the weights instead
    hw = g.shapes[src].h * g.shapes[src].w;
  }
  // A vpmaddubsw kernel for int8 weights where this layer's weights and activation range are
  // proven not to saturate its int16 pair sums (AVX2); otherwise the exact kernel from above.
  const ActQParams& xq = *g.qparams[src];
  if (const GemmConfig* pb = find_pair_bounded_gemm_config(g.isa, op.weight.bits, op.weight.grid)) {
    PackedWeights p = pack_gemm_weights(op, pb, xq.zero_point, hw, std::max(xq.qmax, xq.zero_point));
    if (p.fits_pairs) return std::make_unique<GemmOp>(g, index, pb, std::move(p), src);
  }
  return std::make_unique<GemmOp>(g, index, c, pack_gemm_weights(op, c, xq.zero_point, hw, 255), src);
}

}  // namespace lowbit::runtime
