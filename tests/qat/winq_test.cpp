// WinQ (qat/winq.h): the interpolation reset keeps the deployed model, leaves optimizer state and
// scales alone; noise exists only in training forwards; a resumed run continues exactly.
#include <gtest/gtest.h>

#include <filesystem>
#include <tuple>

#include "base/atomic_file.h"
#include "base/error.h"
#include "convert/integer_simulation.h"
#include "convert/to_runtime.h"
#include "qat/fake_quant.h"
#include "qat/fake_quant_kernels.h"
#include "qat/quantized_layers.h"
#include "qat/winq.h"
#include "train/checkpoint.h"
#include "train/test_files.h"
#include "train/trainer.h"

namespace lowbit::qat {
namespace {

// Every weight quantizer family: int LSQ, int STE (observed min-max scales), SEQ 2-bit,
// ternary, binary (the last three learn their scales, LSQ-style).
const std::vector<std::pair<std::string, std::string>> kFamilies = {
    {"int4-lsq", R"({"weight_bits": 4, "weight_estimator": "lsq", "act_bits": 8})"},
    {"int4-ste", R"({"weight_bits": 4, "weight_estimator": "ste", "act_bits": 8})"},
    {"seq2", R"({"weight_format": "seq2", "act_bits": 8})"},
    {"ternary", R"({"weight_format": "ternary", "act_bits": 8})"},
    {"binary", R"({"weight_format": "binary", "act_bits": 8})"},
};

models::Net prepared(const std::string& model, const std::string& config, uint64_t seed = 3) {
  torch::manual_seed(seed);
  models::Net net = models::make_model(model);
  prepare(net, QatConfig::from_json(nlohmann::json::parse(config)));
  net->train();
  torch::NoGradGuard no_grad;
  for (int i = 0; i < 2; ++i) net->forward(torch::rand({8, 1, 28, 28}));  // scales initialised
  return net;
}

torch::Tensor quantized(WeightQuantizedLayer& l) {
  FakeQuantizeImpl& fq = l.weight_fake_quant();
  return fake_quantize_forward(l.quantizer_input(), fq.scale.detach(), fq.zero_point.detach(), fq.options().spec);
}

TEST(WinqReset, KeepsQuantizedWeightsExactlyForEveryQuantizerFamily) {
  for (const auto& [family, config] : kFamilies) {
    for (const std::string model : {"cnn", "resnet8"}) {
      models::Net net = prepared(model, config);
      auto layers = weight_quantized_layers(*net);
      ASSERT_GE(layers.size(), 2u) << model;
      std::vector<torch::Tensor> q_before, in_before, latent_before, scales_before;
      for (auto& [name, l] : layers) {
        q_before.push_back(quantized(*l));
        in_before.push_back(l->quantizer_input());
        latent_before.push_back(l->latent_weight().detach().clone());
        scales_before.push_back(l->weight_fake_quant().scale.detach().clone());
      }
      net->eval();
      const torch::Tensor x = torch::rand({4, 1, 28, 28});
      torch::Tensor out_before;
      {
        torch::NoGradGuard no_grad;
        out_before = net->forward(x);
      }
      EXPECT_EQ(interpolation_reset(*net, 0.2), static_cast<int64_t>(layers.size()));
      for (size_t i = 0; i < layers.size(); ++i) {
        const std::string what = family + " " + model + " " + layers[i].first;
        WeightQuantizedLayer& l = *layers[i].second;
        EXPECT_TRUE(torch::equal(quantized(l), q_before[i])) << what;
        EXPECT_TRUE(torch::equal(l.weight_fake_quant().scale.detach(), scales_before[i])) << what;
        // The latent weights moved: W' = 0.2 W + 0.8 Q(W) (in the quantizer's input space).
        EXPECT_FALSE(torch::equal(l.latent_weight().detach(), latent_before[i])) << what;
        EXPECT_TRUE(torch::allclose(l.quantizer_input(), 0.2 * in_before[i] + 0.8 * q_before[i], 1e-5, 1e-6)) << what;
      }
      // The deployed model is unchanged when the scales are fixed (learned scales; the min-max
      // observer of "int4-ste" re-derives its scale from the moved weights, so there Q may change).
      if (family == "int4-ste") continue;
      torch::NoGradGuard no_grad;
      EXPECT_TRUE(torch::equal(net->forward(x), out_before)) << family << " " << model << ": deployed model changed";
    }
  }
}

TEST(WinqReset, LeavesOptimizerStateAndParameterIdentityAlone) {
  models::Net net = prepared("cnn", kFamilies[0].second);
  torch::optim::AdamW opt(net->parameters(), torch::optim::AdamWOptions(1e-3));
  const torch::Tensor x = torch::rand({8, 1, 28, 28});
  const torch::Tensor y = torch::randint(0, 10, {8}, torch::kInt64);
  opt.zero_grad();
  torch::nn::functional::cross_entropy(net->forward(x), y).backward();
  opt.step();
  std::vector<torch::Tensor> state_before;
  std::vector<void*> ptrs;
  for (auto& p : net->parameters()) {
    ptrs.push_back(p.data_ptr());
    auto it = opt.state().find(c10::guts::to_string(p.unsafeGetTensorImpl()));
    ASSERT_NE(it, opt.state().end());
    auto& s = static_cast<torch::optim::AdamWParamState&>(*it->second);
    state_before.push_back(s.exp_avg().clone());
    state_before.push_back(s.exp_avg_sq().clone());
    state_before.push_back(torch::full({1}, static_cast<double>(s.step())));
  }
  std::vector<torch::Tensor> scales;
  for (auto& [n, l] : weight_quantized_layers(*net)) scales.push_back(l->weight_fake_quant().scale.detach().clone());
  interpolation_reset(*net, 0.6);
  size_t k = 0, i = 0;
  for (auto& p : net->parameters()) {
    EXPECT_EQ(p.data_ptr(), ptrs[i++]);
    auto& s = static_cast<torch::optim::AdamWParamState&>(*opt.state().at(c10::guts::to_string(p.unsafeGetTensorImpl())));
    EXPECT_TRUE(torch::equal(s.exp_avg(), state_before[k++]));
    EXPECT_TRUE(torch::equal(s.exp_avg_sq(), state_before[k++]));
    EXPECT_EQ(static_cast<double>(s.step()), state_before[k++].item<double>());
  }
  size_t j = 0;
  for (auto& [n, l] : weight_quantized_layers(*net)) EXPECT_TRUE(torch::equal(l->weight_fake_quant().scale.detach(), scales[j++]));
}

TEST(WinqNoise, OnlyInTrainingForwardsNeverInEvalOrConvert) {
  for (const std::string mode : {"abs", "rel"}) {
    models::Net net = prepared("cnn", kFamilies[3].second);  // ternary
    // Observers stop, so that training forwards differ only by the noise.
    for (auto& m : net->modules()) {
      if (auto* fq = dynamic_cast<FakeQuantizeImpl*>(m.get())) fq->set_observing(false);
    }
    net->eval();
    const torch::Tensor x = torch::rand({4, 1, 28, 28});
    torch::NoGradGuard no_grad;
    const torch::Tensor eval_clean = net->forward(x);
    const runtime::Model clean_model = convert::to_runtime_model(net);
    const torch::Tensor sim_clean = convert::simulate_integer(clean_model, x).int_logits;
    net->train();
    const torch::Tensor train_clean = net->forward(x);

    QuantizerNoise noise;
    noise.sigma = 1e-2;
    noise.mode = noise_mode_from_string(mode);
    set_weight_noise(*net, noise);
    for (auto& [n, l] : weight_quantized_layers(*net)) l->weight_fake_quant().set_noise_seed(42);
    const torch::Tensor train_noisy = net->forward(x);
    EXPECT_FALSE(torch::equal(train_noisy, train_clean)) << mode << ": noise had no effect in training";
    // The same seed gives the same noise.
    for (auto& [n, l] : weight_quantized_layers(*net)) l->weight_fake_quant().set_noise_seed(42);
    EXPECT_TRUE(torch::equal(net->forward(x), train_noisy)) << mode;
    // A second forward without reseeding draws fresh noise.
    EXPECT_FALSE(torch::equal(net->forward(x), train_noisy)) << mode;

    net->eval();
    EXPECT_TRUE(torch::equal(net->forward(x), eval_clean)) << mode << ": noise in eval mode";
    const runtime::Model noisy_model = convert::to_runtime_model(net);
    EXPECT_TRUE(torch::equal(convert::simulate_integer(noisy_model, x).int_logits, sim_clean)) << mode;
  }
}

TEST(WinqNoise, GradientsReachWeightsAndLearnedScales) {
  models::Net net = prepared("mlp", kFamilies[2].second);  // seq2, learned scales
  QuantizerNoise noise;
  noise.sigma = 1e-3;
  set_weight_noise(*net, noise);
  const torch::Tensor x = torch::rand({8, 1, 28, 28});
  const torch::Tensor y = torch::randint(0, 10, {8}, torch::kInt64);
  torch::nn::functional::cross_entropy(net->forward(x), y).backward();
  for (auto& [n, l] : weight_quantized_layers(*net)) {
    ASSERT_TRUE(l->latent_weight().grad().defined()) << n;
    EXPECT_GT(l->latent_weight().grad().abs().sum().item<double>(), 0.0) << n;
    ASSERT_TRUE(l->weight_fake_quant().scale.grad().defined()) << n;
  }
}

// The counter-based generator: standard normal moments, reproducible from (key, index), the
// vector kernel equal to the scalar function bit for bit at any offset, streams of different
// keys (steps, layers) uncorrelated.
TEST(WinqNoise, CounterNormalHasStandardMomentsAndIsAFunctionOfKeyAndIndex) {
  const int64_t n = 1 << 21;
  std::vector<float> zeros(n, 0.0f), eps(n), other(n);
  kernels::add_counter_normal(zeros.data(), eps.data(), n, 1.0f, /*key=*/12345, /*first=*/0);
  kernels::add_counter_normal(zeros.data(), other.data(), n, 1.0f, /*key=*/12346, /*first=*/0);
  double s1 = 0, s2 = 0, s3 = 0, s4 = 0, cross = 0;
  int64_t beyond2 = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double v = eps[i];
    s1 += v;
    s2 += v * v;
    s3 += v * v * v;
    s4 += v * v * v * v;
    cross += v * other[i];
    beyond2 += std::abs(v) > 2.0;
  }
  const double dn = static_cast<double>(n);
  // Standard errors at n = 2^21: mean 7e-4, variance 1e-3, third moment 1.7e-3, fourth 7e-3,
  // correlation 7e-4, tail share 1.4e-4; the bounds are 5 standard errors.
  EXPECT_NEAR(s1 / dn, 0.0, 3.5e-3);
  EXPECT_NEAR(s2 / dn, 1.0, 5e-3);
  EXPECT_NEAR(s3 / dn, 0.0, 8.5e-3);
  EXPECT_NEAR(s4 / dn, 3.0, 3.5e-2);
  EXPECT_NEAR(cross / dn, 0.0, 3.5e-3);
  EXPECT_NEAR(static_cast<double>(beyond2) / dn, 0.0455, 7e-4);  // P(|z| > 2) of N(0, 1)
  // A pure function of (key, index): the scalar function, and the kernel started anywhere, in
  // place, with sigma and an offset input.
  for (int64_t i : {0, 1, 2, 15, 16, 17, 1000, 65535, 1 << 20}) EXPECT_EQ(kernels::counter_normal(12345, i), eps[i]) << i;
  std::vector<float> part(37), base(37, 0.5f);
  kernels::add_counter_normal(base.data(), part.data(), 37, 1.0f, 12345, 999);
  for (int64_t j = 0; j < 37; ++j) EXPECT_EQ(part[j], 0.5f + eps[999 + j]) << j;
  kernels::add_counter_normal(base.data(), base.data(), 37, 0.25f, 12345, 999);
  for (int64_t j = 0; j < 37; ++j) EXPECT_EQ(base[j], 0.5f + 0.25f * eps[999 + j]) << j;
}

// perturb_quantizer_inputs: each element gets sigma (abs) or sigma * its row's scale (rel) times
// eps(key, i), each scale sigma (or sigma * s) times eps(key, numel + p); gradient 1 to both;
// per element mean 0 and standard deviation sigma over keys; the same for 1 and 2 threads.
TEST(WinqNoise, PerturbedInputsHaveTheStatedScaleAndAreReproducible) {
  const quant::QuantSpec spec = quant::QuantSpec::ternary(quant::Granularity::PerChannel);
  const torch::Tensor x = torch::randn({3, 5, 7});
  const torch::Tensor scale = torch::tensor({0.5f, 2.0f, 8.0f});
  const uint64_t key = 77;
  for (bool relative : {false, true}) {
    const double sigma = 1e-2;
    const NoisyQuantizerInputs n = perturb_quantizer_inputs(x, scale, spec, sigma, relative, key);
    const float* xp = x.data_ptr<float>();
    const float* np = n.x.contiguous().data_ptr<float>();
    for (int64_t i = 0; i < x.numel(); ++i) {
      const float s = relative ? static_cast<float>(sigma) * scale[i / 35].item<float>() : static_cast<float>(sigma);
      ASSERT_EQ(np[i], xp[i] + s * kernels::counter_normal(key, i)) << i;
    }
    for (int64_t p = 0; p < 3; ++p) {
      const float s = relative ? static_cast<float>(sigma) * scale[p].item<float>() : static_cast<float>(sigma);
      EXPECT_EQ(n.scale[p].item<float>(), scale[p].item<float>() + s * kernels::counter_normal(key, x.numel() + p)) << p;
    }
  }
  // Gradient 1 to the input and the scales.
  const torch::Tensor xg = x.clone().requires_grad_(true), sg = scale.clone().requires_grad_(true);
  const NoisyQuantizerInputs g = perturb_quantizer_inputs(xg, sg, spec, 0.1, true, key);
  (g.x.sum() + 2.0 * g.scale.sum()).backward();
  EXPECT_TRUE(torch::equal(xg.grad(), torch::ones_like(x)));
  EXPECT_TRUE(torch::equal(sg.grad(), torch::full_like(scale, 2.0)));
  // Per element over 4,000 keys: mean 0, standard deviation sigma * s_row (relative mode).
  const int64_t keys = 4000;
  const torch::Tensor zeros = torch::zeros({3, 5, 7});
  torch::Tensor sum = torch::zeros({3, 5, 7}, torch::kFloat64), sum2 = sum.clone();
  for (int64_t k = 0; k < keys; ++k) {
    const torch::Tensor d = perturb_quantizer_inputs(zeros, scale, spec, 0.1, true, 1000 + k).x.to(torch::kFloat64);
    sum += d;
    sum2 += d * d;
  }
  const torch::Tensor row_std = (0.1 * scale.to(torch::kFloat64)).view({3, 1, 1});
  const torch::Tensor mean = sum / keys, std = (sum2 / keys - mean * mean).sqrt();
  // Standard errors: mean sigma / 63, std sigma / 89; 105 elements, bounds 4.5 standard errors.
  EXPECT_LT((mean / row_std).abs().max().item<double>(), 4.5 / std::sqrt(static_cast<double>(keys)));
  EXPECT_LT((std / row_std - 1.0).abs().max().item<double>(), 4.5 / std::sqrt(2.0 * keys));
  // Thread count does not change the draw.
  const torch::Tensor big = torch::randn({256, 4096});
  const torch::Tensor bs = torch::rand({256}) + 0.5;
  const int threads = torch::get_num_threads();
  torch::set_num_threads(1);
  const torch::Tensor one = perturb_quantizer_inputs(big, bs, spec, 1e-3, false, 5).x;
  torch::set_num_threads(2);
  const torch::Tensor two = perturb_quantizer_inputs(big, bs, spec, 1e-3, false, 5).x;
  torch::set_num_threads(threads);
  EXPECT_TRUE(torch::equal(one, two));
}

// The fused noisy quantizer (one kernel draws the noise and quantizes) equals fake_quantize of
// perturb_quantizer_inputs bit for bit, values and gradients, for every grid, granularity and
// estimator, in both noise modes and for 1 and 2 threads; the noise stream is the same.
TEST(WinqNoise, FusedNoisyFakeQuantizeEqualsPerturbThenQuantize) {
  quant::QuantSpec int4_group = quant::QuantSpec::int_symmetric(4, quant::Granularity::PerGroup);
  int4_group.group_size = 8;
  quant::QuantSpec uint8_row = quant::QuantSpec::uint_asymmetric(8, quant::Granularity::PerChannel);
  const std::vector<std::tuple<std::string, quant::QuantSpec, Estimator>> cases = {
      {"int4 per-channel lsq", quant::QuantSpec::int_symmetric(4, quant::Granularity::PerChannel), Estimator::Lsq},
      {"int4 per-group lsq", int4_group, Estimator::Lsq},
      {"int8 per-tensor ste", quant::QuantSpec::int_symmetric(8), Estimator::Ste},
      {"uint8 per-channel lsq+", uint8_row, Estimator::LsqPlus},
      {"ternary lsq", quant::QuantSpec::ternary(), Estimator::Lsq},
      {"seq2 lsq", quant::QuantSpec::seq2(), Estimator::Lsq},
      {"binary ste", quant::QuantSpec::binary(), Estimator::Ste},
  };
  const int threads = torch::get_num_threads();
  for (const auto& [name, spec, estimator] : cases) {
    // Wide enough to clip at every grid's ends; 48 rows of 40 so the segments split across threads.
    const torch::Tensor x0 = torch::randn({48, 40}) * 0.3;
    const int64_t p = quant::num_qparams(spec, {48, 40});
    const torch::Tensor s0 = torch::rand({p}) * 0.05 + 0.02;
    const torch::Tensor z0 = spec.symmetric ? torch::zeros({p}) : torch::randint(100, 140, {p}).to(torch::kFloat32);
    const torch::Tensor x1 = spec.symmetric ? x0 : x0 + 2.5;  // around the asymmetric grid's zero point
    const torch::Tensor g = torch::randn({48, 40});
    for (bool relative : {false, true}) {
      for (int t : {1, 2}) {
        torch::set_num_threads(t);
        const uint64_t key = 1234 + t;
        const bool learn_zp = estimator == Estimator::LsqPlus;
        torch::Tensor xa = x1.clone().requires_grad_(true), sa = s0.clone().requires_grad_(true),
                      za = z0.clone().requires_grad_(learn_zp);
        const NoisyQuantizerInputs n = perturb_quantizer_inputs(xa, sa, spec, 0.02, relative, key);
        const torch::Tensor ya = fake_quantize(n.x, n.scale, za, spec, estimator);
        (ya * g).sum().backward();
        torch::Tensor xb = x1.clone().requires_grad_(true), sb = s0.clone().requires_grad_(true),
                      zb = z0.clone().requires_grad_(learn_zp);
        const torch::Tensor yb = noisy_fake_quantize(xb, sb, zb, spec, estimator, 0.02, relative, key);
        (yb * g).sum().backward();
        const std::string what = name + (relative ? " rel" : " abs") + ", " + std::to_string(t) + " threads";
        EXPECT_TRUE(torch::equal(ya, yb)) << what;
        EXPECT_FALSE(torch::equal(yb, fake_quantize(x1, s0, z0, spec, estimator))) << what << ": no noise";
        EXPECT_TRUE(torch::equal(xa.grad(), xb.grad())) << what;
        if (estimator != Estimator::Ste) {
          ASSERT_TRUE(sb.grad().defined()) << what;
          EXPECT_TRUE(torch::equal(sa.grad(), sb.grad())) << what;
        }
        if (learn_zp) {
          ASSERT_TRUE(zb.grad().defined()) << what;
          EXPECT_TRUE(torch::equal(za.grad(), zb.grad())) << what;
        }
      }
    }
  }
  torch::set_num_threads(threads);
}

// qat::Winq keys the noise by (run seed, step, layer): the same step reproduces a training
// forward exactly, another step or another seed does not.
TEST(WinqNoise, ReproducibleFromSeedAndStep) {
  models::Net net = prepared("cnn", kFamilies[3].second);  // ternary
  for (auto& m : net->modules()) {
    if (auto* fq = dynamic_cast<FakeQuantizeImpl*>(m.get())) fq->set_observing(false);
  }
  WinqConfig c;
  c.enabled = true;
  c.period = 0;
  c.noise = 1e-2;
  const torch::Tensor x = torch::rand({4, 1, 28, 28});
  torch::NoGradGuard no_grad;
  auto forward_at = [&](uint64_t seed, int64_t step) {
    Winq w(c, seed);
    w.before_step(*net, step, 100);
    return net->forward(x);
  };
  const torch::Tensor a = forward_at(9, 5);
  EXPECT_TRUE(torch::equal(forward_at(9, 5), a));
  EXPECT_FALSE(torch::equal(forward_at(9, 6), a));
  EXPECT_FALSE(torch::equal(forward_at(10, 5), a));
}

TEST(WinqConfig, JsonRoundTripAndClearErrors) {
  QatFlags f;
  f.winq = true;
  f.winq_period = 7;
  f.winq_keep = 0.6;
  f.winq_noise = 2e-3;
  f.winq_noise_mode = "rel";
  const QatConfig c = config_from_flags(f);
  const QatConfig back = QatConfig::from_json(c.to_json());
  EXPECT_TRUE(back.winq.enabled);
  EXPECT_EQ(back.winq.period, 7);
  EXPECT_DOUBLE_EQ(back.winq.keep, 0.6);
  EXPECT_DOUBLE_EQ(back.winq.noise, 2e-3);
  EXPECT_EQ(back.winq.noise_mode, "rel");
  // Older configs have no "winq": off.
  EXPECT_FALSE(QatConfig::from_json(nlohmann::json::parse(R"({"weight_bits": 4})")).winq.enabled);
  auto error_of = [](const std::string& j) {
    try {
      QatConfig::from_json(nlohmann::json::parse(j));
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("<no error>");
  };
  EXPECT_NE(error_of(R"({"winq": {"keep": 1.5}})").find("--winq-keep"), std::string::npos);
  EXPECT_NE(error_of(R"({"winq": {"noise_mode": "loud"}})").find("abs"), std::string::npos);
  EXPECT_NE(error_of(R"({"winq": {"period": -3}})").find("--winq-period"), std::string::npos);
  EXPECT_NE(error_of(R"({"winq": {"perod": 3}})").find("unknown key 'perod'"), std::string::npos);
}

TEST(WinqSchedule, AutoPeriodFollowsTheReleasedSchedules) {
  WinqConfig c;
  c.period = -1;
  models::Net low = prepared("mlp", kFamilies[4].second);  // binary
  models::Net four = prepared("mlp", kFamilies[0].second);
  EXPECT_EQ(resolve_winq_period(c, *low, 400), 100);
  EXPECT_EQ(resolve_winq_period(c, *four, 400), 200);
  c.period = 0;
  EXPECT_EQ(resolve_winq_period(c, *low, 400), 0);
}

// Synthetic learnable data (the label picks a bright band).
data::Dataset toy(int64_t n) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(5);
  data::Dataset d;
  d.labels = torch::arange(n, torch::kInt64).remainder(10);
  d.images = torch::rand({n, 1, 28, 28}, gen) * 0.1;
  for (int64_t i = 0; i < n; ++i) d.images[i][0].narrow(0, 2 * (i % 10), 3).add_(0.8);
  return d;
}

TEST(WinqTraining, ResumedRunContinuesExactlyAndResetsOnSchedule) {
  const std::string dir = testing::fresh_test_dir();
  QatFlags f;
  f.weight_format = "ternary";
  f.winq = true;
  f.winq_period = 3;  // resets after steps 3 and 6 (of 8): one in each epoch, across the boundary
  f.winq_noise = 1e-2;
  const QatConfig qc = config_from_flags(f);
  train::TrainConfig c;
  c.model = "mlp";  // model-agnostic; the smallest zoo model keeps the test fast
  c.epochs = 2;
  c.batch_size = 16;
  c.lr = 1e-3;
  c.seed = 11;
  c.extra["qat"] = qc.to_json();
  const data::Dataset d = toy(64);
  const data::Dataset none{d.images.narrow(0, 0, 0), d.labels.narrow(0, 0, 0)};
  auto fresh = [&] {
    torch::manual_seed(2);
    models::Net net = models::make_model("mlp");
    prepare(net, qc);
    return net;
  };
  auto run = [&](const std::string& out, bool resume, int64_t stop, int64_t* resets) {
    train::TrainConfig cc = c;
    cc.out_dir = out;
    train::TrainHooks hooks;
    Winq winq(qc.winq, cc.seed);
    winq.install(hooks);
    train::Trainer t(fresh(), cc, hooks);
    t.set_log(nullptr);
    if (resume) t.resume(out);
    t.fit(d, none, nullptr, stop);
    if (resets) *resets = winq.resets();
    return t.net();
  };
  int64_t resets_full = 0, resets_first = 0, resets_second = 0;
  models::Net full = run(dir + "/full", false, 0, &resets_full);
  run(dir + "/split", false, 1, &resets_first);
  models::Net resumed = run(dir + "/split", true, 0, &resets_second);
  EXPECT_EQ(resets_full, 2);
  EXPECT_EQ(resets_first, 1);
  EXPECT_EQ(resets_second, 1);
  const auto a = full->named_parameters(), b = resumed->named_parameters();
  for (const auto& item : a) {
    EXPECT_TRUE(torch::equal(item.value(), b[item.key()])) << item.key() << " differs after resume";
  }
  // config.json records the WinQ settings.
  const std::string cfg = read_whole_file(dir + "/full/config.json");
  EXPECT_NE(cfg.find("\"winq\""), std::string::npos);
  EXPECT_NE(cfg.find("\"period\": 3"), std::string::npos);
}

}  // namespace
}  // namespace lowbit::qat
