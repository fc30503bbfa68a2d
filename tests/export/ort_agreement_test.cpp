// The exported ONNX models run in a real client, ONNX Runtime (Node.js binding), and agree with
// lowbit: QDQ models predict what lowbit's integer evaluation mode predicts, float models give
// the logits LibTorch gives. Skipped, with a message, when node or onnxruntime-node is missing.
#include <gtest/gtest.h>

#include <functional>

#include "base/error.h"
#include "convert/integer_simulation.h"
#include "convert/to_runtime.h"
#include "data/fashion_mnist.h"
#include "export/export_test_support.h"
#include "export/float_export.h"
#include "export/qdq_export.h"
#include "import/imported_test_nets.h"
#include "models/imported_net.h"
#include "qat/quantized_layers.h"

namespace lowbit::onnx {
namespace {

constexpr int64_t kTrainImages = 4096;
constexpr int64_t kTestImages = 1000;

// The first images of each split, loaded once; null when the data set is not installed.
const data::TrainValidation* fashion_mnist_subset() {
  static const std::unique_ptr<data::TrainValidation> subset = []() -> std::unique_ptr<data::TrainValidation> {
    try {
      const std::string dir = data::default_data_dir();
      data::Dataset train = data::load_fashion_mnist(dir, "train");
      data::Dataset test = data::load_fashion_mnist(dir, "test");
      auto s = std::make_unique<data::TrainValidation>();
      s->train = {train.images.narrow(0, 0, kTrainImages), train.labels.narrow(0, 0, kTrainImages)};
      s->validation = {test.images.narrow(0, 0, kTestImages), test.labels.narrow(0, 0, kTestImages)};
      return s;
    } catch (const std::exception&) {
      return nullptr;
    }
  }();
  return subset.get();
}

#define SKIP_WITHOUT_DATA()                                                                                  \
  if (fashion_mnist_subset() == nullptr) GTEST_SKIP() << "Fashion-MNIST is not installed (scripts/setup.sh)"

// A model trained briefly in FP32 on the training subset, so that its logits have real margins.
models::Net briefly_trained(const std::string& model, int steps = 100) {
  torch::manual_seed(1);
  models::Net net = models::make_model(model);
  net->train();
  torch::optim::AdamW optimizer(net->parameters(), torch::optim::AdamWOptions(2e-3).weight_decay(0.0));
  const data::Dataset& train = fashion_mnist_subset()->train;
  const int64_t batch = 64;
  for (int step = 0; step < steps; ++step) {
    const int64_t start = (step * batch) % (kTrainImages - batch);
    const torch::Tensor loss = torch::nn::functional::cross_entropy(net->forward(train.images.narrow(0, start, batch)),
                                                                    train.labels.narrow(0, start, batch));
    optimizer.zero_grad();
    loss.backward();
    optimizer.step();
  }
  net->eval();
  return net;
}

// QAT-prepared and calibrated on training images (observers and batch-norm statistics settle).
models::Net quantized(const std::string& model, const std::string& config) {
  models::Net net = briefly_trained(model);
  qat::prepare(net, qat::QatConfig::from_json(nlohmann::json::parse(config)));
  net->train();
  torch::NoGradGuard no_grad;
  const data::Dataset& train = fashion_mnist_subset()->train;
  for (int i = 0; i < 8; ++i) net->forward(train.images.narrow(0, i * 128, 128));
  net->eval();
  return net;
}

struct Case {
  std::string model;
  std::string config;
  std::string label;
};

// So that test listings (and ctest names) show the label, not the struct's bytes.
void PrintTo(const Case& c, std::ostream* os) { *os << c.label; }

class QdqAgreement : public ::testing::TestWithParam<Case> {};

TEST_P(QdqAgreement, OnnxRuntimePredictsWhatTheIntegerModelPredicts) {
  LOWBIT_SKIP_WITHOUT_ORT();
  SKIP_WITHOUT_DATA();
  const Case& c = GetParam();
  models::Net net = quantized(c.model, c.config);
  std::vector<convert::ConvertedOp> record;
  const runtime::Model m = convert::to_runtime_model(net, c.model, &record);
  const std::string dir = testing::fresh_test_dir();
  const std::string path = dir + "/" + c.label + ".onnx";
  save(qdq_model(m, record), path);

  const torch::Tensor images = fashion_mnist_subset()->validation.images;
  const convert::IntegerOutputs lowbit = convert::simulate_integer(m, images);
  const torch::Tensor ort_logits = testing::run_ort(path, images, dir);
  ASSERT_TRUE(ort_logits.defined());
  ASSERT_EQ(ort_logits.sizes(), lowbit.logits.sizes());
  const torch::Tensor ort_predictions = ort_logits.argmax(1);
  const int64_t agree = (ort_predictions == lowbit.predictions).sum().item<int64_t>();
  const double spread = (lowbit.logits.max() - lowbit.logits.min()).item<double>();
  const double max_diff = (ort_logits - lowbit.logits).abs().max().item<double>();
  const double accuracy = (lowbit.predictions == fashion_mnist_subset()->validation.labels).to(torch::kFloat64).mean().item<double>();
  std::cout << c.label << ": predictions agree on " << agree << "/" << kTestImages << ", max |logit diff| " << max_diff
            << " (logit range " << spread << "), lowbit accuracy " << accuracy << "\n";
  EXPECT_GE(agree * 1000, kTestImages * 999) << c.label;
  EXPECT_GT(accuracy, 0.5) << c.label << ": the briefly trained model should have learned something";
}

INSTANTIATE_TEST_SUITE_P(
    ZooModels, QdqAgreement,
    ::testing::Values(Case{"cnn", R"({"weight_bits": 8, "act_bits": 8})", "cnn_w8a8"},
                      Case{"cnn", R"({"weight_bits": 4, "act_bits": 8})", "cnn_w4a8"},
                      Case{"resnet8", R"({"weight_bits": 8, "act_bits": 8})", "resnet8_w8a8"},
                      Case{"resnet8", R"({"weight_bits": 4, "act_bits": 8})", "resnet8_w4a8"},
                      Case{"mobilenet-tiny", R"({"weight_bits": 8, "act_bits": 8})", "mobilenet_tiny_w8a8"},
                      Case{"mobilenet-tiny", R"({"weight_bits": 4, "act_bits": 8})", "mobilenet_tiny_w4a8"},
                      Case{"cnn", R"({"weight_bits": 4, "act_bits": 4})", "cnn_w4a4"},
                      // 7-bit codes stay INT8 (ONNX Runtime's fast u8s8 path: pairs cannot saturate)
                      Case{"cnn", R"({"weight_bits": 7, "act_bits": 8})", "cnn_w7a8"}),
    [](const ::testing::TestParamInfo<Case>& info) { return info.param.label; });

TEST(FloatExport, OnnxRuntimeGivesLibTorchLogits) {
  LOWBIT_SKIP_WITHOUT_ORT();
  SKIP_WITHOUT_DATA();
  for (const std::string model : {"cnn", "resnet8", "mobilenet-tiny"}) {
    models::Net net = briefly_trained(model, 20);
    const std::string dir = testing::fresh_test_dir();
    const std::string path = dir + "/" + model + ".onnx";
    save(float_model(net), path);
    const torch::Tensor images = fashion_mnist_subset()->validation.images.narrow(0, 0, 200);
    torch::NoGradGuard no_grad;
    const torch::Tensor expected = net->forward(images);
    const torch::Tensor got = testing::run_ort(path, images, dir);
    ASSERT_TRUE(got.defined()) << model;
    ASSERT_EQ(got.sizes(), expected.sizes()) << model;
    // Float32 with another summation order (and, for the FP32 model, batch norm applied as a
    // separate op or folded by ONNX Runtime): relative differences of a few 1e-6 per op.
    const double scale = expected.abs().max().item<double>();
    EXPECT_LT((got - expected).abs().max().item<double>(), 1e-4 * (1.0 + scale)) << model;
    EXPECT_TRUE(got.argmax(1).equal(expected.argmax(1))) << model;
  }
}

// An imported net with random weights and random images (no data set needed) in both exports: the
// FP32 model gives LibTorch's logits in ONNX Runtime, the QDQ model (W8A8) the integer model's.
// `check` looks at the converted model first (that it holds what the test is about).
void expect_exports_agree(models::Net& net, const torch::Tensor& images, const std::string& name,
                          const std::function<void(const runtime::Model&)>& check) {
  const std::string dir = testing::fresh_test_dir();
  {  // batch-norm statistics of these images, then FP32 export
    torch::NoGradGuard no_grad;
    net->train();
    net->forward(images);
    net->eval();
    save(float_model(net), dir + "/" + name + "_fp32.onnx");
    const torch::Tensor expected = net->forward(images);
    const torch::Tensor got = testing::run_ort(dir + "/" + name + "_fp32.onnx", images, dir);
    ASSERT_TRUE(got.defined());
    ASSERT_EQ(got.sizes(), expected.sizes());
    const double scale = expected.abs().max().item<double>();
    EXPECT_LT((got - expected).abs().max().item<double>(), 1e-4 * (1.0 + scale));
  }
  qat::prepare(net, qat::QatConfig::from_json(nlohmann::json::parse(R"({"weight_bits": 8, "act_bits": 8})")));
  {
    torch::NoGradGuard no_grad;
    net->train();
    for (int i = 0; i < 3; ++i) net->forward(images);
    net->eval();
  }
  std::vector<convert::ConvertedOp> record;
  const runtime::Model m = convert::to_runtime_model(net, "onnx", &record);
  check(m);
  save(qdq_model(m, record), dir + "/" + name + "_qdq.onnx");
  const convert::IntegerOutputs lowbit = convert::simulate_integer(m, images);
  const torch::Tensor ort_logits = testing::run_ort(dir + "/" + name + "_qdq.onnx", images, dir);
  ASSERT_TRUE(ort_logits.defined());
  ASSERT_EQ(ort_logits.sizes(), lowbit.logits.sizes());
  const double spread = (lowbit.logits.max() - lowbit.logits.min()).item<double>();
  const double max_diff = (ort_logits - lowbit.logits).abs().max().item<double>();
  std::cout << name << " W8A8: max |logit diff| " << max_diff << " (logit range " << spread << ")\n";
  // ONNX Runtime requantizes in float (docs/export.md, "Where ONNX Runtime's arithmetic can differ"):
  // a code now and then one step off, never the wrong taps or an unnormalised input (which would
  // move the logits by their range).
  EXPECT_GE((ort_logits.argmax(1) == lowbit.predictions).sum().item<int64_t>(), 62);
  EXPECT_LE(max_diff, 0.01 * (1.0 + spread));
}

// Dilated convolutions: dense dilation 2, depthwise dilation 3 with stride 2, grouped dilation 2.
TEST(DilatedExport, OnnxRuntimeAgreesWithLowbit) {
  LOWBIT_SKIP_WITHOUT_ORT();
  torch::manual_seed(4);
  models::Net net = models::make_imported_net(import::test_nets::dilated_convs());
  expect_exports_agree(net, torch::rand({64, 1, 28, 28}), "dilated",
                       [](const runtime::Model& m) { ASSERT_EQ(m.ops[1].dilation_h, 3); });
}

// A model with input normalisation (--mean / --std) exports with Sub and Div nodes in front, so
// ONNX Runtime takes the same [0, 1] images as lowbit (random 3-channel images).
TEST(NormalisedExport, OnnxRuntimeTakesImagesInUnitRangeLikeLowbit) {
  LOWBIT_SKIP_WITHOUT_ORT();
  torch::manual_seed(4);
  models::Net net = models::make_imported_net(import::test_nets::tiny_colour());
  net->set_input_normalisation({0.485f, 0.456f, 0.406f}, {0.229f, 0.224f, 0.225f});
  expect_exports_agree(net, torch::rand({64, 3, 12, 12}), "normalised",
                       [](const runtime::Model& m) { ASSERT_EQ(m.input_mean.size(), 3u); });
}

}  // namespace
}  // namespace lowbit::onnx
