// What the transformer converters (to_decoder.cpp, to_encoder.cpp) read from a LibTorch net:
// a node's layer, a tensor's values, and a quantized layer's weights as the runtime's integer
// codes and scales (convert-internal). Errors name the node ("convert: node 'block0_attn_q'").
#pragma once
#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "base/error.h"
#include "models/net.h"
#include "qat/weight_quantized_layer.h"
#include "quant/quantize.h"
#include "runtime/decoder_model.h"  // QuantLinear, set_quant_linear

namespace lowbit::convert::net_access {

inline std::string where(const std::string& node) { return "convert: node '" + node + "'"; }

inline std::vector<float> floats(const torch::Tensor& t) {
  const torch::Tensor c = t.detach().contiguous().to(torch::kFloat32);
  return std::vector<float>(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
}

inline std::shared_ptr<models::LayerImpl> layer(models::Net& net, const std::string& name) {
  return net->node(name).layer;
}

// The packed width the runtime stores `bits`-bit codes in (1, 2, 4 or 8).
inline int32_t container_bits(int bits) { return bits <= 1 ? 1 : bits <= 2 ? 2 : bits <= 4 ? 4 : 8; }

// The weights of a quantized layer, [out, in] after flattening, as its fake quantization sees them
// (its scales refreshed from the current weights first, as the eval forward does): symmetric,
// per-tensor, per-channel on axis 0 or per-group along a row.
inline runtime::QuantLinear quantize_weights(const std::string& name, qat::WeightQuantizedLayer& q, int32_t out,
                                             int32_t in) {
  using quant::Granularity;
  qat::FakeQuantizeImpl& fq = q.weight_fake_quant();
  const quant::QuantSpec& spec = fq.options().spec;
  LOWBIT_CHECK(spec.symmetric, where(name) + ": the runtime needs symmetric weights (zero point 0), got '" +
                                   spec.describe() + "'");
  LOWBIT_CHECK(spec.granularity != Granularity::PerChannel || spec.axis == 0,
               where(name) + ": per-channel weight scales must be on axis 0 (output rows)");
  const torch::Tensor weight = q.quantizer_input();
  {
    torch::NoGradGuard no_grad;  // refresh observed scales from the current weights, as the eval forward does
    fq.forward(weight);
  }
  const torch::Tensor scale = fq.qparams().scale.contiguous().to(torch::kFloat32);
  const std::vector<float> w = floats(weight);
  LOWBIT_CHECK(static_cast<int64_t>(w.size()) == int64_t{out} * in, where(name) + ": weight has " +
                                                                       std::to_string(w.size()) + " values, expected " +
                                                                       std::to_string(int64_t{out} * in));
  const int32_t group = spec.granularity == Granularity::PerGroup ? std::min(spec.group_size, in) : in;
  const int32_t groups = (in + group - 1) / group;
  const std::vector<int64_t> shape(weight.sizes().begin(), weight.sizes().end());
  const float* sp = scale.data_ptr<float>();
  std::vector<float> scales(static_cast<size_t>(out) * groups, -1.0f);
  std::vector<int32_t> values(w.size());
  const quant::GridParams g = quant::GridParams::of(spec);
  for (int32_t o = 0; o < out; ++o)
    for (int32_t k = 0; k < in; ++k) {
      const int64_t flat = int64_t{o} * in + k;
      const int64_t qi = quant::qparam_index(spec, shape, flat);
      LOWBIT_CHECK(qi >= 0 && qi < scale.numel(), where(name) + ": weight quantizer has too few scales");
      const float s = sp[qi];
      float& slot = scales[static_cast<size_t>(o) * groups + k / group];
      LOWBIT_CHECK(slot < 0.0f || slot == s, where(name) + ": weight scales do not follow groups of " +
                                                std::to_string(group) + " inputs of a row");
      slot = s;
      values[static_cast<size_t>(flat)] = quant::quantize(w[static_cast<size_t>(flat)], s, 0, g);
    }
  runtime::QuantLinear r;
  runtime::set_quant_linear(r, in, out, group, container_bits(spec.bits), spec.grid, values, std::move(scales));
  return r;
}

}  // namespace lowbit::convert::net_access
