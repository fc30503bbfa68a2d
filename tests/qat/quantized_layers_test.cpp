// QAT layers and prepare(): BN folding matches the float layer, pools stay on their input
// grid, prepare swaps by name with overrides, and a W4A4 net learns.
#include "qat/quantized_layers.h"

#include <gtest/gtest.h>

#include <string>

#include "base/error.h"
#include "quant/pointwise_function.h"
#include "quant/quantize.h"

namespace lowbit::qat {
namespace {

using models::Activation;

// conv1 (1->4, 3x3, BN, ReLU) -> maxpool -> flatten -> fc1 (64->16 ReLU) -> fc2 (16->3)
models::Net tiny_net() {
  models::Net net("tiny");
  models::ConvSpec c;
  c.in_channels = 1;
  c.out_channels = 4;
  c.kernel = 3;
  c.padding = 1;
  int v = net->add("conv1", std::make_shared<models::ConvBnActImpl>(c), {0});
  v = net->add("pool1", std::make_shared<models::MaxPoolImpl>(models::PoolSpec{}), {v});
  v = net->add("flatten", std::make_shared<models::FlattenImpl>(), {v});
  models::LinearSpec l1{64, 16, Activation::ReLU};
  v = net->add("fc1", std::make_shared<models::LinearActImpl>(l1), {v});
  models::LinearSpec l2{16, 3, Activation::None};
  net->add("fc2", std::make_shared<models::LinearActImpl>(l2), {v});
  return net;
}

// Label = which vertical third (columns 0-2, 3-5, 6-7) of an 8x8 image is brightest.
std::pair<torch::Tensor, torch::Tensor> synthetic(int64_t n, uint64_t seed) {
  torch::manual_seed(seed);
  torch::Tensor y = torch::randint(0, 3, {n}, torch::kInt64);
  torch::Tensor x = torch::rand({n, 1, 8, 8}) * 0.5;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t k = y[i].item<int64_t>();
    x[i].slice(2, k * 3, std::min<int64_t>(8, k * 3 + 3)) += 0.4;
  }
  return {x.clamp(0, 1), y};
}

double accuracy(models::Net& net, const torch::Tensor& x, const torch::Tensor& y) {
  torch::NoGradGuard g;
  net->eval();
  return net->forward(x).argmax(1).eq(y).to(torch::kFloat64).mean().item<double>();
}

TEST(QConvBnAct, FoldingMatchesFloatLayerWhenQuantizersAreOff) {
  models::ConvSpec c;
  c.in_channels = 3;
  c.out_channels = 5;
  c.padding = 1;
  auto fp = std::make_shared<models::ConvBnActImpl>(c);
  torch::manual_seed(0);
  {
    torch::NoGradGuard g;
    fp->bn->running_mean.uniform_(-0.5, 0.5);
    fp->bn->running_var.uniform_(0.5, 2.0);
    fp->bn->weight.uniform_(0.5, 1.5);
    fp->bn->bias.uniform_(-0.2, 0.2);
  }
  FakeQuantizeOptions w;
  w.spec = quant::QuantSpec::int_symmetric(8, quant::Granularity::PerChannel);
  QConvBnAct q(*fp, w, std::nullopt, /*bn_freeze_step=*/-1);
  q->weight_quantizer->set_enabled(false);
  q->weight_quantizer->set_observing(false);
  const torch::Tensor x = torch::randn({2, 3, 6, 6});
  fp->eval();
  q->eval();
  EXPECT_TRUE(torch::allclose(q->forward({x}), fp->forward({x}), 1e-5, 1e-5));  // exact folding, float rounding only
  fp->train();
  q->train();
  EXPECT_TRUE(torch::allclose(q->forward({x}), fp->forward({x}), 1e-4, 1e-5));  // batch stats, W*f/f rounding
  EXPECT_TRUE(torch::allclose(q->bn->running_mean, fp->bn->running_mean, 1e-5, 1e-6));
}

TEST(QConvBnAct, BnStatisticsFreezeAtConfiguredStep) {
  models::ConvSpec c;
  c.in_channels = 1;
  c.out_channels = 2;
  auto fp = std::make_shared<models::ConvBnActImpl>(c);
  FakeQuantizeOptions w;
  w.spec = quant::QuantSpec::int_symmetric(4, quant::Granularity::PerChannel);
  QConvBnAct q(*fp, w, std::nullopt, /*bn_freeze_step=*/2);
  q->train();
  q->forward({torch::randn({4, 1, 5, 5})});
  q->forward({torch::randn({4, 1, 5, 5})});
  EXPECT_TRUE(q->bn_frozen());
  const torch::Tensor mean = q->bn->running_mean.clone();
  q->forward({torch::randn({4, 1, 5, 5}) + 3});
  EXPECT_TRUE(torch::equal(q->bn->running_mean, mean));
}

TEST(Prepare, SwapsLayersInstallsInputQuantizerAndKeepsLogitsUnquantized) {
  models::Net net = tiny_net();
  const QatConfig cfg = QatConfig::from_json(nlohmann::json::parse(
      R"({"weight_bits": 4, "act_bits": 4, "overrides": [{"pattern": "conv1", "weight_bits": 8}]})"));
  prepare(net, cfg);
  auto in = std::dynamic_pointer_cast<QInputImpl>(net->input_layer());
  ASSERT_TRUE(in);
  EXPECT_EQ(in->quantizer->qparams().scale.item<float>(), 1.0f / 255.0f);
  EXPECT_EQ(in->quantizer->qparams().zero_point.item<int32_t>(), 0);
  auto conv1 = std::dynamic_pointer_cast<QConvBnActImpl>(net->node("conv1").layer);
  ASSERT_TRUE(conv1);
  EXPECT_EQ(conv1->weight_quantizer->options().spec.bits, 8);
  EXPECT_EQ(conv1->kind(), "conv");
  auto fc1 = std::dynamic_pointer_cast<QLinearActImpl>(net->node("fc1").layer);
  auto fc2 = std::dynamic_pointer_cast<QLinearActImpl>(net->node("fc2").layer);
  ASSERT_TRUE(fc1 && fc2);
  EXPECT_EQ(fc1->weight_quantizer->options().spec.bits, 4);
  EXPECT_TRUE(fc1->output_quantizer);
  EXPECT_FALSE(fc2->output_quantizer);  // last layer: int32 accumulators are the logits
  try {
    prepare(net, cfg);
    FAIL() << "second prepare must fail";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("already prepared"), std::string::npos);
  }
}

