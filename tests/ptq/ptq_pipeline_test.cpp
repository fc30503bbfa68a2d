// The PTQ pipeline on small models: the checkpoint's fake quantization reproduces the PTQ codes
// exactly, the checkpoint round-trips and converts, and the corrections reduce output error.
#include <gtest/gtest.h>

#include <filesystem>

#include "base/error.h"
#include "convert/to_runtime.h"
#include "image_batches.h"
#include "import/imported_test_nets.h"
#include "models/imported_net.h"
#include "ptq/calibration.h"
#include "ptq/ptq.h"
#include "ptq/ptq_run.h"
#include "ptq/weight_layers.h"
#include "qat/qat_run.h"
#include "train/checkpoint.h"
#include "train/test_files.h"

namespace lowbit::ptq {
namespace {

// A model whose BN running statistics are those of its data (as after training): the running
// averages restart as cumulative averages (momentum none) over one pass.
models::Net settled_model(const std::string& name, const std::vector<torch::Tensor>& data, uint64_t seed) {
  torch::manual_seed(seed);
  models::Net net = models::make_model(name);
  torch::NoGradGuard no_grad;
  for (const auto& n : net->nodes()) {
    auto conv = std::dynamic_pointer_cast<models::ConvBnActImpl>(n.layer);
    if (conv && conv->bn) {
      conv->bn->options.momentum(c10::nullopt);
      conv->bn->reset_running_stats();
    }
  }
  net->train();
  for (const auto& b : data) net->forward(b);
  net->eval();
  return net;
}

using testing::image_batches;

double output_mse(models::Net& a, models::Net& b, const std::vector<torch::Tensor>& data) {
  torch::NoGradGuard no_grad;
  double s = 0;
  for (const auto& x : data) s += (a->forward(x) - b->forward(x)).pow(2).mean().item<double>();
  return s / static_cast<double>(data.size());
}

// The PTQ codes each weight layer deploys, as integers: deployed / scale.
std::vector<torch::Tensor> deployed_codes(models::Net& net) {
  std::vector<torch::Tensor> out;
  for (auto& l : weight_layers(net)) {
    const torch::Tensor s = l.weight_quantizer().qparams().scale;
    const torch::Tensor w = l.deployed_weight();
    std::vector<int64_t> shape(static_cast<size_t>(w.dim()), 1);
    shape[0] = -1;
    out.push_back(w / s.view(shape));
  }
  return out;
}

TEST(Ptq, FakeQuantizationReproducesThePtqCodes) {
  const auto calib = image_batches(2, 16, 1);
  for (PtqMethod method : {PtqMethod::Rtn, PtqMethod::Gptq}) {
    for (bool bn : {false, true}) {
      models::Net net = settled_model("cnn", calib, 2);
      PtqOptions o;
      o.method = method;
      o.bn_reestimate = bn;
      o.bias_correction = bn;
      quantize_post_training(net, ptq_config(3, 8, 2), calib, o);
      const auto layers = weight_layers(net);
      ASSERT_EQ(layers.size(), 4u);
      for (const auto& c : deployed_codes(net)) {
        EXPECT_TRUE(torch::allclose(c, c.round(), 0.0, 1e-4)) << to_string(method);
        EXPECT_GE(c.min().item<float>(), -4.0f - 1e-4f);
        EXPECT_LE(c.max().item<float>(), 3.0f + 1e-4f);
      }
      // The layer's own weights already sit on the grid: quantizing them again changes nothing
      // (up to float rounding of the BN fold), so QAT-style eval sees exactly the PTQ point.
      for (auto& l : weight_layers(net)) {
        EXPECT_TRUE(torch::allclose(l.deployed_weight(), l.effective_weight(), 1e-5, 1e-6)) << l.name();
      }
    }
  }
}

TEST(Ptq, GptqLayerErrorBelowRoundToNearestOnAModel) {
  const auto calib = image_batches(2, 32, 3);
  models::Net net = settled_model("cnn", calib, 4);
  PtqOptions o;
  o.method = PtqMethod::Gptq;
  const PtqReport r = quantize_post_training(net, ptq_config(2, 8, 2), calib, o);
  ASSERT_EQ(r.layers.size(), 4u);
  for (const auto& l : r.layers) {
    EXPECT_EQ(l.method, "gptq");
    EXPECT_LT(l.relative_error, l.rtn_relative_error) << l.name;
  }
}

// measure_errors only feeds the report: without it (the sensitivity pass) RTN and GPTQ give the
// same net, bit for bit, with and without the corrections; RTN's report then holds no errors.
TEST(Ptq, SkippingTheErrorReportLeavesTheWeightsUnchanged) {
  const auto calib = image_batches(2, 16, 5);
  for (PtqMethod method : {PtqMethod::Rtn, PtqMethod::Gptq}) {
    for (bool corrections : {false, true}) {
      std::vector<models::Net> nets;
      std::vector<PtqReport> reports;
      for (bool errors : {true, false}) {
        nets.push_back(settled_model("resnet8", calib, 6));
        PtqOptions o;
        o.method = method;
        o.bn_reestimate = corrections;
        o.bias_correction = corrections;
        o.measure_errors = errors;
        reports.push_back(quantize_post_training(nets.back(), ptq_config(3, 4, 2), calib, o));
      }
      const auto a = nets[0]->named_parameters(), b = nets[1]->named_parameters();
      ASSERT_EQ(a.size(), b.size());
      for (const auto& p : a) EXPECT_TRUE(torch::equal(p.value(), b[p.key()])) << p.key() << " " << to_string(method);
      const auto ab = nets[0]->named_buffers(), bb = nets[1]->named_buffers();
      for (const auto& p : ab) EXPECT_TRUE(torch::equal(p.value(), bb[p.key()])) << p.key() << " " << to_string(method);
      torch::NoGradGuard no_grad;
      EXPECT_TRUE(torch::equal(nets[0]->forward(calib[0]), nets[1]->forward(calib[0])));
      EXPECT_GT(reports[0].layers.front().relative_error, 0.0);
      if (method == PtqMethod::Rtn) {
        EXPECT_EQ(reports[1].layers.front().relative_error, 0.0);
      }
    }
  }
}

TEST(Ptq, CheckpointRoundTripsAndConverts) {
  qat::register_checkpoint_hook();
  const std::string dir = lowbit::testing::fresh_test_dir();
  const auto calib = image_batches(2, 32, 5);
  models::Net fp = settled_model("cnn", calib, 6);
  train::TrainConfig tc;
  tc.model = "cnn";
  train::TrainingState st;
  st.config = train::to_json(tc);
  std::filesystem::create_directories(dir + "/fp");
  train::save_checkpoint(dir + "/fp/checkpoint.pt", fp, st);

  data::Dataset train_set;
  train_set.images = torch::cat(calib);
  train_set.labels = torch::zeros({train_set.images.size(0)}, torch::kInt64);
  PtqOptions o;
  o.method = PtqMethod::Gptq;
  o.bias_correction = true;
  o.bn_reestimate = true;
  const qat::QatConfig config = ptq_config(4, 8, 2);
  models::Net q = quantize_checkpoint(dir + "/fp", config, train_set, 2, 32, o);
  save_ptq_checkpoint(dir + "/ptq", q, dir + "/fp", config, {{"method", "gptq"}}, false);
  EXPECT_THROW(save_ptq_checkpoint(dir + "/ptq", q, dir + "/fp", config, {}, false), Error);  // no silent overwrite

  models::Net loaded = train::load_net(dir + "/ptq");
  torch::NoGradGuard no_grad;
  const auto test = image_batches(1, 16, 7)[0];
  q->eval();
  EXPECT_TRUE(torch::equal(q->forward(test), loaded->forward(test)));
  const auto a = deployed_codes(q), b = deployed_codes(loaded);
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(torch::equal(a[i].round(), b[i].round()));
  const auto info = train::load_checkpoint(dir + "/ptq");
  EXPECT_EQ(info.config["ptq"]["method"], "gptq");
  EXPECT_NO_THROW(convert::to_runtime_model(loaded, "ptq test"));
  // A quantized checkpoint cannot be quantized again.
  EXPECT_THROW(quantize_checkpoint(dir + "/ptq", config, train_set, 2, 32, o), Error);
}

// Per output channel mean and standard deviation of y [N, C, H, W].
std::pair<torch::Tensor, torch::Tensor> channel_moments(const torch::Tensor& y) {
  const torch::Tensor t = y.transpose(0, 1).reshape({y.size(1), -1});
  return {t.mean(1), t.std(1, /*unbiased=*/false)};
}

TEST(Ptq, CorrectionsReduceOutputError) {
  const auto calib = image_batches(2, 32, 8);
  // BN running statistics of the FP model equal to the calibration data's (as after training).
  models::Net fp = settled_model("cnn", calib, 9);
  auto quantized = [&](bool bn, bool bias) {
    models::Net net = settled_model("cnn", calib, 9);
    PtqOptions o;
    o.bn_reestimate = bn;
    o.bias_correction = bias;
    quantize_post_training(net, ptq_config(2, 8, 2), calib, o);
    return net;
  };
  models::Net plain = quantized(false, false);
  models::Net bn = quantized(true, false);
  models::Net bias = quantized(false, true);

  // The first conv (its inputs, pixels on the 1/255 grid, are the same in every model): the
  // pre-activation output of FP and of each quantized model on the calibration data.
  torch::NoGradGuard no_grad;
  const torch::Tensor x = torch::cat(calib);
  auto fp_conv = std::dynamic_pointer_cast<models::ConvBnActImpl>(fp->nodes()[0].layer);
  ASSERT_TRUE(fp_conv);
  const torch::Tensor y_fp = fp_conv->bn->forward(fp_conv->conv->forward(x));
  auto first_layer_output = [&](models::Net& net) {
    const WeightLayer l = weight_layers(net)[0];
    return l.pre_activation(x, l.deployed_weight(), l.effective_bias());
  };
  const torch::Tensor y_plain = first_layer_output(plain), y_bn = first_layer_output(bn), y_bias = first_layer_output(bias);
  // Bias correction removes the mean error: the squared error drops.
  EXPECT_LT((y_bias - y_fp).pow(2).mean().item<double>(), (y_plain - y_fp).pow(2).mean().item<double>());
  // BN re-estimation restores the per-channel output statistics.
  auto moment_error = [&](const torch::Tensor& y) {
    const auto [m, s] = channel_moments(y);
    const auto [m_fp, s_fp] = channel_moments(y_fp);
    return ((m - m_fp).abs() + (s - s_fp).abs()).sum().item<double>();
  };
  EXPECT_LT(moment_error(y_bn), 0.5 * moment_error(y_plain));
  // Through the whole net, bias correction also brings the logits closer to FP's.
  EXPECT_LT(output_mse(fp, bias, calib), output_mse(fp, plain, calib));
}

TEST(Ptq, BadOptions) {
  EXPECT_THROW(method_from_string("adaround"), Error);
  models::Net net = models::make_model("mlp");
  EXPECT_THROW(quantize_post_training(net, ptq_config(4, 8, 1), {}, {}), Error);
  data::Dataset tiny;
  tiny.images = torch::zeros({10, 1, 28, 28});
  tiny.labels = torch::zeros({10}, torch::kInt64);
  EXPECT_THROW(calibration_batches(tiny, 2, 8), Error);
}

}  // namespace
}  // namespace lowbit::ptq

