// Input normalisation (--mean / --std) on the training side and through conversion: a 3-channel
// model normalises its [0, 1] images in forward, the conversion carries the normalisation into the
// runtime model, and the runtime's integer logits equal the integer simulation's bit for bit at
// every kernel level, with input codes equal to fake quantization's. Flag parsing errors name
// the flag; a run config's "data" section rebuilds the normalisation (train::build_net).
#include <gtest/gtest.h>

#include "base/error.h"
#include "convert/drift.h"
#include "convert/integer_simulation.h"
#include "convert/to_runtime.h"
#include "data/input_normalisation.h"
#include "export/qdq_export.h"
#include "export/float_export.h"
#include "import/imported_test_nets.h"
#include "models/imported_net.h"
#include "qat/qat_run.h"
#include "qat/quantized_layers.h"
#include "quant/input_normalisation.h"
#include "runtime/cpu_features.h"
#include "runtime/session.h"
#include "train/checkpoint.h"

namespace lowbit {
namespace {

const std::vector<float> kMean{0.485f, 0.456f, 0.406f}, kStd{0.229f, 0.224f, 0.225f};

models::Net calibrated_colour_net(const std::string& config) {
  torch::manual_seed(3);
  models::Net net = models::make_imported_net(import::test_nets::tiny_colour());
  net->set_input_normalisation(kMean, kStd);
  qat::prepare(net, qat::QatConfig::from_json(nlohmann::json::parse(config)));
  net->train();
  torch::NoGradGuard no_grad;
  for (int i = 0; i < 3; ++i) net->forward(torch::rand({8, 3, 12, 12}));
  net->eval();
  return net;
}

TEST(InputNormalisation, NetNormalisesExactlyAsTheScalarExpression) {
  torch::manual_seed(1);
  models::Net net = models::make_imported_net(import::test_nets::tiny_colour());
  net->eval();
  torch::NoGradGuard no_grad;
  const torch::Tensor x = torch::rand({4, 3, 12, 12});
  torch::Tensor expected = x.clone();
  float* e = expected.data_ptr<float>();
  for (int64_t i = 0; i < expected.numel(); ++i) {
    const size_t c = static_cast<size_t>((i / 144) % 3);
    e[i] = quant::normalise_input(e[i], kMean[c], kStd[c]);
  }
  const torch::Tensor plain_on_normalised = net->forward(expected);
  net->set_input_normalisation(kMean, kStd);
  EXPECT_TRUE(torch::equal(net->normalise_input(x), expected));
  EXPECT_TRUE(torch::equal(net->forward(x), plain_on_normalised));
  net->set_input_normalisation({0.5f}, {0.25f});  // one value for every channel
  EXPECT_TRUE(torch::equal(net->normalise_input(x), (x - 0.5f) / 0.25f));
  net->set_input_normalisation({0.5f, 0.5f}, {0.25f, 0.25f});  // two values, three channels
  try {
    net->forward(x);
    FAIL() << "two means for three channels were accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--mean/--std have 2 values but the input has 3 channels"), std::string::npos)
        << e.what();
  }
}

TEST(InputNormalisation, RuntimeEqualsIntegerSimulationAndFakeQuantInputCodes) {
  for (const std::string config : {R"({"weight_bits": 8, "act_bits": 8})", R"({"weight_bits": 4, "act_bits": 4})"}) {
    models::Net net = calibrated_colour_net(config);
    const runtime::Model m = convert::to_runtime_model(net);
    ASSERT_EQ(m.in_channels, 3);
    EXPECT_EQ(m.input_mean, kMean);
    EXPECT_EQ(m.input_std, kStd);
    torch::manual_seed(7);
    const torch::Tensor images = torch::rand({6, 3, 12, 12});
    const convert::IntegerOutputs sim = convert::simulate_integer(m, images);
    std::vector<std::string> isas{""};
    for (const std::string isa : {"ref", "avx2", "avx512vnni", "neon", "neondot"})
      if (runtime::cpu_supports(runtime::parse_isa(isa))) isas.push_back(isa);
    for (const std::string& isa : isas) {
      runtime::SessionOptions o;
      o.isa = isa;
      o.threads = 2;
      runtime::Session session(m, o);
      const runtime::RunResult r = session.run(images.data_ptr<float>(), images.size(0));
      const torch::Tensor sim_logits = sim.int_logits.contiguous();
      ASSERT_EQ(static_cast<int64_t>(r.int_logits.size()), sim_logits.numel());
      for (int64_t i = 0; i < sim_logits.numel(); ++i)
        ASSERT_EQ(r.int_logits[static_cast<size_t>(i)], sim_logits.data_ptr<int64_t>()[i]) << config << " isa " << isa;
    }
    // Fake quantization's input codes are the integer model's: the same normalisation, bit for bit.
    data::Dataset d;
    d.images = images;
    d.labels = torch::zeros({6}, torch::kInt64);
    const convert::DriftReport drift = convert::measure_drift(net, m, d);
    ASSERT_FALSE(drift.values.empty());
    EXPECT_EQ(drift.values[0].name, "input");
    EXPECT_EQ(drift.values[0].elements, 6 * 3 * 12 * 12);
    EXPECT_EQ(drift.values[0].differing, 0) << config;
    // Without the normalisation the simulation's input codes differ: it was applied.
    runtime::Model plain = m;
    plain.input_mean.clear();
    plain.input_std.clear();
    std::vector<torch::Tensor> codes_norm, codes_plain;
    convert::simulate_integer(m, images, &codes_norm);
    convert::simulate_integer(plain, images, &codes_plain);
    EXPECT_FALSE(torch::equal(codes_norm[0], codes_plain[0]));
  }
}

