// Conversion to the integer runtime: the runtime's integer logits equal the LibTorch integer
// simulation (the QAT model's convert mode) bit for bit, for every zoo model and weight format.
#include <gtest/gtest.h>

#include "base/error.h"
#include "convert/drift.h"
#include "convert/integer_simulation.h"
#include "convert/to_runtime.h"
#include "import/imported_test_nets.h"
#include "models/imported_net.h"
#include "qat/quantized_layers.h"
#include "runtime/cpu_features.h"
#include "runtime/session.h"

namespace lowbit::convert {
namespace {

models::Net calibrated(const std::string& model, const std::string& config_json, uint64_t seed = 1) {
  torch::manual_seed(seed);
  models::Net net = models::make_model(model);
  qat::prepare(net, qat::QatConfig::from_json(nlohmann::json::parse(config_json)));
  net->train();
  torch::NoGradGuard no_grad;
  for (int i = 0; i < 3; ++i) net->forward(torch::rand({8, 1, 28, 28}));  // observers and scales settle
  net->eval();
  return net;
}

void expect_runtime_equals_simulation(const runtime::Model& m, const std::string& what) {
  torch::manual_seed(7);
  const torch::Tensor images = torch::rand({6, 1, 28, 28});
  const IntegerOutputs sim = simulate_integer(m, images);
  // "" = the level the runtime picks by default (or LOWBIT_ISA), then every level forced.
  std::vector<std::string> isas{""};
  for (const std::string isa : {"ref", "avx2", "avx512vnni"})
    if (runtime::cpu_supports(runtime::parse_isa(isa))) isas.push_back(isa);
  for (const std::string& isa : isas) {
    runtime::SessionOptions o;
    o.isa = isa;
    o.threads = 2;
    runtime::Session session(m, o);
    const torch::Tensor x = images.contiguous();
    const runtime::RunResult r = session.run(x.data_ptr<float>(), x.size(0));
    const torch::Tensor sim_logits = sim.int_logits.contiguous();
    ASSERT_EQ(static_cast<int64_t>(r.int_logits.size()), sim_logits.numel()) << what;
    for (int64_t i = 0; i < sim_logits.numel(); ++i)
      ASSERT_EQ(r.int_logits[static_cast<size_t>(i)], sim_logits.data_ptr<int64_t>()[i]) << what << " isa " << isa << " at " << i;
    for (int64_t i = 0; i < x.size(0); ++i) ASSERT_EQ(r.argmax[static_cast<size_t>(i)], sim.predictions[i].item<int64_t>());
  }
}

TEST(Convert, RuntimeEqualsIntegerSimulationForEveryModelAndFormat) {
  const std::vector<std::string> configs{
      R"({"weight_bits": 8, "act_bits": 8})",
      R"({"weight_bits": 4, "act_bits": 4})",
      R"({"weight_bits": 3, "act_bits": 8, "weight_estimator": "ste"})",
      R"({"weight_format": "ternary", "act_bits": 8})",
      R"({"weight_format": "seq2", "act_bits": 4})",
      R"({"weight_format": "binary", "act_bits": 8})",
  };
  for (const std::string& model : models::model_names())
    for (const std::string& config : configs) {
      models::Net net = calibrated(model, config);
      const runtime::Model m = to_runtime_model(net);
      expect_runtime_equals_simulation(m, model + " " + config);
    }
}

// Fake quantization (float) and the integer path differ only by requantization rounding: on an
// 8-bit model the float logits agree closely.
TEST(Convert, IntegerSimulationTracksFakeQuantization) {
  models::Net net = calibrated("cnn", R"({"weight_bits": 8, "act_bits": 8})");
  const runtime::Model m = to_runtime_model(net);
  torch::manual_seed(3);
  const torch::Tensor images = torch::rand({16, 1, 28, 28});
  torch::NoGradGuard no_grad;
  const torch::Tensor fq = net->forward(images);
  const IntegerOutputs sim = simulate_integer(m, images);
  const double spread = (fq.max() - fq.min()).item<double>();
  EXPECT_LT((sim.logits - fq).abs().max().item<double>(), 0.05 * spread);
}

// The drift report compares fake quantization and the integer model value by value. On an 8-bit
// model they differ in few codes, by a step; a fault planted in one op's requantization (its
// multiplier doubled) shows at that op and not before it.
TEST(Convert, DriftLocatesTheLayerWhereTheIntegerModelDeparts) {
  models::Net net = calibrated("cnn", R"({"weight_bits": 8, "act_bits": 8})");
  runtime::Model m = to_runtime_model(net);
  torch::manual_seed(5);
  data::Dataset d;
  d.images = torch::rand({12, 1, 28, 28});
  d.labels = torch::zeros({12}, torch::kInt64);
  const DriftReport r = measure_drift(net, m, d, 5);  // chunks of 5, 5, 2
  ASSERT_EQ(r.count, 12);
  ASSERT_EQ(r.values.size(), m.ops.size());  // input + every op but the output layer
  EXPECT_EQ(r.values[0].name, "input");
  EXPECT_EQ(r.values[0].elements, 12 * 28 * 28);
  EXPECT_EQ(r.values[0].differing, 0);  // one input quantization, the same function on both paths
  EXPECT_EQ(r.output_name, "fc2");
  for (const ValueDrift& v : r.values) {
    EXPECT_LT(v.differing_share(), 0.02) << v.name;
    EXPECT_LE(v.max_steps, 2) << v.name;
  }
  EXPECT_GT(r.logit_range, 0.0);
  EXPECT_LT(r.max_logit_difference, 0.05 * r.logit_range);

  size_t conv2 = 0;
  while (net->nodes()[conv2].name != "conv2") ++conv2;
  for (quant::FixedPointMultiplier& mult : m.ops[conv2].multipliers) mult.shift -= 1;  // x2
  const DriftReport broken = measure_drift(net, m, d, 5);
  for (size_t v = 0; v <= conv2; ++v) EXPECT_EQ(broken.values[v].differing, r.values[v].differing) << broken.values[v].name;
  EXPECT_EQ(broken.values[conv2 + 1].name, "conv2");
  EXPECT_GT(broken.values[conv2 + 1].differing_share(), 0.1);
  EXPECT_GT(broken.values[conv2 + 1].max_steps, 2);
}

// At 4 bits one accumulator unit s_x * s_w can be a tenth of an output step, so a float bias
// in fake quantization would move about one output code in ten from the integer model's. QAT
// adds the bias the integer model adds (quant/bias_quantize.h): the first layers, whose inputs
// agree exactly, then differ only where float and integer arithmetic round a tie apart.
TEST(Convert, FakeQuantizationAddsTheIntegerModelsBias) {
  for (const std::string model : {"cnn", "mobilenet-tiny"}) {
    torch::manual_seed(2);
    models::Net net = models::make_model(model);
    {
      torch::NoGradGuard no_grad;  // biases of a trained model's size (fresh ones are ~0)
      for (auto& p : net->named_parameters())
        if (p.key().find("bias") != std::string::npos) p.value().uniform_(-0.5, 0.5);
    }
    qat::prepare(net, qat::QatConfig::from_json(nlohmann::json::parse(R"({"weight_bits": 4, "act_bits": 4})")));
    net->train();
    {
      torch::NoGradGuard no_grad;
      for (int i = 0; i < 3; ++i) net->forward(torch::rand({8, 1, 28, 28}));
    }
    net->eval();
    const runtime::Model m = to_runtime_model(net);
    torch::manual_seed(11);
    data::Dataset d;
    d.images = torch::rand({12, 1, 28, 28});
    d.labels = torch::zeros({12}, torch::kInt64);
    const DriftReport r = measure_drift(net, m, d, 12);
    ASSERT_GT(r.values[1].elements, 100000) << model;
    EXPECT_EQ(r.values[0].differing, 0) << model;
    EXPECT_LE(r.values[1].differing, 3) << model << " " << r.values[1].name;
    for (const ValueDrift& v : r.values) EXPECT_LT(v.differing_share(), 0.005) << model << " " << v.name;
    EXPECT_EQ(r.predictions_equal, 12) << model;
  }
}

// A channel whose batch norm scale is ~zero has ~zero folded weights and a tiny weight scale;
// conversion must keep its bias representable instead of overflowing the accumulator.
TEST(Convert, DeadChannelDoesNotOverflow) {
  models::Net net = calibrated("cnn", R"({"weight_bits": 8, "act_bits": 8})");
  auto conv2 = std::dynamic_pointer_cast<qat::QConvBnActImpl>(net->node("conv2").layer);
  ASSERT_TRUE(conv2);
  {
    torch::NoGradGuard no_grad;
    conv2->bn->weight[5] = 1e-9f;  // tiny, not zero: a zero range would get scale 1
    conv2->bn->bias[5] = 0.7f;
  }
  const runtime::Model m = to_runtime_model(net);
  for (int32_t b : m.ops[2].bias_q) EXPECT_LE(std::abs(static_cast<int64_t>(b)), int64_t{1} << 30);
  expect_runtime_equals_simulation(m, "dead channel");
}

// Dilated convolutions (dense dilation 2, depthwise dilation 3 with stride 2, grouped dilation 2;
// each padded) through QAT prepare -> convert: the runtime's integer logits equal the integer
// simulation's at every kernel level, and the runtime ops carry the dilations.
TEST(Convert, DilatedConvsRuntimeEqualsIntegerSimulation) {
  const import::ImportedModel im = import::test_nets::dilated_convs();
  // The structure survives a run's JSON config with its dilations.
  const import::ImportedModel back = import::structure_from_json(import::structure_to_json(im));
  ASSERT_EQ(back.layers.size(), im.layers.size());
  EXPECT_EQ(back.layers[0].dilation, 2);
  EXPECT_EQ(back.layers[1].dilation, 3);
  EXPECT_EQ(back.layers[3].dilation, 1);

  for (const std::string config : {R"({"weight_bits": 8, "act_bits": 8})", R"({"weight_bits": 4, "act_bits": 4})",
                                   R"({"weight_format": "ternary", "act_bits": 8})"}) {
    torch::manual_seed(3);
    models::Net net = models::make_imported_net(back);
    torch::NoGradGuard no_grad;
    EXPECT_EQ(net->forward(torch::rand({2, 1, 28, 28})).sizes().vec(), (std::vector<int64_t>{2, 10}));
    qat::prepare(net, qat::QatConfig::from_json(nlohmann::json::parse(config)));
    net->train();
    for (int i = 0; i < 3; ++i) net->forward(torch::rand({8, 1, 28, 28}));
    net->eval();
    const runtime::Model m = to_runtime_model(net);
    ASSERT_GE(m.ops.size(), 3u);
    EXPECT_EQ(m.ops[0].dilation_h, 2);
    EXPECT_EQ(m.ops[1].dilation_w, 3);
    EXPECT_EQ(m.ops[1].groups, 8);
    EXPECT_EQ(m.ops[2].dilation_h, 2);
    expect_runtime_equals_simulation(m, std::string("dilated ") + config);
    if (HasFatalFailure()) return;
  }
}

TEST(Convert, ClearErrors) {
  models::Net fp = models::make_model("cnn");
  try {
    to_runtime_model(fp);
    FAIL() << "an unprepared model must be rejected";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("prepared"), std::string::npos) << e.what();
  }
  models::Net grouped = calibrated("cnn", R"({"weight_bits": 4, "act_bits": 8, "weight_granularity": "group", "weight_group_size": 16})");
  try {
    to_runtime_model(grouped);
    FAIL() << "per-group weights must be rejected";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("conv1"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("per-group"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace lowbit::convert
