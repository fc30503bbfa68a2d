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

struct PreparedDecoder::Parts {
  DecoderModel m;
  Isa isa = Isa::Ref;
  struct Layer {
    ops::DynamicQuantLinear q, k, v, o, gate, up, down;
  };
  std::vector<Layer> layers;
  ops::DynamicQuantLinear head_q;
  ops::RopeTable rope;
};

PreparedDecoder::PreparedDecoder() : parts_(std::make_unique<Parts>()) {}
PreparedDecoder::~PreparedDecoder() = default;
const DecoderModel& PreparedDecoder::model() const { return parts_->m; }
Isa PreparedDecoder::isa() const { return parts_->isa; }

std::shared_ptr<const PreparedDecoder> PreparedDecoder::create(DecoderModel model, const std::string& isa) {
  validate_decoder_model(model, model.name.empty() ? "decoder model" : "decoder model '" + model.name + "'");
  std::shared_ptr<PreparedDecoder> p(new PreparedDecoder());
  Parts& P = *p->parts_;
  P.m = std::move(model);
  if (isa.empty()) {
    P.isa = select_isa();
  } else {
    P.isa = parse_isa(isa);
    require_isa(P.isa);
  }
  const TokenGemmConfig& kernel = token_gemm_config(P.isa);
  for (const DecoderLayer& L : P.m.layers)
    P.layers.push_back({ops::DynamicQuantLinear(L.q, kernel), ops::DynamicQuantLinear(L.k, kernel),
                        ops::DynamicQuantLinear(L.v, kernel), ops::DynamicQuantLinear(L.o, kernel),
                        ops::DynamicQuantLinear(L.gate, kernel), ops::DynamicQuantLinear(L.up, kernel),
                        ops::DynamicQuantLinear(L.down, kernel)});
  if (P.m.head_quantized) P.head_q = ops::DynamicQuantLinear(P.m.head_q, kernel);
  P.rope = ops::RopeTable(P.m.context, P.m.head_size(), P.m.rope_base);
  return p;
}

std::shared_ptr<const PreparedDecoder> PreparedDecoder::load(const std::string& path, const std::string& isa) {
  return create(load_decoder_model(path), isa);
}

struct DecoderSession::Impl {
  std::shared_ptr<const PreparedDecoder> prepared;  // shared with other sessions: read only
  const PreparedDecoder::Parts* P = nullptr;
  int64_t min_parallel_macs = int64_t{1} << 18;
  std::unique_ptr<ThreadPool> pool;
  ops::KvCache cache;
  int64_t pos = 0;
  // Buffers for a call of up to `rows` tokens.
  std::vector<float> x, h, q, k, v, a, g, u, s, logits, scores;
  ops::LinearScratch scratch;

  void reserve(int64_t rows) {
    const DecoderModel& m = P->m;
    const size_t d = static_cast<size_t>(rows) * m.width, hid = static_cast<size_t>(rows) * m.hidden;
    for (auto* b : {&x, &h, &q, &k, &v, &a}) b->resize(d);
    for (auto* b : {&g, &u, &s}) b->resize(hid);
    logits.resize(static_cast<size_t>(rows) * m.vocab);
    scores.resize(static_cast<size_t>(m.context));
  }
};

DecoderSession::DecoderSession(DecoderModel model, DecoderOptions options)
    : DecoderSession(PreparedDecoder::create(std::move(model), options.isa), options) {}

DecoderSession::DecoderSession(std::shared_ptr<const PreparedDecoder> model, DecoderOptions options)
    : impl_(std::make_unique<Impl>()) {
  LOWBIT_CHECK(model != nullptr, "DecoderSession: the prepared model is null");
  if (!options.isa.empty() && parse_isa(options.isa) != model->isa())
    throw Error("DecoderSession: the shared model was prepared for " + std::string(isa_name(model->isa())) +
                ", not for the requested " + options.isa + "; prepare it for that level");
  Impl& I = *impl_;
  I.prepared = std::move(model);
  I.P = I.prepared->parts_.get();
  if (options.min_parallel_macs >= 0) I.min_parallel_macs = options.min_parallel_macs;
  int threads = options.threads;
  if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  if (threads > 1) I.pool = std::make_unique<ThreadPool>(threads);
  I.cache = ops::KvCache(static_cast<int32_t>(I.P->m.layers.size()), I.P->m.context, I.P->m.width);
  I.reserve(1);
}