TEST(InputNormalisation, OnnxExportsStartWithSubAndDiv) {
  models::Net net = calibrated_colour_net(R"({"weight_bits": 8, "act_bits": 8})");
  for (const onnx::Model& g : {onnx::qdq_model_from_net(net), onnx::float_model(net)}) {
    ASSERT_GE(g.graph.nodes.size(), 2u);
    EXPECT_EQ(g.graph.nodes[0].op_type, "Sub");
    EXPECT_EQ(g.graph.nodes[0].inputs.at(0), "input");
    EXPECT_EQ(g.graph.nodes[1].op_type, "Div");
    bool has_mean = false;
    for (const auto& t : g.graph.initializers)
      if (t.name == "input_mean") has_mean = t.dims == std::vector<int64_t>{1, 3, 1, 1};
    EXPECT_TRUE(has_mean);
  }
}

TEST(InputNormalisation, FlagsAndRunConfig) {
  const data::InputNormalisation n = data::normalisation_from_flags("0.485,0.456,0.406", "0.229,0.224,0.225");
  EXPECT_EQ(n.mean, kMean);
  EXPECT_EQ(n.std, kStd);
  EXPECT_EQ(n.mean_for(3), kMean);
  EXPECT_EQ(data::normalisation_from_flags("0.5", "0.25").mean_for(3), (std::vector<float>{0.5f, 0.5f, 0.5f}));
  auto message = [](const std::function<void()>& f) {
    try {
      f();
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("(no error)");
  };
  EXPECT_NE(message([&] { n.validate(1); }).find("--mean has 3 values but the input has 1 channel"), std::string::npos);
  EXPECT_NE(message([] { data::normalisation_from_flags("0.4,abc", "0.2,0.2"); }).find("--mean '0.4,abc': 'abc' is not a number"),
            std::string::npos);
  EXPECT_NE(message([] { data::normalisation_from_flags("0.4", "0"); }).find("--std value 1 is 0.0; standard deviations must be > 0"), std::string::npos);
  EXPECT_NE(message([] { data::normalisation_from_flags("0.4,0.4", "0.2"); }).find("--mean has 2 values and --std 1"),
            std::string::npos);
  EXPECT_NE(message([] { data::normalisation_from_flags("0.4", ""); }).find("--mean needs --std"), std::string::npos);

  // Stored in a run's config, rebuilt by build_net; flags may repeat it, not contradict it.
  nlohmann::json config = {{"model", "cnn"}};
  n.write_to(config);
  EXPECT_EQ(data::InputNormalisation::from_run_config(config), n);
  const models::Net net = train::build_net(config);
  EXPECT_EQ(net->input_mean(), kMean);
  EXPECT_EQ(net->input_std(), kStd);
  EXPECT_EQ(data::run_normalisation("0.485,0.456,0.406", "0.229,0.224,0.225", config, "run"), n);
  EXPECT_NE(message([&] { data::run_normalisation("0.5", "0.5", config, "runs/x"); }).find("contradict"), std::string::npos);
  EXPECT_FALSE(data::run_normalisation("", "", nlohmann::json{{"model", "cnn"}}, "run").active());
}

}  // namespace
}  // namespace lowbit
