// vit-tiny end to end on the integer runtime: a small vit-tiny (2 layers, width 32, 2 heads, patch
// 4: 49 tokens) QAT-prepared at W8A8 and W4A4 (static per-tensor activations, per-channel
// weights; W4 group 16 too), trained a few steps on real Fashion-MNIST test images (random images
// when the data set is absent) so that the observers are calibrated and predictions are not ties,
// converted (convert/to_encoder.h); the runtime's logits against the LibTorch model's evaluation
// (fake quantization) on 256 images, every kernel level against the reference, the file round trip.
#include <gtest/gtest.h>

#include <cmath>
#include <iostream>

#include "base/error.h"
#include "convert/to_encoder.h"
#include "data/idx_file.h"
#include "data/load_dataset.h"
#include "models/gpt.h"
#include "models/vit.h"
#include "qat/qat_config.h"
#include "qat/quantized_layers.h"
#include "runtime/encoder_model_file.h"
#include "runtime/encoder_session.h"

namespace lowbit {
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
    }
    return r;
  }();
  return im;
}

// QAT-prepared, trained `steps` AdamW steps on the images 256..511 (the observers calibrate in
// training mode), in eval mode.
models::Net trained_qat_vit(const qat::QatFlags& flags, int steps) {
  torch::manual_seed(1);
  models::Net net = models::make_vit(small_vit());
  qat::prepare(net, qat::config_from_flags(flags));
  net->train();
  torch::optim::AdamW opt(net->parameters(), torch::optim::AdamWOptions(2e-3).weight_decay(0.0));
  const Images& im = images();
  for (int s = 0; s < steps; ++s) {
    const int64_t b0 = 256 + (s * 32) % 224;
    const torch::Tensor logits = net->forward(im.x.narrow(0, b0, 32));
    const torch::Tensor loss = torch::nn::functional::cross_entropy(logits, im.y.narrow(0, b0, 32));
    opt.zero_grad();
    loss.backward();
    opt.step();
  }
  net->eval();
  return net;
}

struct Case {
  const char* name;
  int wbits, abits;
  int group_size;  // 0: per channel
};

void check_case(const Case& c) {
  qat::QatFlags f;
  f.wbits = c.wbits;
  f.abits = c.abits;
  if (c.group_size > 0) {
    f.granularity = "group";
    f.group_size = c.group_size;
  }
  models::Net net = trained_qat_vit(f, 40);
  const runtime::EncoderModel m = convert::to_encoder_model(net, small_vit(), c.name);
  // What QAT simulates: the patch embedding and fc2 read static codes (integer GEMM); q, k, v, o,
  // fc1 and the head read float inputs.
  EXPECT_TRUE(m.patch_embed.integer());
  EXPECT_TRUE(m.layers[0].fc2.integer());
  EXPECT_FALSE(m.layers[0].q.integer());
  EXPECT_TRUE(m.layers[0].has_add1_grid && m.layers[1].has_add2_grid);
  EXPECT_EQ(m.input_grid.scale, 1.0f / 255.0f);

  const Images& im = images();
  const torch::Tensor x = im.x.narrow(0, 0, 256);
  runtime::EncoderOptions ro;
  ro.isa = "ref";
  runtime::EncoderSession ref(m, ro);
  const convert::EncoderAgreement a = convert::compare_encoder_with_torch(ref, net, x, im.y.narrow(0, 0, 256));
  std::cout << c.name << ": 256 images, max |logit diff| " << a.max_abs_diff << " (max |logit| " << a.max_abs_logit
            << ", relative " << a.max_rel_diff() << "), mean " << a.mean_abs_diff << ", same prediction "
            << a.predictions_equal << "/256, correct runtime " << a.runtime_correct << " LibTorch " << a.torch_correct
            << "\n";
  // Measured 2026-12-03 (docs/transformers.md, "vit-tiny on the integer runtime"): mean |diff|
  // 1.0e-5 (W8A8), 1.0e-7 (W4A4), 9.8e-6 (W4 g16 A8), 256/256 equal predictions each. The bounds
  // leave room for float noise moving a code on other seeds and machines; a conversion mistake
  // (layout, scale, grid) moves logits by O(1) and breaks them by far.
  EXPECT_LE(a.mean_abs_diff, 1e-3 * (1.0 + a.max_abs_logit)) << c.name;
  EXPECT_LE(a.max_rel_diff(), 0.05) << c.name;
  EXPECT_GE(a.predictions_equal, 253) << c.name;  // >= 98.8% of 256

  // Every kernel level (LOWBIT_ISA aside): the reference's logits bit for bit, 64 images.
  const std::vector<float> want = ref.run(x.data_ptr<float>(), 64);
  for (runtime::Isa isa : runtime::supported_isas()) {
    runtime::EncoderOptions o;
    o.isa = runtime::isa_name(isa);
    o.threads = 2;
    runtime::EncoderSession s(m, o);
    EXPECT_EQ(s.run(x.data_ptr<float>(), 64), want) << c.name << " on " << runtime::isa_name(isa) << " ("
                                                    << s.kernel_names()[0] << ")";
  }
  // File round trip.
  const char* dir = std::getenv("LOWBIT_TEST_TMP");
  const std::string path = std::string(dir ? dir : "/tmp") + "/vit_" + c.name + ".lbq";
  runtime::save_encoder_model(m, path);
  runtime::EncoderSession back = runtime::EncoderSession::load(path, ro);
  EXPECT_EQ(back.run(x.data_ptr<float>(), 16), std::vector<float>(want.begin(), want.begin() + 16 * 10)) << c.name;
}

TEST(VitRuntime, W8A8MatchesTheFakeQuantModel) { check_case({"w8a8", 8, 8, 0}); }
TEST(VitRuntime, W4A4MatchesTheFakeQuantModel) { check_case({"w4a4", 4, 4, 0}); }
TEST(VitRuntime, W4Group16A8MatchesTheFakeQuantModel) { check_case({"w4g16a8", 4, 8, 16}); }

TEST(VitRuntime, ConvertRefusesWhatTheRuntimeCannotRun) {
  models::Net fp = models::make_vit(small_vit());
  // A float model converts (float linears; `lowbit convert` asks for a QAT run instead).
  const runtime::EncoderModel m = convert::to_encoder_model(fp, small_vit());
  EXPECT_FALSE(m.input_quantized || m.patch_embed.quantized || m.layers[0].fc2.quantized);
  models::VitOptions other = small_vit();
  other.heads = 4;
  EXPECT_THROW(convert::to_encoder_model(fp, other), Error);  // the run config says another head count
  models::GptOptions g;
  g.layers = 1;
  g.width = 32;
  g.heads = 2;
  g.context = 16;
  models::Net gpt = models::make_gpt(g);
  EXPECT_THROW(convert::to_encoder_model(gpt, small_vit()), Error);  // not vit-tiny
}

}  // namespace
}  // namespace lowbit
