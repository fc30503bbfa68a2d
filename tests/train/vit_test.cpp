// vit-tiny (models/vit.h): shapes, node names, the non-causal attention, a few training steps,
// QAT preparation and rebuilding from a config's "vit" section. Tiny sizes.
#include <gtest/gtest.h>

#include "base/error.h"
#include "models/gpt.h"
#include "models/vit.h"
#include "qat/quantized_layers.h"
#include "train/checkpoint.h"

namespace lowbit {
namespace {

// Patch 7: 4 x 4 = 16 tokens.
models::VitOptions tiny() { return {/*layers=*/2, /*width=*/16, /*heads=*/2, /*patch=*/7, /*hidden=*/0}; }

int64_t count_parameters(models::Net& net) {
  int64_t n = 0;
  for (const auto& p : net->parameters()) n += p.numel();
  return n;
}

TEST(Vit, DefaultSizeShapesAndNodeNames) {
  torch::manual_seed(0);
  models::Net net = models::make_model("vit-tiny");
  const int64_t d = 64, h = 128, tokens = 49;
  const int64_t block = 2 * 2 * d + 4 * (d * d + d) + (d * h + h) + (h * d + d);  // 2 LayerNorms, q k v o, MLP
  EXPECT_EQ(count_parameters(net), (16 * d + d) + tokens * d + 4 * block + 2 * d + (d * 10 + 10));
  const auto y = net->forward(torch::rand({3, 1, 28, 28}));
  EXPECT_EQ(y.sizes(), (std::vector<int64_t>{3, 10}));
  EXPECT_TRUE(torch::isfinite(y).all().item<bool>());
  for (const char* name : {"patch_embed", "tokens", "block3_attn_q", "block3_attn_k", "block3_attn_v", "block3_attn",
                           "block3_attn_o", "block0_mlp_fc1", "block0_mlp_fc2", "block0_add2", "pool", "norm_f", "head"}) {
    EXPECT_NO_THROW(net->node(name)) << name;
  }
  EXPECT_EQ(net->node("block0_norm1").layer->kind(), "layernorm");
  models::Net small = models::make_vit(tiny());
  EXPECT_EQ(small->forward(torch::rand({2, 1, 28, 28})).sizes(), (std::vector<int64_t>{2, 10}));
  // Tokens after the position embedding: [N, 16, 16].
  auto tokens_layer = std::dynamic_pointer_cast<models::PatchTokensImpl>(small->node("tokens").layer);
  ASSERT_TRUE(tokens_layer);
  EXPECT_EQ(tokens_layer->forward({torch::zeros({2, 16, 4, 4})}).sizes(), (std::vector<int64_t>{2, 16, 16}));
  auto bad = [](auto change) {
    models::VitOptions o = tiny();
    change(o);
    try {
      models::make_vit(o);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("<no error>");
  };
  EXPECT_NE(bad([](auto& o) { o.heads = 3; }).find("--heads"), std::string::npos);
  EXPECT_NE(bad([](auto& o) { o.patch = 5; }).find("--patch"), std::string::npos);
  EXPECT_THROW(models::VitOptions::from_json({{"context", 5}}), Error);
}

TEST(Vit, AttentionIsNonCausalWithoutRope) {
  torch::manual_seed(1);
  models::AttentionImpl vit(2, 0.0, /*causal=*/false), gpt(2, 10000.0, /*causal=*/true);
  const auto q = torch::randn({1, 5, 8}), k = torch::randn({1, 5, 8}), v = torch::randn({1, 5, 8});
  auto v2 = v.clone();
  v2.index_put_({0, 4}, v[0][4] + 1.0);  // change the last position's value only
  using torch::indexing::Slice;
  // Non-causal: position 0 sees position 4; causal: it does not.
  EXPECT_FALSE(torch::allclose(vit.forward({q, k, v}).index({0, 0}), vit.forward({q, k, v2}).index({0, 0})));
  EXPECT_TRUE(torch::allclose(gpt.forward({q, k, v}).index({0, 0}), gpt.forward({q, k, v2}).index({0, 0})));
  // Without RoPE and mask, permuting the tokens permutes the output.
  const auto perm = torch::tensor({4, 3, 2, 1, 0});
  const auto y = vit.forward({q, k, v});
  const auto yp = vit.forward({q.index_select(1, perm), k.index_select(1, perm), v.index_select(1, perm)});
  EXPECT_TRUE(torch::allclose(yp, y.index_select(1, perm), 1e-5, 1e-6));
}

TEST(Vit, AFewTrainingStepsLowerTheLoss) {
  torch::manual_seed(2);
  models::Net net = models::make_vit(tiny());
  // Two classes of images: bright top half or bright bottom half, with noise.
  const auto labels = torch::randint(0, 2, {32}, torch::kInt64);
  auto images = torch::rand({32, 1, 28, 28}) * 0.3;
  using torch::indexing::Slice;
  for (int64_t i = 0; i < 32; ++i) {
    const int64_t top = labels[i].item<int64_t>() == 0 ? 0 : 14;
    images.index({i, 0, Slice(top, top + 14)}) += 0.7;
  }
  torch::optim::AdamW opt(net->parameters(), torch::optim::AdamWOptions(3e-3));
  net->train();
  double first = 0, last = 0;
  for (int step = 0; step < 25; ++step) {
    opt.zero_grad();
    auto loss = torch::nn::functional::cross_entropy(net->forward(images), labels);
    loss.backward();
    opt.step();
    (step == 0 ? first : last) = loss.item<double>();
  }
  EXPECT_LT(last, 0.5 * first) << "first " << first << " last " << last;
}

TEST(Vit, PrepareQuantizesPatchEmbeddingProjectionsAndAdds) {
  torch::manual_seed(3);
  models::Net net = models::make_vit(tiny());
  qat::prepare(net, qat::QatConfig::from_json(nlohmann::json::parse(R"({"weight_bits": 4, "act_bits": 8})")));
  int linears = 0;
  for (const auto& n : net->nodes()) {
    const std::string k = n.layer->kind();
    if (k == "linear") {
      EXPECT_TRUE(std::dynamic_pointer_cast<qat::QLinearActImpl>(n.layer)) << n.name;
      ++linears;
    }
    if (k == "add") {
      EXPECT_TRUE(std::dynamic_pointer_cast<qat::QAddActImpl>(n.layer)) << n.name;
    }
  }
  EXPECT_EQ(linears, 2 * 6 + 1);  // q, k, v, o, fc1, fc2 per block, and the head
  EXPECT_TRUE(std::dynamic_pointer_cast<qat::QConvBnActImpl>(net->node("patch_embed").layer));
  EXPECT_TRUE(std::dynamic_pointer_cast<models::LayerNormImpl>(net->node("block0_norm1").layer));
  auto fc1 = std::dynamic_pointer_cast<qat::QLinearActImpl>(net->node("block1_mlp_fc1").layer);
  ASSERT_TRUE(fc1);
  EXPECT_EQ(fc1->spec().activation, models::Activation::GELU);
  EXPECT_TRUE(fc1->output_quantizer);  // static per-tensor quantization of the GELU output
  EXPECT_FALSE(std::dynamic_pointer_cast<qat::QLinearActImpl>(net->node("head").layer)->output_quantizer);
  net->train();
  const auto x = torch::rand({4, 1, 28, 28});
  net->forward(x).sum().backward();
  EXPECT_TRUE(fc1->linear->weight.grad().defined());
  net->eval();
  torch::NoGradGuard no_grad;
  EXPECT_EQ(net->forward(x).sizes(), (std::vector<int64_t>{4, 10}));
}

TEST(Vit, BuildNetReadsTheVitSection) {
  nlohmann::json config = {{"model", "vit-tiny"}, {"vit", tiny().to_json()}};
  models::Net net = train::build_net(config);
  EXPECT_EQ(net->model_name(), "vit-tiny");
  EXPECT_NO_THROW(net->node("block1_attn_q"));
  EXPECT_THROW(net->node("block2_attn_q"), Error);
  EXPECT_EQ(std::dynamic_pointer_cast<models::PatchTokensImpl>(net->node("tokens").layer)->position.size(0), 16);
}

}  // namespace
}  // namespace lowbit
