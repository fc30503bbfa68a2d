#include "runtime/decoder_session.h"

#include <thread>

#include "base/error.h"
#include "runtime/decoder_model_file.h"
#include "runtime/ops/attention_op.h"
#include "runtime/ops/dynamic_quant_linear_op.h"
#include "runtime/ops/embedding_op.h"
#include "runtime/ops/rmsnorm_op.h"
#include "runtime/ops/swiglu_op.h"
#include "runtime/thread_pool.h"

namespace lowbit::runtime {

struct DecoderSession::Impl {
  DecoderModel m;
  Isa isa = Isa::Ref;
  int64_t min_parallel_macs = int64_t{1} << 18;
  std::unique_ptr<ThreadPool> pool;
  struct Layer {
    ops::DynamicQuantLinear q, k, v, o, gate, up, down;
  };
  std::vector<Layer> layers;
  ops::DynamicQuantLinear head_q;
  ops::RopeTable rope;
  ops::KvCache cache;
  int64_t pos = 0;
  // Buffers for a call of up to `rows` tokens.
  std::vector<float> x, h, q, k, v, a, g, u, s, logits, scores;
  ops::LinearScratch scratch;

  void reserve(int64_t rows) {
    const size_t d = static_cast<size_t>(rows) * m.width, hid = static_cast<size_t>(rows) * m.hidden;
    for (auto* b : {&x, &h, &q, &k, &v, &a}) b->resize(d);
    for (auto* b : {&g, &u, &s}) b->resize(hid);
    logits.resize(static_cast<size_t>(rows) * m.vocab);
    scores.resize(static_cast<size_t>(m.context));
  }
};

DecoderSession::DecoderSession(DecoderModel model, DecoderOptions options) : impl_(std::make_unique<Impl>()) {
  validate_decoder_model(model, model.name.empty() ? "decoder model" : "decoder model '" + model.name + "'");
  Impl& I = *impl_;
  I.m = std::move(model);
  if (options.isa.empty()) {
    I.isa = select_isa();
  } else {
    I.isa = parse_isa(options.isa);
    require_isa(I.isa);
  }
  if (options.min_parallel_macs >= 0) I.min_parallel_macs = options.min_parallel_macs;
  int threads = options.threads;
  if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  if (threads > 1) I.pool = std::make_unique<ThreadPool>(threads);
  const TokenGemmConfig& kernel = token_gemm_config(I.isa);
  for (const DecoderLayer& L : I.m.layers)
    I.layers.push_back({ops::DynamicQuantLinear(L.q, kernel), ops::DynamicQuantLinear(L.k, kernel),
                        ops::DynamicQuantLinear(L.v, kernel), ops::DynamicQuantLinear(L.o, kernel),
                        ops::DynamicQuantLinear(L.gate, kernel), ops::DynamicQuantLinear(L.up, kernel),
                        ops::DynamicQuantLinear(L.down, kernel)});
  if (I.m.head_quantized) I.head_q = ops::DynamicQuantLinear(I.m.head_q, kernel);
  I.rope = ops::RopeTable(I.m.context, I.m.head_size(), I.m.rope_base);
  I.cache = ops::KvCache(static_cast<int32_t>(I.m.layers.size()), I.m.context, I.m.width);
  I.reserve(1);
}

DecoderSession::~DecoderSession() = default;
DecoderSession::DecoderSession(DecoderSession&&) noexcept = default;
DecoderSession& DecoderSession::operator=(DecoderSession&&) noexcept = default;

DecoderSession DecoderSession::load(const std::string& path, DecoderOptions options) {
  return DecoderSession(load_decoder_model(path), std::move(options));
}

void DecoderSession::reset() { impl_->pos = 0; }
int64_t DecoderSession::position() const { return impl_->pos; }
const DecoderModel& DecoderSession::model() const { return impl_->m; }
Isa DecoderSession::isa() const { return impl_->isa; }
int DecoderSession::threads() const { return impl_->pool ? impl_->pool->threads() : 1; }

std::vector<std::string> DecoderSession::kernel_names() const {
  return {token_gemm_config(impl_->isa).name, "embedding: float scalar", "rmsnorm: float scalar",
          "attention (RoPE, softmax, KV cache): float scalar", "swiglu: float scalar",
          std::string("head: ") + (impl_->m.head_quantized ? "integer, as the projections" : "float scalar")};
}

std::vector<float> DecoderSession::prefill(const std::vector<int32_t>& tokens) {
  const int64_t n = static_cast<int64_t>(tokens.size());
  LOWBIT_CHECK(n >= 1 && n <= impl_->m.context, "prefill: " + std::to_string(n) + " tokens; the model takes 1 to " +
                                                    std::to_string(impl_->m.context) + " (its context)");
  reset();
  return forward(tokens.data(), n);
}

std::vector<float> DecoderSession::decode(int32_t token) {
  LOWBIT_CHECK(impl_->pos >= 1, "decode: prefill a prompt first");
  LOWBIT_CHECK(impl_->pos < impl_->m.context, "decode: the cache is full (" + std::to_string(impl_->m.context) +
                                                  " tokens, the model's context); prefill a shorter window");
  return forward(&token, 1);
}

std::vector<float> DecoderSession::forward(const int32_t* tokens, int64_t n) {
  Impl& I = *impl_;
  const DecoderModel& m = I.m;
  I.reserve(n);
  const int32_t d = m.width, hd = m.head_size();
  const int64_t pos0 = I.pos;
  ThreadPool* pool = I.pool.get();
  ops::embedding_lookup(m, tokens, n, I.x.data());
  for (size_t l = 0; l < m.layers.size(); ++l) {
    const DecoderLayer& L = m.layers[l];
    const Impl::Layer& P = I.layers[l];
    ops::rmsnorm(I.x.data(), n, d, L.norm1.data(), m.norm_eps, I.h.data());
    P.q.run(I.h.data(), n, I.q.data(), I.scratch, pool, I.min_parallel_macs);
    P.k.run(I.h.data(), n, I.k.data(), I.scratch, pool, I.min_parallel_macs);
    P.v.run(I.h.data(), n, I.v.data(), I.scratch, pool, I.min_parallel_macs);
    ops::apply_rope(I.q.data(), n, pos0, m.heads, hd, I.rope);
    ops::apply_rope(I.k.data(), n, pos0, m.heads, hd, I.rope);
    ops::causal_attention(I.q.data(), I.k.data(), I.v.data(), n, pos0, m.heads, hd,
                          I.cache.k_layer(static_cast<int32_t>(l)), I.cache.v_layer(static_cast<int32_t>(l)),
                          I.scores.data(), I.a.data());
    P.o.run(I.a.data(), n, I.h.data(), I.scratch, pool, I.min_parallel_macs);
    for (int64_t i = 0; i < n * d; ++i) I.x[static_cast<size_t>(i)] += I.h[static_cast<size_t>(i)];
    ops::rmsnorm(I.x.data(), n, d, L.norm2.data(), m.norm_eps, I.h.data());
    P.gate.run(I.h.data(), n, I.g.data(), I.scratch, pool, I.min_parallel_macs);
    P.up.run(I.h.data(), n, I.u.data(), I.scratch, pool, I.min_parallel_macs);
    ops::swiglu(I.g.data(), I.u.data(), n * m.hidden, I.s.data());
    P.down.run(I.s.data(), n, I.h.data(), I.scratch, pool, I.min_parallel_macs);
    for (int64_t i = 0; i < n * d; ++i) I.x[static_cast<size_t>(i)] += I.h[static_cast<size_t>(i)];
  }
  ops::rmsnorm(I.x.data(), n, d, m.norm_f.data(), m.norm_eps, I.h.data());
  if (m.head_quantized) {
    I.head_q.run(I.h.data(), n, I.logits.data(), I.scratch, pool, I.min_parallel_macs);
  } else {
    ops::float_linear(I.h.data(), n, m.head.data(), d, m.vocab, I.logits.data());
  }
  I.pos = pos0 + n;
  return std::vector<float>(I.logits.begin(), I.logits.begin() + n * m.vocab);
}

}  // namespace lowbit::runtime
