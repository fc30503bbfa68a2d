#include "convert/to_decoder.h"

#include "base/error.h"
#include "convert/net_access.h"
#include "qat/quantized_transformer.h"

namespace lowbit::convert {
namespace {

using net_access::floats;
using net_access::layer;
using net_access::where;

runtime::QuantLinear quantize_projection(models::Net& net, const std::string& name) {
  const auto l = layer(net, name);
  auto q = std::dynamic_pointer_cast<qat::QTokenLinearImpl>(l);
  if (!q) {
    if (std::dynamic_pointer_cast<qat::QLinearActImpl>(l))
      throw Error(where(name) + " quantizes its activations with a static quantizer; the decoder runtime takes "
                                "per-token dynamic int8 activations. Re-run `lowbit qat` on the FP32 checkpoint (it "
                                "now selects act_granularity \"token\" for gpt-tiny)");
    throw Error(where(name) + " is not quantized (quantize = false?); the decoder runtime runs quantized "
                              "projections (only the embedding and the head may stay float)");
  }
  LOWBIT_CHECK(!q->linear->bias.defined(), where(name) + ": the decoder runtime's projections have no bias");
  const torch::Tensor& weight = q->linear->weight;
  return net_access::quantize_weights(name, *q, static_cast<int32_t>(weight.size(0)), static_cast<int32_t>(weight.size(1)));
}

std::vector<float> norm_weight(models::Net& net, const std::string& name, float& eps) {
  auto n = std::dynamic_pointer_cast<models::RMSNormImpl>(layer(net, name));
  LOWBIT_CHECK(n, where(name) + " is not an RMSNorm layer");
  eps = static_cast<float>(n->eps);
  return floats(n->weight);
}

void check_float_add(models::Net& net, const std::string& name) {
  LOWBIT_CHECK(std::dynamic_pointer_cast<models::AddActImpl>(layer(net, name)),
               where(name) + " has a static activation quantizer; the decoder runtime keeps the residual stream in "
                             "float (re-run `lowbit qat`, which now uses per-token activations for gpt-tiny)");
}

}  // namespace

runtime::DecoderModel to_decoder_model(models::Net& net, const models::GptOptions& o, const std::string& description) {
  LOWBIT_CHECK(net->model_name() == "gpt-tiny",
               "convert: model '" + net->model_name() + "' is not a decoder language model (gpt-tiny)");
  o.validate();
  torch::NoGradGuard no_grad;
  net->eval();
  runtime::DecoderModel m;
  m.name = description;
  m.width = static_cast<int32_t>(o.width);
  m.heads = static_cast<int32_t>(o.heads);
  m.hidden = static_cast<int32_t>(o.hidden_size());
  m.context = static_cast<int32_t>(o.context);
  m.rope_base = o.rope_base;

  const auto embed = layer(net, "embed");
  if (auto qe = std::dynamic_pointer_cast<qat::QEmbeddingImpl>(embed)) {
    m.embedding = floats(qe->weight_quantizer->forward(qe->weight));  // s * q: exactly what the lookup reads
  } else if (auto fe = std::dynamic_pointer_cast<models::EmbeddingImpl>(embed)) {
    m.embedding = floats(fe->weight);
  } else {
    throw Error(where("embed") + " is not an embedding layer");
  }
  float eps = 0.0f;
  for (int64_t b = 0; b < o.layers; ++b) {
    const std::string p = "block" + std::to_string(b) + "_";
    runtime::DecoderLayer L;
    float e1 = 0, e2 = 0;
    L.norm1 = norm_weight(net, p + "norm1", e1);
    L.norm2 = norm_weight(net, p + "norm2", e2);
    if (b == 0) eps = e1;
    LOWBIT_CHECK(e1 == eps && e2 == eps, where(p + "norm1") + ": the runtime takes one RMSNorm epsilon for the model");
    auto attn = std::dynamic_pointer_cast<models::CausalAttentionImpl>(layer(net, p + "attn"));
    LOWBIT_CHECK(attn && attn->heads() == o.heads, where(p + "attn") + " is not attention with " +
                                                       std::to_string(o.heads) + " heads as the run config says");
    L.q = quantize_projection(net, p + "attn_q");
    L.k = quantize_projection(net, p + "attn_k");
    L.v = quantize_projection(net, p + "attn_v");
    L.o = quantize_projection(net, p + "attn_o");
    L.gate = quantize_projection(net, p + "mlp_gate");
    L.up = quantize_projection(net, p + "mlp_up");
    L.down = quantize_projection(net, p + "mlp_down");
    check_float_add(net, p + "add1");
    check_float_add(net, p + "add2");
    m.layers.push_back(std::move(L));
  }
  float ef = 0;
  m.norm_f = norm_weight(net, "norm_f", ef);
  LOWBIT_CHECK(ef == eps, where("norm_f") + ": the runtime takes one RMSNorm epsilon for the model");
  m.norm_eps = eps;
  const auto head = layer(net, "head");
  if (std::dynamic_pointer_cast<qat::QLinearActImpl>(head)) {
    m.head_quantized = true;
    m.head_q = quantize_projection(net, "head");
  } else if (auto fh = std::dynamic_pointer_cast<models::LinearActImpl>(head)) {
    LOWBIT_CHECK(!fh->linear->bias.defined(), where("head") + ": the decoder runtime's head has no bias");
    m.head = floats(fh->linear->weight);
  } else {
    throw Error(where("head") + " is not a linear layer");
  }
  runtime::validate_decoder_model(m, "convert");
  return m;
}

}  // namespace lowbit::convert
