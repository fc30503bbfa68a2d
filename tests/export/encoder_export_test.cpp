// ONNX exports of vit-tiny: the float32 export of an FP32 checkpoint (export/float_export.h:
// patch embedding, position embedding, LayerNormalization, non-causal attention, Gelu, token mean)
// against LibTorch's forward, and the QDQ export of a converted encoder model
// (export/encoder_export.h) against lowbit's EncoderSession, both in ONNX Runtime (Node.js
// binding, tests/export/ort_run.js) on real Fashion-MNIST test images (random images when the
// data set is absent). Graph structure and refusals need no ONNX Runtime.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <iostream>
#include <map>

#include "base/error.h"
#include "convert/to_encoder.h"
#include "data/load_dataset.h"
#include "export/encoder_export.h"
#include "export/export_test_support.h"
#include "export/float_export.h"
#include "models/vit.h"
#include "qat/qat_config.h"
#include "qat/quantized_layers.h"
#include "runtime/encoder_model_file.h"
#include "runtime/encoder_session.h"

namespace lowbit::onnx {
namespace {

models::VitOptions small_vit() {
  models::VitOptions o;
  o.layers = 2;
  o.width = 32;
  o.heads = 2;
  o.patch = 4;
  return o;
}

struct Images {
  torch::Tensor x, y;
  bool real = true;
};

const Images& images() {
  static const Images im = [] {
    Images r;
    try {
      data::Dataset d = data::load_dataset(data::resolve_data_dir(""), "test");
      r.x = d.images.narrow(0, 0, 512).to(torch::kFloat32).contiguous();
      r.y = d.labels.narrow(0, 0, 512);
    } catch (const Error&) {
      torch::manual_seed(5);
      r.x = torch::rand({512, 1, 28, 28});
      r.y = torch::randint(0, 10, {512}, torch::kLong);
      r.real = false;
    }
    return r;
  }();
  return im;
}

// vit-tiny (QAT-prepared by `flags` unless null), trained `steps` AdamW steps on images 256..511.
models::Net trained_vit(const qat::QatFlags* flags, int steps) {
  torch::manual_seed(1);
  models::Net net = models::make_vit(small_vit());
  if (flags) qat::prepare(net, qat::config_from_flags(*flags));
  net->train();
  torch::optim::AdamW opt(net->parameters(), torch::optim::AdamWOptions(2e-3).weight_decay(0.0));
  const Images& im = images();
  for (int s = 0; s < steps; ++s) {
    const int64_t b0 = 256 + (s * 32) % 224;
    const torch::Tensor loss = torch::nn::functional::cross_entropy(net->forward(im.x.narrow(0, b0, 32)), im.y.narrow(0, b0, 32));
    opt.zero_grad();
    loss.backward();
    opt.step();
  }
  net->eval();
  return net;
}

std::map<std::string, int> op_counts(const Model& model) {
  std::map<std::string, int> c;
  for (const Node& n : model.graph.nodes) ++c[n.op_type];
  return c;
}

struct Agreement {
  int64_t equal = 0, count = 0;
  double max_diff = 0, mean_diff = 0, max_logit = 0;
  double rel() const { return max_diff / (1.0 + max_logit); }
};

Agreement compare(const torch::Tensor& want, const torch::Tensor& got) {
  Agreement a;
  a.count = want.size(0);
  const torch::Tensor d = (want - got).abs();
  a.max_diff = d.max().item<double>();
  a.mean_diff = d.mean().item<double>();
  a.max_logit = want.abs().max().item<double>();
  a.equal = (want.argmax(1) == got.argmax(1)).sum().item<int64_t>();
  return a;
}

// ---- Float32 ----------------------------------------------------------------------------------

TEST(EncoderExportFloat, VitGraphUsesStandardTransformerOps) {
  torch::manual_seed(2);
  models::Net net = models::make_vit(small_vit());
  const Model model = float_model(net);
  const auto c = op_counts(model);
  EXPECT_EQ(c.at("LayerNormalization"), 2 * 2 + 1);
  EXPECT_EQ(c.at("Softmax"), 2);
  EXPECT_EQ(c.at("Gelu"), 2);
  EXPECT_EQ(c.at("Conv"), 1);         // the patch embedding
  EXPECT_EQ(c.at("ReduceMean"), 1);   // token mean
  EXPECT_EQ(c.at("Gemm"), 1);         // the head on [N, d]
  EXPECT_EQ(c.at("MatMul"), 6 * 2 + 2 * 2);  // q, k, v, o, fc1, fc2 and the two attention products
  EXPECT_EQ(c.count("Clip"), 0u);     // GELU is not exported as ReLU6 (an earlier mistake)
  EXPECT_EQ(model.graph.outputs[0].name, "logits");
  EXPECT_GT(serialize(model).size(), 0u);
  // Below opset 17 there is no LayerNormalization: refused naming the layer.
  try {
    float_model(net, 16);
    ADD_FAILURE() << "opset 16 accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("block0_norm1"), std::string::npos) << e.what();
  }
}

TEST(EncoderExportFloatOrt, Fp32VitLogitsEqualLibTorch) {
  LOWBIT_SKIP_WITHOUT_ORT();
  models::Net net = trained_vit(nullptr, 40);
  const std::string dir = testing::fresh_test_dir();
  save(float_model(net), dir + "/vit.onnx");
  const torch::Tensor x = images().x.narrow(0, 0, 256);
  torch::Tensor want;
  {
    torch::NoGradGuard no_grad;
    want = net->forward(x).contiguous();
  }
  const torch::Tensor got = testing::run_ort(dir + "/vit.onnx", x, dir);
  ASSERT_TRUE(got.defined());
  const Agreement a = compare(want, got);
  std::cout << "[ info ] FP32 vit-tiny, 256 " << (images().real ? "test" : "random") << " images: max |logit diff| ONNX Runtime vs LibTorch "
            << a.max_diff << " (relative " << a.rel() << "), mean " << a.mean_diff << ", same prediction " << a.equal << "/256\n";
  // Float only (summation order, ONNX Runtime's LayerNorm / softmax / erf kernels): ~1e-6 relative.
  EXPECT_LT(a.rel(), 1e-4);
  EXPECT_EQ(a.equal, 256);
}

// ---- QDQ of the encoder .lbq ------------------------------------------------------------------

runtime::EncoderModel converted(const qat::QatFlags& f, const std::string& what) {
  models::Net net = trained_vit(&f, 40);
  const runtime::EncoderModel m = convert::to_encoder_model(net, small_vit(), what);
  return runtime::parse_encoder_model(runtime::serialize_encoder_model(m), what);  // through the file format
}

qat::QatFlags flags(int wbits, int abits, int group_size = 0, const std::string& format = "int") {
  qat::QatFlags f;
  f.wbits = wbits;
  f.abits = abits;
  f.weight_format = format;
  if (group_size > 0) {
    f.granularity = "group";
    f.group_size = group_size;
  }
  return f;
}

TEST(EncoderExportQdq, GraphHoldsTheRuntimeNumbers) {
  const runtime::EncoderModel m = converted(flags(8, 8), "w8a8");
  const Model model = encoder_qdq_model(m);
  const auto c = op_counts(model);
  const int L = static_cast<int>(m.layers.size());
  // One QuantizeLinear per static grid: the input, every linear's output grid (patch embedding,
  // q, k, v, o, fc1, fc2 per layer), the two residual adds per layer.
  EXPECT_EQ(c.at("QuantizeLinear"), 1 + 1 + 6 * L + 2 * L);
  EXPECT_EQ(c.at("LayerNormalization"), 2 * L + 1);
  EXPECT_EQ(c.at("Gelu"), L);
  EXPECT_EQ(c.at("Softmax"), L);
  EXPECT_EQ(c.count("Round"), 0u);
  for (const Node& n : model.graph.nodes) EXPECT_TRUE(n.domain.empty()) << n.name;
  // The patch embedding's weights: 8-bit codes beyond +-64 as UINT8 + 128 (zero point 128), the
  // runtime's values in [1, in, out] order, per-channel scales on axis 2.
  const Tensor* w = model.graph.initializer("patch_embed.weight_q");
  ASSERT_NE(w, nullptr);
  const std::vector<int8_t> v = m.patch_embed.w.values();
  int32_t widest = 0;
  for (int8_t x : v) widest = std::max(widest, std::abs(static_cast<int32_t>(x)));
  EXPECT_EQ(w->type, widest > 64 ? DataType::Uint8 : DataType::Int8);
  EXPECT_EQ(w->dims, (std::vector<int64_t>{m.patch_features(), m.width}));  // 8-bit per-channel: [in, out]
  const int32_t k = 5, o = 3;  // element [k, o] = value[o, k]
  const int32_t stored = w->type == DataType::Uint8 ? static_cast<uint8_t>(w->raw[static_cast<size_t>(k) * m.width + o]) - 128
                                                    : static_cast<int8_t>(w->raw[static_cast<size_t>(k) * m.width + o]);
  EXPECT_EQ(stored, v[static_cast<size_t>(o) * m.patch_features() + k]);
  // The input grid: scale 1/255, zero point 0.
  const Tensor* s = model.graph.initializer("input.scale");
  ASSERT_NE(s, nullptr);
  float scale = 0;
  std::memcpy(&scale, s->raw.data(), 4);
  EXPECT_EQ(scale, m.input_grid.scale);
  EXPECT_GT(serialize(model).size(), 0u);

  // 4-bit activations: a Clip onto the code range before each QuantizeLinear of a narrower grid.
  const Model a4 = encoder_qdq_model(converted(flags(4, 4), "w4a4"));
  EXPECT_GE(op_counts(a4).at("Clip"), 1 + 6 * L);
  EXPECT_EQ(a4.graph.initializer("block0_mlp_fc2.weight_q")->type, DataType::Int4);
  EXPECT_EQ(a4.graph.initializer("block0_mlp_fc2.weight_q")->dims.size(), 3u);  // [1, in, out]: no MatMulNBits fusion
}

TEST(EncoderExportQdq, RefusesAnInvalidModelNamingTheLayer) {
  runtime::EncoderModel m = converted(flags(8, 8), "w8a8");
  m.layers[1].fc2.input_grid.scale = 0.5f;  // no longer fc1's output grid
  try {
    encoder_qdq_model(m, "'vit.lbq'");
    ADD_FAILURE() << "accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'vit.lbq'"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("fc2"), std::string::npos) << e.what();
  }
}

// ONNX Runtime on the QDQ export against EncoderSession (ref level) on 256 images. Bounds as
// tests/qat/vit_runtime_test.cpp's for the same mechanism (float summation order moving a value
// across a rounding boundary of a static grid: one code step, carried to the logits): mean
// |diff| <= 1e-3 of (1 + max |logit|), max <= 5%, >= 253/256 equal predictions. A layout, scale or
// grid mistake moves logits by O(1).
void check_qdq(const qat::QatFlags& f, const std::string& what) {
  LOWBIT_SKIP_WITHOUT_ORT();
  const runtime::EncoderModel m = converted(f, what);
  const std::string dir = testing::fresh_test_dir();
  save(encoder_qdq_model(m), dir + "/vit_qdq.onnx");
  const torch::Tensor x = images().x.narrow(0, 0, 256).contiguous();
  runtime::EncoderOptions ro;
  ro.isa = "ref";
  runtime::EncoderSession session(m, ro);
  const std::vector<float> r = session.run(x.data_ptr<float>(), 256);
  const torch::Tensor want = torch::from_blob(const_cast<float*>(r.data()), {256, m.classes}, torch::kFloat32).clone();
  const torch::Tensor got = testing::run_ort(dir + "/vit_qdq.onnx", x, dir);
  ASSERT_TRUE(got.defined());
  const Agreement a = compare(want, got);
  std::cout << "[ info ] " << what << " QDQ, 256 " << (images().real ? "test" : "random") << " images: max |logit diff| ONNX Runtime vs EncoderSession "
            << a.max_diff << " (max |logit| " << a.max_logit << ", relative " << a.rel() << "), mean " << a.mean_diff
            << ", same prediction " << a.equal << "/256\n";
  EXPECT_LE(a.mean_diff, 1e-3 * (1.0 + a.max_logit)) << what;
  EXPECT_LE(a.rel(), 0.05) << what;
  EXPECT_GE(a.equal, 253) << what;
}

TEST(EncoderExportQdqOrt, W8A8MatchesTheRuntime) { check_qdq(flags(8, 8), "W8A8"); }
TEST(EncoderExportQdqOrt, W4A4MatchesTheRuntime) { check_qdq(flags(4, 4), "W4A4"); }
TEST(EncoderExportQdqOrt, W4Group16A8MatchesTheRuntime) { check_qdq(flags(4, 8, 16), "W4 group16 A8"); }
TEST(EncoderExportQdqOrt, TernaryA8MatchesTheRuntime) { check_qdq(flags(2, 8, 0, "ternary"), "ternary A8"); }

}  // namespace
}  // namespace lowbit::onnx