// The max pool after conv1 applies conv1's output quantizer after pooling. Quantization is
// monotone, so the logits must equal those of quantizing before pooling, bit for bit, in
// training and in evaluation mode.
TEST(QMaxPool, QuantizingAfterPoolingEqualsQuantizingBefore) {
  models::Net net = tiny_net();
  // Observers and BN statistics freeze after the calibration batch so that repeated forwards
  // see the same scales.
  prepare(net, QatConfig::from_json(nlohmann::json::parse(R"({"weight_bits": 4, "act_bits": 3, "freeze_steps": 1, "bn_freeze_step": 1})")));
  auto conv1 = std::dynamic_pointer_cast<QConvBnActImpl>(net->node("conv1").layer);
  ASSERT_TRUE(conv1 && std::dynamic_pointer_cast<QMaxPoolImpl>(net->node("pool1").layer));
  ASSERT_TRUE(conv1->output_quantized_downstream);
  auto [x, y] = synthetic(64, 5);
  net->train();
  net->forward(x);  // calibration: the observers set the scales
  for (bool training : {true, false}) {
    net->train(training);
    const torch::Tensor deferred = net->forward(x).detach();
    // Quantize before the pool too: the pooled values are then already on the grid, and
    // fake quantization of an on-grid value gives it back unchanged.
    conv1->output_quantized_downstream = false;
    const torch::Tensor before = net->forward(x).detach();
    conv1->output_quantized_downstream = true;
    EXPECT_TRUE(torch::equal(deferred, before)) << "training=" << training << " max diff "
                                                << (deferred - before).abs().max().item<float>();
  }
}

TEST(Prepare, ErrorsAndFloatOverrides) {
  models::Net net = tiny_net();
  try {
    prepare(net, QatConfig::from_json(nlohmann::json::parse(R"({"overrides": [{"pattern": "fc3", "weight_bits": 8}]})")));
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'fc3' matches no layer"), std::string::npos) << e.what();
  }
  models::Net net2 = tiny_net();
  prepare(net2, QatConfig::from_json(nlohmann::json::parse(R"({"overrides": [{"pattern": "fc2", "quantize": false}]})")));
  EXPECT_TRUE(std::dynamic_pointer_cast<models::LinearActImpl>(net2->node("fc2").layer));
}

TEST(QPool, GlobalAveragePoolOutputLiesOnInputGrid) {
  FakeQuantizeOptions a;
  a.spec = quant::QuantSpec::uint_asymmetric(4);
  auto producer = std::make_shared<FakeQuantizeImpl>(a);
  producer->train();
  const torch::Tensor x = producer->forward(torch::rand({2, 3, 5, 5}) * 2);
  QPool gap("gap", models::PoolSpec{}, producer);
  const torch::Tensor y = gap->forward({x});
  const auto qp = producer->qparams();
  const torch::Tensor q = y / qp.scale + qp.zero_point.to(torch::kFloat32);
  EXPECT_TRUE(torch::allclose(q, q.round(), 0, 1e-4));
  EXPECT_FALSE(torch::allclose(x.mean({2, 3}) / qp.scale, (x.mean({2, 3}) / qp.scale).round(), 0, 1e-4));
}