namespace lowbit::ptq {
namespace {

TEST(WeightLayer, EffectiveWeightAndBiasWritersRoundTrip) {
  const auto calib = image_batches(1, 16, 12);
  models::Net net = settled_model("cnn", calib, 13);
  qat::prepare(net, ptq_config(4, 8, 1));
  for (auto& l : weight_layers(net)) {
    const torch::Tensor w = l.effective_weight();
    const torch::Tensor b = l.effective_bias();
    l.set_effective_weight(w * 0.5);
    l.shift_bias(torch::ones_like(b));
    EXPECT_TRUE(torch::allclose(l.effective_weight(), w * 0.5, 1e-5, 1e-6)) << l.name();
    EXPECT_TRUE(torch::allclose(l.effective_bias(), b + 1, 1e-5, 1e-5)) << l.name();
    // Rows of the im2col / input matrix times the weight matrix give the layer's output.
    const auto inputs = node_inputs(net->nodes(), net->input_layer(), calib, l.node_index());
    const torch::Tensor y = l.pre_activation(inputs[0], l.effective_weight(), torch::Tensor());
    const torch::Tensor rows = l.input_rows(inputs[0]);
    const torch::Tensor y2 = rows.matmul(l.effective_weight().reshape({l.effective_weight().size(0), -1}).t());
    const torch::Tensor y_rows = y.dim() == 4 ? y.permute({0, 2, 3, 1}).reshape({-1, y.size(1)}) : y;
    EXPECT_TRUE(torch::allclose(y_rows, y2, 1e-4, 1e-4)) << l.name();
  }
}

// GPTQ's im2col rows of a dilated conv (dilation 2, padded; dilation 3 with stride 2) times its
// weight matrix give the conv's output.
TEST(WeightLayer, InputRowsOfDilatedConvs) {
  import::ImportedModel im;
  im.input_shape = {1, 28, 28};
  im.layers = {import::test_nets::conv3x3("d2", 0, 1, 6, 1, 2, 1, 2), import::test_nets::conv3x3("d3", 1, 6, 8, 2, 1, 1, 3)};
  import::test_nets::add_classifier_head(im, 8);
  torch::manual_seed(14);
  models::Net net = models::make_imported_net(im);
  const auto calib = image_batches(1, 8, 15);
  qat::prepare(net, ptq_config(8, 8, 1));
  {
    torch::NoGradGuard no_grad;
    net->train();
    net->forward(calib[0]);
    net->eval();
  }
  int convs = 0;
  for (auto& l : weight_layers(net)) {
    const auto inputs = node_inputs(net->nodes(), net->input_layer(), calib, l.node_index());
    const torch::Tensor y = l.pre_activation(inputs[0], l.effective_weight(), torch::Tensor());
    const torch::Tensor rows = l.input_rows(inputs[0]);
    const torch::Tensor y2 = rows.matmul(l.effective_weight().reshape({l.effective_weight().size(0), -1}).t());
    const torch::Tensor y_rows = y.dim() == 4 ? y.permute({0, 2, 3, 1}).reshape({-1, y.size(1)}) : y;
    ASSERT_EQ(y_rows.sizes(), y2.sizes()) << l.name();
    EXPECT_TRUE(torch::allclose(y_rows, y2, 1e-4, 1e-4)) << l.name();
    convs += y.dim() == 4;
  }
  EXPECT_EQ(convs, 2);
}

}  // namespace
}  // namespace lowbit::ptq
