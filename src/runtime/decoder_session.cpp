#include "runtime/decoder_session.h"

#include <cstring>
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
  // q, k and v are one op (one quantization of their common input, one parallel loop), and so
  // are gate and up, when their groups agree (they always do in converted models).
  struct Layer {
    bool fused_qkv = false, fused_gate_up = false;
    ops::DynamicQuantLinear qkv, gate_up;  // when fused
    ops::DynamicQuantLinear q, k, v, o, gate, up, down;
  };
  std::vector<Layer> layers;
  ops::DynamicQuantLinear head_q;
  ops::FloatHead head;
  ops::RopeTable rope;
  const DecoderFloatKernels* fk = nullptr;
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
  P.fk = &decoder_float_kernels(P.isa);
  for (const DecoderLayer& L : P.m.layers) {
    Parts::Layer R;
    R.fused_qkv = L.q.group_size == L.k.group_size && L.q.group_size == L.v.group_size;
    if (R.fused_qkv) {
      R.qkv = ops::DynamicQuantLinear({&L.q, &L.k, &L.v}, kernel);
    } else {
      R.q = ops::DynamicQuantLinear(L.q, kernel);
      R.k = ops::DynamicQuantLinear(L.k, kernel);
      R.v = ops::DynamicQuantLinear(L.v, kernel);
    }
    R.fused_gate_up = L.gate.group_size == L.up.group_size;
    if (R.fused_gate_up) {
      R.gate_up = ops::DynamicQuantLinear({&L.gate, &L.up}, kernel);
    } else {
      R.gate = ops::DynamicQuantLinear(L.gate, kernel);
      R.up = ops::DynamicQuantLinear(L.up, kernel);
    }
    R.o = ops::DynamicQuantLinear(L.o, kernel);
    R.down = ops::DynamicQuantLinear(L.down, kernel);
    P.layers.push_back(std::move(R));
  }
  if (P.m.head_quantized) {
    P.head_q = ops::DynamicQuantLinear(P.m.head_q, kernel);
  } else {
    P.head = ops::FloatHead(P.m.head, P.m.width, P.m.vocab, *P.fk);
  }
  P.rope = ops::RopeTable(P.m.context, P.m.head_size(), P.m.rope_base);
  return p;
}

std::shared_ptr<const PreparedDecoder> PreparedDecoder::load(const std::string& path, const std::string& isa) {
  return create(load_decoder_model(path), isa);
}

struct DecoderSession::Impl {
  std::shared_ptr<const PreparedDecoder> prepared;  // shared with other sessions: read only
  const PreparedDecoder::Parts* P = nullptr;
  int64_t min_parallel_macs = int64_t{1} << 23;
  std::unique_ptr<ThreadPool> pool;
  ops::KvCache cache;
  int64_t pos = 0;
  // Buffers for a call of up to `rows` tokens.
  std::vector<float> x, h, q, k, v, a, g, u, s, qkv, gu, logits, scores;
  ops::LinearScratch scratch;