// The concat's output quantizer moves every code of each input onto its grid exactly as the
// integer runtime's per-input tables do (quant::make_requantize_table): one input on a finer grid,
// one on a coarser grid that saturates the output range.
TEST(QConcat, OutputCodesEqualTheRuntimesTables) {
  FakeQuantizeOptions a;
  a.spec = quant::QuantSpec::uint_asymmetric(8);
  QConcat cat(a);
  const float s_y = 0.0937f;
  const int32_t z_y = 31;
  cat->output_quantizer->set_fixed_qparams(torch::full({1}, s_y), torch::full({1}, static_cast<float>(z_y)));
  cat->eval();
  const struct { float scale; int32_t zero_point; } grids[] = {{0.05f, 10}, {0.1317f, 0}};
  std::vector<torch::Tensor> inputs;
  for (const auto& g : grids) {
    std::vector<float> x(256);
    for (int32_t q = 0; q < 256; ++q) x[static_cast<size_t>(q)] = quant::dequantize(q, g.scale, g.zero_point);
    inputs.push_back(torch::tensor(x).view({1, 256, 1, 1}));
  }
  const torch::Tensor y = cat->forward(inputs).contiguous();
  ASSERT_EQ(y.sizes(), (std::vector<int64_t>{1, 512, 1, 1}));
  const float* yp = y.data_ptr<float>();
  int moved = 0, saturated = 0;
  for (size_t k = 0; k < 2; ++k) {
    const auto table = quant::make_requantize_table(grids[k].scale, grids[k].zero_point, s_y, z_y, 0, 255);
    for (int32_t q = 0; q < 256; ++q) {
      const float v = yp[256 * k + static_cast<size_t>(q)];
      EXPECT_EQ(quant::dequantize(table[static_cast<size_t>(q)], s_y, z_y), v) << "input " << k << " code " << q;
      moved += table[static_cast<size_t>(q)] != q;
      saturated += table[static_cast<size_t>(q)] == 255;
    }
  }
  // docs/runtime.md's worked example ("Concat")
  EXPECT_EQ(quant::make_requantize_table(0.05f, 10, s_y, z_y, 0, 255)[50], 52);
  EXPECT_EQ(quant::make_requantize_table(0.1317f, 0, s_y, z_y, 0, 255)[200], 255);
  EXPECT_GT(moved, 400);      // the grids differ: nearly every code moves
  EXPECT_GT(saturated, 10);   // the coarse input exceeds the output range
}

TEST(Prepare, W4A4TinyNetTrainsBeyondItsUntrainedQuantizedAccuracy) {
  auto [x, y] = synthetic(600, 1);
  auto [xt, yt] = synthetic(300, 2);
  models::Net net = tiny_net();
  QatFlags f;
  f.wbits = 4;
  f.abits = 4;
  prepare(net, config_from_flags(f));
  {  // calibration batch: activation observers and learned scales get their first values
    torch::NoGradGuard g;
    net->train();
    net->forward(x.slice(0, 0, 100));
  }
  const double before = accuracy(net, xt, yt);
  torch::optim::AdamW opt(net->parameters(), torch::optim::AdamWOptions(3e-3).weight_decay(0));
  for (int epoch = 0; epoch < 6; ++epoch) {
    net->train();
    for (int64_t b = 0; b < 600; b += 50) {
      opt.zero_grad();
      torch::Tensor loss = torch::nll_loss(torch::log_softmax(net->forward(x.slice(0, b, b + 50)), 1), y.slice(0, b, b + 50));
      loss.backward();
      opt.step();
    }
  }
  const double after = accuracy(net, xt, yt);
  RecordProperty("accuracy_before", std::to_string(before));
  RecordProperty("accuracy_after", std::to_string(after));
  EXPECT_GT(after, before + 0.2) << "before " << before << " after " << after;
  EXPECT_GT(after, 0.8);
}

TEST(Prepare, EveryZooModelPreparesAndRuns) {
  for (const std::string& name : models::model_names()) {
    models::Net net = models::make_model(name);
    prepare(net, QatConfig::from_json(nlohmann::json::parse(R"({"weight_bits": 4, "act_bits": 8})")));
    for (const models::Node& n : net->nodes()) {
      const std::string k = n.layer->kind();
      if (k == "conv") EXPECT_TRUE(std::dynamic_pointer_cast<QConvBnActImpl>(n.layer)) << name << "/" << n.name;
      if (k == "linear") EXPECT_TRUE(std::dynamic_pointer_cast<QLinearActImpl>(n.layer)) << name << "/" << n.name;
      if (k == "add") EXPECT_TRUE(std::dynamic_pointer_cast<QAddActImpl>(n.layer)) << name << "/" << n.name;
      if (k == "gap" || k == "avgpool") EXPECT_TRUE(std::dynamic_pointer_cast<QPoolImpl>(n.layer)) << name << "/" << n.name;
    }
    torch::manual_seed(5);
    const torch::Tensor x = torch::rand({4, 1, 28, 28});
    net->train();
    net->forward(x).sum().backward();
    torch::NoGradGuard g;
    net->eval();
    const torch::Tensor y = net->forward(x);
    EXPECT_EQ(y.sizes(), (std::vector<int64_t>{4, 10})) << name;
    EXPECT_TRUE(torch::isfinite(y).all().item<bool>()) << name;
  }
}

}  // namespace
}  // namespace lowbit::qat
