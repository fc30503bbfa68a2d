// gpt-tiny (models/gpt.h), the byte corpus reader (data/text_corpus.h), LM training
// (train/lm_trainer.h) and its QAT preparation (qat/quantized_transformer.h). Tiny sizes.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "base/error.h"
#include "data/text_corpus.h"
#include "models/gpt.h"
#include "qat/quantized_layers.h"
#include "qat/quantized_transformer.h"
#include "test_files.h"
#include "train/checkpoint.h"
#include "train/lm_trainer.h"

namespace lowbit {
namespace {

template <typename Fn>
std::string error_of(Fn fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "<no error>";
}

models::GptOptions tiny() {
  models::GptOptions o;
  o.layers = 2;
  o.width = 32;
  o.heads = 4;
  o.context = 16;
  return o;
}

void write_text(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
}

std::string repeating_text(size_t bytes) {
  const std::string unit = "the quick brown fox jumps over the lazy dog. ";
  std::string s;
  while (s.size() < bytes) s += unit;
  return s.substr(0, bytes);
}

TEST(Gpt, DefaultSizeAndShapes) {
  torch::manual_seed(0);
  models::Net big = models::make_gpt(models::GptOptions{});
  int64_t n = 0;
  for (const auto& p : big->parameters()) n += p.numel();
  // embed 256*128 + 4 blocks * (4*128*128 + 3*128*352 + 2*128) + norm 128 + head 128*256
  EXPECT_EQ(n, 256 * 128 + 4 * (4 * 128 * 128 + 3 * 128 * 352 + 2 * 128) + 128 + 128 * 256);
  EXPECT_EQ(models::make_model("gpt-tiny")->nodes().size(), big->nodes().size());
  models::Net net = models::make_gpt(tiny());
  const auto x = torch::randint(0, 256, {3, 16}, torch::kInt64);
  const auto y = net->forward(x);
  EXPECT_EQ(y.sizes(), (std::vector<int64_t>{3, 16, 256}));
  EXPECT_TRUE(torch::isfinite(y).all().item<bool>());
  EXPECT_NO_THROW(net->node("block1_attn_q"));
  EXPECT_NO_THROW(net->node("block0_mlp_up"));
  EXPECT_NE(error_of([] {
              auto o = tiny();
              o.heads = 5;
              models::make_gpt(o);
            }).find("--heads"),
            std::string::npos);
}

// The "lm" section of a run's config: numbers must be exactly of the key's type (no cast of
// 1e300 to an integer, no fraction dropped), as in the training and QAT configs.
TEST(Gpt, LmSectionNumbersAreCheckedNotCast) {
  EXPECT_NE(error_of([] { models::GptOptions::from_json(nlohmann::json{{"layers", 2.5}}); })
                .find("'layers' has the wrong type or is out of range"),
            std::string::npos);
  EXPECT_NE(error_of([] { train::LmSettings::from_json(nlohmann::json{{"steps", 1e300}}); })
                .find("'steps' has the wrong type or is out of range"),
            std::string::npos);
  EXPECT_NE(error_of([] { train::LmSettings::from_json(nlohmann::json{{"text", 3}}); }).find("'text'"),
            std::string::npos);
  EXPECT_EQ(train::LmSettings::from_json(nlohmann::json{{"steps", 40.0}, {"layers", 3}}).steps, 40);
  EXPECT_EQ(train::LmSettings::from_json(nlohmann::json{{"layers", 3}}).model.layers, 3);
}

TEST(Gpt, CausalMaskingFutureBytesDoNotChangeEarlierLogits) {
  torch::manual_seed(1);
  models::Net net = models::make_gpt(tiny());
  net->eval();
  torch::NoGradGuard no_grad;
  auto x = torch::randint(0, 256, {2, 16}, torch::kInt64);
  const auto a = net->forward(x);
  auto x2 = x.clone();
  x2.index_put_({torch::indexing::Slice(), 10}, (x.index({torch::indexing::Slice(), 10}) + 7) % 256);
  const auto b = net->forward(x2);
  using torch::indexing::Slice;
  EXPECT_TRUE(torch::allclose(a.index({Slice(), Slice(0, 10)}), b.index({Slice(), Slice(0, 10)}), 1e-5, 1e-6));
  EXPECT_FALSE(torch::allclose(a.index({Slice(), Slice(10, 16)}), b.index({Slice(), Slice(10, 16)}), 1e-5, 1e-6));
}

TEST(Gpt, RopeDotProductDependsOnlyOnRelativePosition) {
  torch::manual_seed(2);
  const auto q = torch::randn({1, 1, 1, 8}), k = torch::randn({1, 1, 1, 8});
  auto dot = [&](int64_t m, int64_t n) {
    return (models::apply_rope(q, 10000.0, m) * models::apply_rope(k, 10000.0, n)).sum().item<double>();
  };
  EXPECT_NEAR(dot(3, 1), dot(10, 8), 1e-4);
  EXPECT_NEAR(dot(0, 5), dot(20, 25), 1e-4);
  EXPECT_GT(std::abs(dot(3, 1) - dot(3, 2)), 1e-4);  // but it does depend on the offset
  EXPECT_NEAR(models::apply_rope(q, 10000.0, 7).norm().item<double>(), q.norm().item<double>(), 1e-5);  // a rotation
  EXPECT_TRUE(torch::allclose(models::apply_rope(q, 10000.0, 0), q));  // position 0: identity
}

// apply_rope equals the rotation of each pair written out element by element, for calls that
// change the length, offset, base and dtype in turn (its tables are cached between calls).
TEST(Gpt, RopeMatchesPairRotationAcrossCachedTableChanges) {
  torch::manual_seed(3);
  auto reference = [](const torch::Tensor& x, double base, int64_t offset) {
    const int64_t T = x.size(-2), hd = x.size(-1);
    auto y = torch::empty_like(x);
    auto xa = x.accessor<double, 4>();
    auto ya = y.accessor<double, 4>();
    for (int64_t n = 0; n < x.size(0); ++n)
      for (int64_t h = 0; h < x.size(1); ++h)
        for (int64_t t = 0; t < T; ++t)
          for (int64_t i = 0; i < hd / 2; ++i) {
            const double angle = static_cast<double>(offset + t) * std::pow(base, -2.0 * i / hd);
            const double a = xa[n][h][t][2 * i], b = xa[n][h][t][2 * i + 1];
            ya[n][h][t][2 * i] = a * std::cos(angle) - b * std::sin(angle);
            ya[n][h][t][2 * i + 1] = a * std::sin(angle) + b * std::cos(angle);
          }
    return y;
  };
  const auto x = torch::randn({2, 3, 9, 8}, torch::kFloat64);
  struct Call { int64_t T, offset; double base; bool float32; };
  for (const Call c : {Call{9, 0, 10000.0, false}, Call{9, 5, 10000.0, false}, Call{4, 5, 10000.0, false},
                       Call{4, 5, 500.0, false}, Call{9, 2, 10000.0, true}, Call{9, 2, 10000.0, false}}) {
    const auto xs = x.narrow(2, 0, c.T).contiguous();
    const auto got = models::apply_rope(c.float32 ? xs.to(torch::kFloat32) : xs, c.base, c.offset);
    const double tol = c.float32 ? 1e-5 : 1e-12;
    EXPECT_TRUE(torch::allclose(got.to(torch::kFloat64), reference(xs, c.base, c.offset), tol, tol))
        << "T " << c.T << " offset " << c.offset << " base " << c.base << (c.float32 ? " float32" : " float64");
  }
}

TEST(TextCorpus, ClearErrorsForMissingEmptyAndShortCorpora) {
  const std::string dir = testing::fresh_test_dir();
  std::string e = error_of([&] { data::load_text_corpus(dir + "/nope.txt", 16); });
  EXPECT_NE(e.find("nope.txt"), std::string::npos) << e;
  EXPECT_NE(e.find("--text"), std::string::npos) << e;
  write_text(dir + "/empty.txt", "");
  e = error_of([&] { data::load_text_corpus(dir + "/empty.txt", 16); });
  EXPECT_NE(e.find("empty.txt"), std::string::npos) << e;
  EXPECT_NE(e.find("is empty"), std::string::npos) << e;
  EXPECT_NE(e.find("34 bytes"), std::string::npos) << e;
  write_text(dir + "/short.txt", "hello world");
  e = error_of([&] { data::load_text_corpus(dir + "/short.txt", 16); });
  EXPECT_NE(e.find("short.txt"), std::string::npos) << e;
  EXPECT_NE(e.find("holds 11 bytes"), std::string::npos) << e;
  EXPECT_NE(e.find("at least 34 bytes"), std::string::npos) << e;
  EXPECT_NE(e.find("--context"), std::string::npos) << e;
}

TEST(TextCorpus, DeterministicSplitAndWindows) {
  const std::string dir = testing::fresh_test_dir();
  std::string text;
  for (int i = 0; i < 1000; ++i) text.push_back(static_cast<char>('a' + i % 26));
  write_text(dir + "/t.txt", text);
  const auto c = data::load_text_corpus(dir + "/t.txt", 16);
  EXPECT_EQ(c.total_bytes, 1000);
  EXPECT_EQ(c.validation.size(0), 100);  // the last 10%
  EXPECT_EQ(c.train.size(0), 900);
  EXPECT_EQ(c.validation[0].item<int>(), 'a' + 900 % 26);
  const auto c2 = data::load_text_corpus(dir + "/t.txt", 16);
  EXPECT_TRUE(torch::equal(c.train, c2.train));
  at::Generator g1 = at::make_generator<at::CPUGeneratorImpl>(7), g2 = at::make_generator<at::CPUGeneratorImpl>(7);
  const auto w1 = data::random_windows(c.train, 5, 17, g1), w2 = data::random_windows(c.train, 5, 17, g2);
  EXPECT_EQ(w1.sizes(), (std::vector<int64_t>{5, 17}));
  EXPECT_TRUE(torch::equal(w1, w2));
  // Windows are contiguous runs of the text.
  for (int64_t r = 0; r < 5; ++r)
    for (int64_t t = 1; t < 17; ++t)
      EXPECT_EQ((w1[r][t].item<int64_t>() - 'a'), (w1[r][t - 1].item<int64_t>() - 'a' + 1) % 26);
  const auto v = data::contiguous_windows(c.validation, 17);
  EXPECT_EQ(v.sizes(), (std::vector<int64_t>{5, 17}));  // 100 / 17
  EXPECT_EQ(data::contiguous_windows(c.validation, 17, 2).size(0), 2);
  // A folder: plain files without extension in name order, art / ascii-art / .dat / links left out.
  std::filesystem::create_directories(dir + "/f");
  write_text(dir + "/f/b", std::string(40, 'b'));
  write_text(dir + "/f/a", std::string(40, 'a'));
  write_text(dir + "/f/a.dat", "index");
  write_text(dir + "/f/art", "drawing");
  std::filesystem::create_symlink("a", dir + "/f/a.u8");
  const auto f = data::load_text_corpus(dir + "/f", 16);
  ASSERT_EQ(f.files.size(), 2u);
  EXPECT_EQ(f.total_bytes, 80);
  EXPECT_EQ(f.train[0].item<int>(), 'a');
}

TEST(TextCorpus, SplitKeepsAWindowOnEachSideWhateverTheFraction) {
  // 40 bytes, context 16 (window 17): 10% would be 4 bytes, 90% 36; both are clamped to [17, 23].
  EXPECT_EQ(data::validation_bytes(40, 16, 0.1, "t"), 17);
  EXPECT_EQ(data::validation_bytes(40, 16, 0.9, "t"), 23);
  EXPECT_EQ(data::validation_bytes(1000, 16, 0.1, "t"), 100);
  EXPECT_NE(error_of([&] { data::validation_bytes(33, 16, 0.1, "corpus x"); }).find("corpus x holds 33 bytes"),
            std::string::npos);
  EXPECT_NE(error_of([&] { data::validation_bytes(100, 16, 1.0, "t"); }).find("validation fraction"), std::string::npos);
}

train::TrainConfig lm_config(const std::string& dir, const std::string& text, int64_t steps) {
  train::TrainConfig c;
  c.model = "gpt-tiny";
  c.out_dir = dir + "/run";
  c.batch_size = 16;
  c.lr = 1e-2;
  c.weight_decay = 0.0;
  c.clip_grad = 1.0;
  c.warmup_steps = 3;
  c.threads = 2;
  train::LmSettings lm;
  lm.model = tiny();
  lm.model.layers = 1;
  lm.text = text;
  lm.steps = steps;
  lm.eval_interval = 10;
  c.extra["lm"] = lm.to_json();
  return c;
}

TEST(LmTraining, LossFallsOnRepeatingTextAndResumeContinues) {
  const std::string dir = testing::fresh_test_dir();
  write_text(dir + "/rep.txt", repeating_text(4000));
  std::ostringstream log;
  train::RunOptions opts;
  opts.log = &log;
  auto config = lm_config(dir, dir + "/rep.txt", 20);
  const auto r = train::run_lm_training(config, opts);
  ASSERT_EQ(r.epochs.size(), 2u);
  EXPECT_LT(r.epochs.back().val_loss, 0.5 * std::log(256.0)) << log.str();
  EXPECT_LT(r.epochs.back().train_loss, r.epochs.front().train_loss);
  EXPECT_TRUE(std::filesystem::exists(config.out_dir + "/checkpoint.pt"));
  EXPECT_NE(log.str().find("bits/byte"), std::string::npos);
  const auto info = train::load_checkpoint(config.out_dir);
  EXPECT_EQ(info.step, 20);
  EXPECT_EQ(info.config["lm"]["width"], 32);

  // Resume with more steps: continues from step 20.
  config.extra["lm"]["steps"] = 30;
  opts.resume = true;
  const auto r2 = train::run_lm_training(config, opts);
  ASSERT_EQ(r2.epochs.size(), 1u);
  EXPECT_EQ(r2.epochs[0].step, 30);
  EXPECT_EQ(train::load_checkpoint(config.out_dir).step, 30);

  // The checkpoint evaluates the same after loading.
  models::Net net = train::load_net(config.out_dir);
  const auto corpus = data::load_text_corpus(dir + "/rep.txt", 16);
  const auto ev = train::evaluate_lm(net, train::lm_validation_windows(corpus, train::LmSettings::from_json(info.config["lm"])));
  EXPECT_NEAR(ev.loss, r2.epochs[0].val_loss, 1e-6);
  EXPECT_NEAR(ev.bits_per_byte, ev.loss / std::log(2.0), 1e-12);
  EXPECT_NEAR(ev.perplexity, std::exp(ev.loss), 1e-9);

  // A fresh run into the same folder is refused; a too-short text names the minimum.
  opts.resume = false;
  EXPECT_NE(error_of([&] { train::run_lm_training(config, opts); }).find("--overwrite"), std::string::npos);
  write_text(dir + "/short.txt", "abc");
  auto bad = lm_config(dir + "/b", dir + "/short.txt", 5);
  EXPECT_NE(error_of([&] { train::run_lm_training(bad, opts); }).find("at least 34 bytes"), std::string::npos);
}

TEST(LmQat, PrepareQuantizesBlockLinearsButNotEmbeddingOrHead) {
  torch::manual_seed(3);
  models::Net net = models::make_gpt(tiny());
  const auto flags = qat::QatConfig::from_json(
      nlohmann::json::parse(R"({"weight_bits": 4, "weight_granularity": "group", "weight_group_size": 32})"));
  qat::prepare(net, qat::with_language_model_defaults(flags));
  for (const auto& n : net->nodes()) {
    const bool block_linear = n.name.rfind("block", 0) == 0 && n.layer->kind() == "linear";
    if (block_linear) {
      EXPECT_TRUE(std::dynamic_pointer_cast<qat::QLinearActImpl>(n.layer)) << n.name;
    }
  }
  EXPECT_TRUE(std::dynamic_pointer_cast<models::EmbeddingImpl>(net->node("embed").layer));
  EXPECT_FALSE(std::dynamic_pointer_cast<qat::QLinearActImpl>(net->node("head").layer));
  auto q = std::dynamic_pointer_cast<qat::QLinearActImpl>(net->node("block0_attn_q").layer);
  ASSERT_TRUE(q);
  EXPECT_EQ(q->weight_quantizer->options().spec.group_size, 32);
  // Per-token dynamic int8 inputs (qat::QTokenLinear) and no static activation quantizers: the
  // residual adds stay float, as in the decoder runtime.
  EXPECT_TRUE(std::dynamic_pointer_cast<qat::QTokenLinearImpl>(net->node("block1_mlp_down").layer));
  EXPECT_FALSE(q->output_quantizer);
  EXPECT_TRUE(std::dynamic_pointer_cast<models::AddActImpl>(net->node("block0_add1").layer));
  // Trains and runs on byte ids.
  net->train();
  const auto x = torch::randint(0, 256, {2, 16}, torch::kInt64);
  net->forward(x).sum().backward();
  EXPECT_TRUE(q->linear->weight.grad().defined());
  // The per-layer config can quantize the embedding and the head.
  models::Net net2 = models::make_gpt(tiny());
  auto cfg = qat::with_language_model_defaults(flags);
  cfg.overrides.push_back({"embed", {{"quantize", true}}});
  cfg.overrides.push_back({"head", {{"quantize", true}}});
  qat::prepare(net2, cfg);
  EXPECT_TRUE(std::dynamic_pointer_cast<qat::QEmbeddingImpl>(net2->node("embed").layer));
  EXPECT_TRUE(std::dynamic_pointer_cast<qat::QLinearActImpl>(net2->node("head").layer));
  EXPECT_EQ(net2->forward(x).sizes(), (std::vector<int64_t>{2, 16, 256}));
}

}  // namespace
}  // namespace lowbit