  void reserve(int64_t rows) {
    const DecoderModel& m = P->m;
    const size_t d = static_cast<size_t>(rows) * m.width, hid = static_cast<size_t>(rows) * m.hidden;
    for (auto* b : {&x, &h, &q, &k, &v, &a}) b->resize(d);
    for (auto* b : {&g, &u, &s}) b->resize(hid);
    qkv.resize(3 * d);
    gu.resize(2 * hid);
    logits.resize(static_cast<size_t>(rows) * m.vocab);
    scores.resize(static_cast<size_t>(m.context) * (pool ? pool->threads() : 1));
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
  const TokenGemmConfig& g = token_gemm_config(impl_->P->isa);
  const DecoderFloatKernels& f = *impl_->P->fk;
  return {g.name,
          std::string("projection epilogue: ") + g.epilogue_name,
          std::string("per-token quantization: ") + g.quantize_name,
          "embedding: float copy",
          std::string("rmsnorm: ") + f.rmsnorm.name,
          std::string("rope: ") + f.rope.name,
          std::string("attention (softmax, KV cache): ") + f.attention_row.name,
          std::string("swiglu: ") + f.swiglu.name,
          std::string("head: ") + (impl_->P->m.head_quantized ? "integer, as the projections" : f.linear.name)};
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
  const DecoderFloatKernels& fk = *prep.fk;
  const int64_t mp = I.min_parallel_macs;
  // Columns [c0, c0 + w) of y [n, cols] to out [n, w].
  auto columns = [n](const float* y, int64_t cols, int64_t c0, int64_t w, float* out) {
    for (int64_t t = 0; t < n; ++t) std::memcpy(out + t * w, y + t * cols + c0, static_cast<size_t>(w) * sizeof(float));
  };
  for (size_t l = 0; l < m.layers.size(); ++l) {
    const DecoderLayer& L = m.layers[l];
    const PreparedDecoder::Parts::Layer& P = prep.layers[l];
    fk.rmsnorm.fn(I.x.data(), n, d, L.norm1.data(), m.norm_eps, I.h.data());
    if (P.fused_qkv) {
      P.qkv.run(I.h.data(), n, I.qkv.data(), I.scratch, pool, mp);
      columns(I.qkv.data(), 3 * d, 0, d, I.q.data());
      columns(I.qkv.data(), 3 * d, d, d, I.k.data());
      columns(I.qkv.data(), 3 * d, 2 * d, d, I.v.data());
    } else {
      P.q.run(I.h.data(), n, I.q.data(), I.scratch, pool, mp);
      P.k.run(I.h.data(), n, I.k.data(), I.scratch, pool, mp);
      P.v.run(I.h.data(), n, I.v.data(), I.scratch, pool, mp);
    }
    fk.rope.fn(I.q.data(), n, pos0, m.heads, hd, prep.rope.cos.data(), prep.rope.sin.data(), prep.rope.half);
    fk.rope.fn(I.k.data(), n, pos0, m.heads, hd, prep.rope.cos.data(), prep.rope.sin.data(), prep.rope.half);
    const int32_t li = static_cast<int32_t>(l);
    ops::causal_attention(I.q.data(), I.k.data(), I.v.data(), n, pos0, m.heads, hd, I.cache.k_layer(li),
                          I.cache.v_layer(li), I.cache.kt_layer(li), m.context, I.scores.data(), I.a.data(), fk, pool, mp);
    P.o.run(I.a.data(), n, I.h.data(), I.scratch, pool, mp);
    for (int64_t i = 0; i < n * d; ++i) I.x[static_cast<size_t>(i)] += I.h[static_cast<size_t>(i)];
    fk.rmsnorm.fn(I.x.data(), n, d, L.norm2.data(), m.norm_eps, I.h.data());
    if (P.fused_gate_up) {
      P.gate_up.run(I.h.data(), n, I.gu.data(), I.scratch, pool, mp);
      columns(I.gu.data(), 2 * int64_t{m.hidden}, 0, m.hidden, I.g.data());
      columns(I.gu.data(), 2 * int64_t{m.hidden}, m.hidden, m.hidden, I.u.data());
    } else {
      P.gate.run(I.h.data(), n, I.g.data(), I.scratch, pool, mp);
      P.up.run(I.h.data(), n, I.u.data(), I.scratch, pool, mp);
    }
    fk.swiglu.fn(I.g.data(), I.u.data(), n * m.hidden, I.s.data());
    P.down.run(I.s.data(), n, I.h.data(), I.scratch, pool, mp);
    for (int64_t i = 0; i < n * d; ++i) I.x[static_cast<size_t>(i)] += I.h[static_cast<size_t>(i)];
  }
  fk.rmsnorm.fn(I.x.data(), n, d, m.norm_f.data(), m.norm_eps, I.h.data());
  if (m.head_quantized) {
    prep.head_q.run(I.h.data(), n, I.logits.data(), I.scratch, pool, mp);
  } else {
    prep.head.run(I.h.data(), n, I.logits.data(), pool, mp);
  }
  I.pos = pos0 + n;
  return std::vector<float>(I.logits.begin(), I.logits.begin() + n * m.vocab);
}

}  // namespace lowbit::runtime
