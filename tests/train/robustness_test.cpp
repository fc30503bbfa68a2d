// Corruptions (data/corruptions.h) and robustness evaluation (analysis/robustness.h).
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <set>

#include "analysis/robustness.h"
#include "base/error.h"
#include "convert/agreement.h"
#include "data/corruptions.h"
#include "runtime/reference_cnn.h"

using namespace lowbit;

namespace {

// Synthetic 28x28 images: a bright textured rectangle on black, at varying places.
data::RawImages synthetic(int64_t count, uint32_t seed) {
  data::RawImages r;
  r.count = count;
  r.rows = r.cols = 28;
  r.pixels.assign(static_cast<size_t>(count * 28 * 28), 0);
  std::mt19937 rng(seed);
  for (int64_t n = 0; n < count; ++n) {
    const int y0 = 4 + rng() % 6, x0 = 4 + rng() % 6, h = 10 + rng() % 8, w = 8 + rng() % 8;
    for (int y = y0; y < y0 + h; ++y)
      for (int x = x0; x < x0 + w; ++x) r.pixels[static_cast<size_t>((n * 28 + y) * 28 + x)] = 120 + rng() % 120;
    r.labels.push_back(static_cast<uint8_t>(n % 10));
  }
  return r;
}

double mean_abs_diff(const std::vector<uint8_t>& a, const std::vector<uint8_t>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += std::abs(int(a[i]) - int(b[i]));
  return s / double(a.size());
}

}  // namespace

TEST(Corruptions, EveryCorruptionChangesImagesMoreAtHigherSeverity) {
  const data::RawImages clean = synthetic(32, 1);
  for (const std::string& name : data::corruption_names()) {
    double previous = 0;
    for (int s = 1; s <= 5; ++s) {
      std::vector<uint8_t> p = clean.pixels;
      data::corrupt_images(p.data(), clean.count, 1, 28, 28, name, s, 7);
      const double d = mean_abs_diff(p, clean.pixels);
      EXPECT_GT(d, previous) << name << " severity " << s;
      previous = d;
    }
  }
}

TEST(Corruptions, SameSeedSameBytesOtherSeedOtherBytes) {
  const data::RawImages clean = synthetic(8, 2);
  const std::set<std::string> deterministic = {"gaussian_blur", "contrast", "brightness"};  // no randomness
  for (const std::string& name : data::corruption_names()) {
    std::vector<uint8_t> a = clean.pixels, b = clean.pixels, c = clean.pixels;
    data::corrupt_images(a.data(), 8, 1, 28, 28, name, 3, 11);
    data::corrupt_images(b.data(), 8, 1, 28, 28, name, 3, 11);
    data::corrupt_images(c.data(), 8, 1, 28, 28, name, 3, 12);
    EXPECT_EQ(a, b) << name;
    if (deterministic.count(name)) {
      EXPECT_EQ(a, c) << name;
    } else {
      EXPECT_NE(a, c) << name;
    }
  }
}

TEST(Corruptions, KnownValuesOfTheSimpleOnes) {
  // brightness severity 2 adds 0.2 (51 levels) and clamps; contrast severity 5 pulls to the mean.
  std::vector<uint8_t> p = {0, 100, 250, 255};
  data::corrupt_images(p.data(), 1, 1, 2, 2, "brightness", 2);
  EXPECT_EQ(p, (std::vector<uint8_t>{51, 151, 255, 255}));
  std::vector<uint8_t> q = {0, 0, 200, 200};  // mean 100
  data::corrupt_images(q.data(), 1, 1, 2, 2, "contrast", 5);
  EXPECT_EQ(q, (std::vector<uint8_t>{95, 95, 105, 105}));  // 100 -+ 100 * 0.05
  // translate keeps pixels, moved by the severity in whole pixels: the sum can only drop (edges).
  const data::RawImages img = synthetic(1, 3);
  std::vector<uint8_t> t = img.pixels;
  data::corrupt_images(t.data(), 1, 1, 28, 28, "translate", 1);
  std::multiset<uint8_t> before(img.pixels.begin(), img.pixels.end()), after(t.begin(), t.end());
  before.erase(0);
  after.erase(0);
  EXPECT_EQ(before, after);  // the rectangle sits away from the border: every non-zero pixel survives
}

