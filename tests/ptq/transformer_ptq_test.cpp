// PTQ on the transformers: RTN and GPTQ (per channel and per group) on a tiny vit-tiny and a tiny
// gpt-tiny write checkpoints that load back (as `lowbit eval` loads them) and compute the same;
// grouped GPTQ's layer error is at most grouped round-to-nearest's.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "image_batches.h"
#include "models/gpt.h"
#include "models/vit.h"
#include "ptq/calibration.h"
#include "ptq/ptq.h"
#include "ptq/ptq_run.h"
#include "qat/qat_run.h"
#include "qat/quantized_layers.h"
#include "train/checkpoint.h"
#include "train/lm_trainer.h"
#include "train/test_files.h"

namespace lowbit::ptq {
namespace {

models::VitOptions tiny_vit() { return {/*layers=*/1, /*width=*/32, /*heads=*/2, /*patch=*/7, /*hidden=*/64}; }


// Saves an FP32 checkpoint of `net` with the training config `tc` into dir/fp.
void save_fp(const std::string& dir, models::Net& net, const train::TrainConfig& tc) {
  train::TrainingState st;
  st.config = train::to_json(tc);
  std::filesystem::create_directories(dir + "/fp");
  train::save_checkpoint(dir + "/fp/checkpoint.pt", net, st);
}

TEST(TransformerPtq, VitRtnAndGptqCheckpointsLoadAndAgree) {
  qat::register_checkpoint_hook();
  const std::string dir = lowbit::testing::fresh_test_dir();
  torch::manual_seed(1);
  models::Net fp = models::make_vit(tiny_vit());
  train::TrainConfig tc;
  tc.model = "vit-tiny";
  tc.extra["vit"] = tiny_vit().to_json();
  save_fp(dir, fp, tc);
  const auto calib = testing::image_batches(2, 16, 2);
  const auto test = testing::image_batches(1, 8, 3)[0];
  for (const auto& [method, group] : std::vector<std::pair<PtqMethod, int>>{{PtqMethod::Rtn, 0}, {PtqMethod::Gptq, 0}, {PtqMethod::Gptq, 16}}) {
    PtqOptions o;
    o.method = method;
    const qat::QatConfig config = ptq_config(4, 8, 2, "minmax", group);
    PtqReport report;
    models::Net q = quantize_checkpoint(dir + "/fp", config, calib, o, &report);
    ASSERT_EQ(report.layers.size(), 1u + 6u + 1u);  // patch_embed, q k v o fc1 fc2, head
    const std::string out = dir + "/q_" + to_string(method) + std::to_string(group);
    save_ptq_checkpoint(out, q, dir + "/fp", config, {{"method", to_string(method)}}, false);
    models::Net loaded = train::load_net(out);  // what `lowbit eval --checkpoint` does
    torch::NoGradGuard no_grad;
    q->eval();
    const auto y = q->forward(test);
    EXPECT_EQ(y.sizes(), (std::vector<int64_t>{8, 10}));
    EXPECT_TRUE(torch::equal(y, loaded->forward(test))) << out;
    auto qq = std::dynamic_pointer_cast<qat::QLinearActImpl>(loaded->node("block0_attn_v").layer);
    ASSERT_TRUE(qq);
    EXPECT_EQ(qq->weight_quantizer->options().spec.granularity,
              group > 0 ? quant::Granularity::PerGroup : quant::Granularity::PerChannel);
  }
}

TEST(TransformerPtq, GroupedGptqErrorAtMostGroupedRtn) {
  torch::manual_seed(4);
  models::VitOptions o = tiny_vit();
  o.width = 64;
  o.hidden = 128;
  models::Net net = models::make_vit(o);
  const auto calib = testing::image_batches(2, 16, 5);
  PtqOptions opts;
  opts.method = PtqMethod::Gptq;
  const PtqReport r = quantize_post_training(net, ptq_config(3, 8, 2, "minmax", 32), calib, opts);
  int checked = 0;
  for (const auto& l : r.layers) {
    EXPECT_EQ(l.method, "gptq") << l.name;
    EXPECT_LE(l.relative_error, l.rtn_relative_error + 1e-9) << l.name;
    checked += l.name.find("block0_") == 0;
  }
  EXPECT_EQ(checked, 6);
}

TEST(TransformerPtq, GptTinyCalibratesOnTextAndKeepsEmbeddingAndHeadFloat) {
  qat::register_checkpoint_hook();
  const std::string dir = lowbit::testing::fresh_test_dir();
  {
    std::ofstream text(dir + "/t.txt");
    for (int i = 0; i < 60; ++i) text << "line " << i << ": the quick brown fox jumps over the lazy dog.\n";
  }
  torch::manual_seed(6);
  models::GptOptions g;
  g.layers = 1;
  g.width = 32;
  g.heads = 2;
  g.context = 16;
  models::Net fp = models::make_gpt(g);
  train::TrainConfig tc;
  tc.model = "gpt-tiny";
  train::LmSettings lm;
  lm.model = g;
  lm.text = dir + "/t.txt";
  lm.eval_windows = 8;
  tc.extra["lm"] = lm.to_json();
  save_fp(dir, fp, tc);

  // The calibration windows are deterministic by seed and differ between seeds.
  const auto corpus = data::load_text_corpus(lm.text, 16);
  const auto a = text_calibration_batches(corpus.train, 2, 4, 16, 7), b = text_calibration_batches(corpus.train, 2, 4, 16, 7);
  const auto c = text_calibration_batches(corpus.train, 2, 4, 16, 8);
  ASSERT_EQ(a.size(), 2u);
  EXPECT_EQ(a[0].sizes(), (std::vector<int64_t>{4, 16}));
  EXPECT_TRUE(torch::equal(a[1], b[1]));
  EXPECT_FALSE(torch::equal(a[0], c[0]));

  for (const auto& [method, group] : std::vector<std::pair<std::string, int>>{{"rtn", 0}, {"gptq", 16}}) {
    PtqRunOptions o;
    o.from = dir + "/fp";
    o.out = dir + "/" + method;
    o.wbits = 4;
    o.group_size = group;
    o.calib_batches = 2;
    o.calib_batch_size = 4;
    o.seed = 7;
    o.ptq.method = method_from_string(method);
    const PtqRunResult r = run_ptq(o);
    EXPECT_TRUE(r.language_model);
    EXPECT_GT(r.fp_bits_per_byte, 0.0);
    EXPECT_TRUE(std::isfinite(r.ptq_bits_per_byte));
    EXPECT_EQ(r.report.layers.size(), 7u);  // q k v o gate up down; embed and head stay float
    models::Net loaded = train::load_net(o.out);  // what `lowbit eval --checkpoint` does
    EXPECT_TRUE(std::dynamic_pointer_cast<models::EmbeddingImpl>(loaded->node("embed").layer));
    EXPECT_FALSE(std::dynamic_pointer_cast<qat::QLinearActImpl>(loaded->node("head").layer));
    EXPECT_TRUE(std::dynamic_pointer_cast<qat::QLinearActImpl>(loaded->node("block0_mlp_down").layer));
    const auto info = train::load_checkpoint(o.out);
    EXPECT_EQ(info.config["ptq"]["group_size"], group);
    EXPECT_EQ(info.config["ptq"]["calib_seed"], 7);
    const auto ev = train::evaluate_lm(loaded, train::lm_validation_windows(corpus, train::LmSettings::from_json(info.config["lm"])));
    EXPECT_NEAR(ev.bits_per_byte, r.ptq_bits_per_byte, 1e-9) << method;
    EXPECT_TRUE(std::filesystem::exists(o.out + "/ptq.json"));
  }
}

}  // namespace
}  // namespace lowbit::ptq
