#include "runtime/encoder_session.h"

#include <algorithm>
#include <thread>

#include "base/error.h"
#include "quant/quantize.h"
#include "runtime/encoder_model_file.h"
#include "runtime/ops/attention_op.h"
#include "runtime/ops/encoder_linear_op.h"
#include "runtime/ops/layernorm_op.h"
#include "runtime/thread_pool.h"

namespace lowbit::runtime {
namespace {

// Fake quantization of a residual add's output onto its grid (in place).
void quantize_in_place(float* x, int64_t n, const ActGrid& g) {
  for (int64_t i = 0; i < n; ++i)
    x[i] = quant::dequantize(quant::quantize_integer(x[i], g.scale, g.zero_point, g.qmin, g.qmax), g.scale, g.zero_point);
}

// One worker's buffers for one image.
struct Scratch {
  std::vector<uint8_t> in_codes, f_codes;
  std::vector<float> in, x, h, q, k, v, a, o, f, scores, pooled, normed;
  std::vector<int32_t> acc;
};

}  // namespace

struct EncoderSession::Impl {
  std::unique_ptr<EncoderModel> m;  // the ops point into it: never moved
  Isa isa = Isa::Ref;
  struct Layer {
    ops::EncoderLinearOp q, k, v, o, fc1, fc2;
  };
  ops::EncoderLinearOp patch_embed, head;
  std::vector<Layer> layers;
  std::unique_ptr<ThreadPool> pool;
  std::vector<Scratch> scratch;  // one per thread