TEST(Corruptions, ClearErrorsAndLists) {
  std::vector<uint8_t> p(4);
  try {
    data::corrupt_images(p.data(), 1, 1, 2, 2, "fog", 1);
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("elastic"), std::string::npos) << e.what();  // lists the known ones
  }
  EXPECT_THROW(data::corrupt_images(p.data(), 1, 1, 2, 2, "contrast", 6), Error);
  EXPECT_EQ(data::parse_corruption_list("all").size(), 10u);
  EXPECT_EQ(data::parse_corruption_list("rotate,elastic"), (std::vector<std::string>{"rotate", "elastic"}));
  EXPECT_THROW(data::parse_corruption_list("rotate,fog"), Error);
  EXPECT_EQ(data::parse_severity_list("1-5"), (std::vector<int>{1, 2, 3, 4, 5}));
  EXPECT_EQ(data::parse_severity_list("1,3,5"), (std::vector<int>{1, 3, 5}));
  EXPECT_THROW(data::parse_severity_list("0"), Error);
  EXPECT_THROW(data::parse_severity_list("4-2"), Error);
  EXPECT_THROW(data::parse_severity_list("x"), Error);
}

TEST(Robustness, ExpectedCalibrationErrorByHand) {
  // Bin [0.6, 0.667): confidences 0.6, 0.6 with 1 hit -> |1 - 1.2| = 0.2; bin [0.933, 1): 0.95, 0.95
  // both hits -> |2 - 1.9| = 0.1. ECE = (0.2 + 0.1) / 4.
  EXPECT_NEAR(analysis::expected_calibration_error({0.6, 0.6, 0.95, 0.95}, {1, 0, 1, 1}), 0.075, 1e-12);
  EXPECT_NEAR(analysis::expected_calibration_error({1.0, 1.0}, {1, 1}), 0.0, 1e-12);  // 1.0 falls in the last bin
  EXPECT_EQ(analysis::expected_calibration_error({}, {}), 0.0);
}

TEST(Robustness, RuntimeEvaluatorSeesTheSameImagesAndAgreesWithTheRuntimeEval) {
  const data::RawImages split = synthetic(12, 4);
  runtime::Model m = runtime::random_reference_cnn(5, 4);
  m.input.scale = 1.0f / 255.0f;
  m.input.zero_point = 0;
  runtime::Session session(m);  // every kernel level gives the same bits; the default one is fastest
  std::vector<std::vector<uint8_t>> seen;  // the images each evaluation received
  const analysis::ShiftEvaluator runtime_eval = analysis::runtime_evaluator(session, 16);
  const auto recording = [&](const data::Dataset& d) {
    const torch::Tensor bytes = d.images.mul(255.0f).round().to(torch::kUInt8).contiguous();
    seen.emplace_back(bytes.data_ptr<uint8_t>(), bytes.data_ptr<uint8_t>() + bytes.numel());
    const analysis::ShiftResult r = runtime_eval(d);
    const convert::RuntimeEval ref = convert::evaluate_runtime(session, d, 7);
    EXPECT_DOUBLE_EQ(r.accuracy, ref.accuracy);
    EXPECT_NEAR(r.loss, ref.loss, 1e-9);
    return r;
  };
  const analysis::RobustnessResult a = analysis::evaluate_robustness(split, {"rotate", "shot_noise"}, {1, 4}, 3, recording);
  ASSERT_EQ(seen.size(), 5u);  // clean + 2 corruptions x 2 severities
  EXPECT_EQ(seen[0], split.pixels);
  std::vector<uint8_t> want = split.pixels;
  data::corrupt_images(want.data(), 12, 1, 28, 28, "shot_noise", 4, 3);
  EXPECT_EQ(seen[4], want);
  ASSERT_EQ(a.shifted.size(), 4u);
  EXPECT_EQ(a.shifted[3].corruption, "shot_noise");
  EXPECT_EQ(a.shifted[3].severity, 4);
  double mean = 0;
  for (const auto& s : a.shifted) mean += s.accuracy / 4;
  EXPECT_NEAR(a.mean_corruption_accuracy, mean, 1e-12);
  const nlohmann::json j = a.to_json();
  EXPECT_EQ(j["shifted"].size(), 4u);
  EXPECT_NE(a.table().find("shot_noise"), std::string::npos);
}