DecoderSession::~DecoderSession() = default;
DecoderSession::DecoderSession(DecoderSession&&) noexcept = default;
DecoderSession& DecoderSession::operator=(DecoderSession&&) noexcept = default;

DecoderSession DecoderSession::load(const std::string& path, DecoderOptions options) {
  return DecoderSession(PreparedDecoder::load(path, options.isa), options);  // a copy: argument order is unspecified
}

void DecoderSession::reset() { impl_->pos = 0; }
int64_t DecoderSession::position() const { return impl_->pos; }
const DecoderModel& DecoderSession::model() const { return impl_->P->m; }
Isa DecoderSession::isa() const { return impl_->P->isa; }
int DecoderSession::threads() const { return impl_->pool ? impl_->pool->threads() : 1; }

std::vector<std::string> DecoderSession::kernel_names() const {
  return {token_gemm_config(impl_->P->isa).name, "embedding: float scalar", "rmsnorm: float scalar",
          "attention (RoPE, softmax, KV cache): float scalar", "swiglu: float scalar",
          std::string("head: ") + (impl_->P->m.head_quantized ? "integer, as the projections" : "float scalar")};
}

std::vector<float> DecoderSession::prefill(const std::vector<int32_t>& tokens) {
  const int64_t n = static_cast<int64_t>(tokens.size());
  LOWBIT_CHECK(n >= 1 && n <= impl_->P->m.context, "prefill: " + std::to_string(n) + " tokens; the model takes 1 to " +
                                                    std::to_string(impl_->P->m.context) + " (its context)");
  reset();
  return forward(tokens.data(), n);
}

std::vector<float> DecoderSession::decode(int32_t token) {
  LOWBIT_CHECK(impl_->pos >= 1, "decode: prefill a prompt first");
  LOWBIT_CHECK(impl_->pos < impl_->P->m.context, "decode: the cache is full (" + std::to_string(impl_->P->m.context) +
                                                  " tokens, the model's context); prefill a shorter window");
  return forward(&token, 1);
}

std::vector<float> DecoderSession::forward(const int32_t* tokens, int64_t n) {
  Impl& I = *impl_;
  const PreparedDecoder::Parts& prep = *I.P;
  const DecoderModel& m = prep.m;
  I.reserve(n);
  const int32_t d = m.width, hd = m.head_size();
  const int64_t pos0 = I.pos;
  ThreadPool* pool = I.pool.get();
  ops::embedding_lookup(m, tokens, n, I.x.data());
  for (size_t l = 0; l < m.layers.size(); ++l) {
    const DecoderLayer& L = m.layers[l];
    const PreparedDecoder::Parts::Layer& P = prep.layers[l];
    ops::rmsnorm(I.x.data(), n, d, L.norm1.data(), m.norm_eps, I.h.data());
    P.q.run(I.h.data(), n, I.q.data(), I.scratch, pool, I.min_parallel_macs);
    P.k.run(I.h.data(), n, I.k.data(), I.scratch, pool, I.min_parallel_macs);
    P.v.run(I.h.data(), n, I.v.data(), I.scratch, pool, I.min_parallel_macs);
    ops::apply_rope(I.q.data(), n, pos0, m.heads, hd, prep.rope);
    ops::apply_rope(I.k.data(), n, pos0, m.heads, hd, prep.rope);
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
    prep.head_q.run(I.h.data(), n, I.logits.data(), I.scratch, pool, I.min_parallel_macs);
  } else {
    ops::float_linear(I.h.data(), n, m.head.data(), d, m.vocab, I.logits.data());
  }
  I.pos = pos0 + n;
  return std::vector<float>(I.logits.begin(), I.logits.begin() + n * m.vocab);
}

}  // namespace lowbit::runtime