  void forward(const float* image, float* logits, Scratch& s) const;
};

EncoderSession::EncoderSession(EncoderModel model, EncoderOptions options) : impl_(std::make_unique<Impl>()) {
  validate_encoder_model(model, model.name.empty() ? "encoder model" : "encoder model '" + model.name + "'");
  Impl& I = *impl_;
  I.m = std::make_unique<EncoderModel>(std::move(model));
  if (options.isa.empty()) {
    I.isa = select_isa();
  } else {
    I.isa = parse_isa(options.isa);
    require_isa(I.isa);
  }
  const EncoderModel& m = *I.m;
  I.patch_embed = ops::EncoderLinearOp(m.patch_embed, I.isa);
  I.head = ops::EncoderLinearOp(m.head, I.isa);
  for (const EncoderLayer& L : m.layers)
    I.layers.push_back({ops::EncoderLinearOp(L.q, I.isa), ops::EncoderLinearOp(L.k, I.isa),
                        ops::EncoderLinearOp(L.v, I.isa), ops::EncoderLinearOp(L.o, I.isa),
                        ops::EncoderLinearOp(L.fc1, I.isa), ops::EncoderLinearOp(L.fc2, I.isa)});
  int threads = options.threads;
  if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  if (threads > 1) I.pool = std::make_unique<ThreadPool>(threads);
  I.scratch.resize(static_cast<size_t>(threads));
  const size_t T = static_cast<size_t>(m.tokens()), d = static_cast<size_t>(m.width);
  for (Scratch& s : I.scratch) {
    s.in_codes.resize(T * m.patch_features());
    s.in.resize(T * m.patch_features());
    for (auto* b : {&s.x, &s.h, &s.q, &s.k, &s.v, &s.a, &s.o}) b->resize(T * d);
    s.f.resize(T * m.hidden);
    s.f_codes.resize(T * m.hidden);
    s.scores.resize(T);
    s.pooled.resize(d);
    s.normed.resize(d);
  }
}

EncoderSession::~EncoderSession() = default;
EncoderSession::EncoderSession(EncoderSession&&) noexcept = default;
EncoderSession& EncoderSession::operator=(EncoderSession&&) noexcept = default;

EncoderSession EncoderSession::load(const std::string& path, EncoderOptions options) {
  return EncoderSession(load_encoder_model(path), options);
}

const EncoderModel& EncoderSession::model() const { return *impl_->m; }
Isa EncoderSession::isa() const { return impl_->isa; }
int EncoderSession::threads() const { return impl_->pool ? impl_->pool->threads() : 1; }

std::vector<std::string> EncoderSession::kernel_names() const {
  const Impl& I = *impl_;
  std::vector<std::string> names;
  auto add = [&](const ops::EncoderLinearOp& op) {
    if (op.integer() && std::find(names.begin(), names.end(), op.kernel_name()) == names.end())
      names.push_back(op.kernel_name());
  };
  add(I.patch_embed);
  for (const Impl::Layer& L : I.layers)
    for (const ops::EncoderLinearOp* op : {&L.q, &L.k, &L.v, &L.o, &L.fc1, &L.fc2}) add(*op);
  add(I.head);
  if (names.empty()) names.push_back("(no integer linear)");
  for (const char* f : {"input quantization: quant::quantize_integer", "linears with float inputs: float scalar",
                        "layernorm: float scalar", "attention (non-causal, softmax): float scalar",
                        "gelu (erf): float scalar", "residual adds, output grids: float, quant::quantize_integer",
                        "token mean: float scalar"})
    names.push_back(f);
  return names;
}

void EncoderSession::Impl::forward(const float* image, float* logits, Scratch& s) const {
  const EncoderModel& M = *m;
  const int32_t p = M.patch, side = M.grid_side(), T = M.tokens(), P = M.patch_features(), d = M.width;
  const int32_t H = M.image_size;
  // Patches in the conv weight's order: k = (c * p + kh) * p + kw.
  for (int32_t t = 0; t < T; ++t) {
    const int32_t ph = t / side, pw = t % side;
    for (int32_t c = 0; c < M.channels; ++c)
      for (int32_t kh = 0; kh < p; ++kh)
        for (int32_t kw = 0; kw < p; ++kw) {
          const float px = image[(static_cast<int64_t>(c) * H + ph * p + kh) * H + pw * p + kw];
          const size_t i = static_cast<size_t>(t) * P + (c * p + kh) * p + kw;
          if (M.input_quantized) {
            const ActGrid& g = M.input_grid;
            const int32_t q = quant::quantize_integer(px, g.scale, g.zero_point, g.qmin, g.qmax);
            s.in_codes[i] = static_cast<uint8_t>(q);
            s.in[i] = quant::dequantize(q, g.scale, g.zero_point);
          } else {
            s.in[i] = px;
          }
        }
  }
  patch_embed.run(s.in.data(), s.in_codes.data(), T, s.x.data(), nullptr, s.acc);
  const int64_t n = int64_t{T} * d;
  for (int64_t i = 0; i < n; ++i) s.x[static_cast<size_t>(i)] += M.position[static_cast<size_t>(i)];
  for (size_t l = 0; l < M.layers.size(); ++l) {
    const EncoderLayer& L = M.layers[l];
    const Layer& O = layers[l];
    ops::layernorm(s.x.data(), T, d, L.norm1_w.data(), L.norm1_b.data(), M.norm_eps, s.h.data());
    O.q.run(s.h.data(), nullptr, T, s.q.data(), nullptr, s.acc);
    O.k.run(s.h.data(), nullptr, T, s.k.data(), nullptr, s.acc);
    O.v.run(s.h.data(), nullptr, T, s.v.data(), nullptr, s.acc);
    ops::full_attention(s.q.data(), s.k.data(), s.v.data(), T, M.heads, M.head_size(), s.scores.data(), s.a.data());
    O.o.run(s.a.data(), nullptr, T, s.o.data(), nullptr, s.acc);
    for (int64_t i = 0; i < n; ++i) s.x[static_cast<size_t>(i)] += s.o[static_cast<size_t>(i)];
    if (L.has_add1_grid) quantize_in_place(s.x.data(), n, L.add1_grid);
    ops::layernorm(s.x.data(), T, d, L.norm2_w.data(), L.norm2_b.data(), M.norm_eps, s.h.data());
    O.fc1.run(s.h.data(), nullptr, T, s.f.data(), s.f_codes.data(), s.acc);
    O.fc2.run(s.f.data(), s.f_codes.data(), T, s.o.data(), nullptr, s.acc);
    for (int64_t i = 0; i < n; ++i) s.x[static_cast<size_t>(i)] += s.o[static_cast<size_t>(i)];
    if (L.has_add2_grid) quantize_in_place(s.x.data(), n, L.add2_grid);
  }
  for (int32_t i = 0; i < d; ++i) {
    double sum = 0.0;
    for (int32_t t = 0; t < T; ++t) sum += s.x[static_cast<size_t>(t) * d + i];
    s.pooled[static_cast<size_t>(i)] = static_cast<float>(sum / T);
  }
  ops::layernorm(s.pooled.data(), 1, d, M.norm_f_w.data(), M.norm_f_b.data(), M.norm_eps, s.normed.data());
  head.run(s.normed.data(), nullptr, 1, logits, nullptr, s.acc);
}

std::vector<float> EncoderSession::run(const float* images, int64_t n) {
  Impl& I = *impl_;
  const EncoderModel& m = *I.m;
  LOWBIT_CHECK(n >= 0, "EncoderSession::run: negative image count");
  std::vector<float> logits(static_cast<size_t>(n) * m.classes);
  const int64_t image = int64_t{m.channels} * m.image_size * m.image_size;
  if (I.pool && n > 1) {
    I.pool->parallel_for(n, [&](int64_t i, int thread) {
      I.forward(images + i * image, logits.data() + i * m.classes, I.scratch[static_cast<size_t>(thread)]);
    });
  } else {
    for (int64_t i = 0; i < n; ++i) I.forward(images + i * image, logits.data() + i * m.classes, I.scratch[0]);
  }
  return logits;
}

}  // namespace lowbit::runtime
