#include "qat/qat_config.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <functional>
#include <fstream>
#include <string>

#include "base/error.h"

namespace lowbit::qat {
namespace {

using nlohmann::json;

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

#define EXPECT_ERROR_HAS(stmt, text)                                        \
  do {                                                                      \
    const std::string msg_ = error_of([&] { stmt; });                       \
    EXPECT_NE(msg_.find(text), std::string::npos) << "message: " << msg_;   \
  } while (0)

TEST(QatConfig, FlagsBuildTheDefaults) {
  QatFlags f;
  f.wbits = 3;
  f.abits = 4;
  f.quantizer = "ste";
  f.granularity = "group";
  f.group_size = 32;
  f.bn_freeze_step = 500;
  const QatConfig c = config_from_flags(f);
  const FakeQuantizeOptions w = c.defaults.weight_options();
  EXPECT_EQ(w.spec.bits, 3);
  EXPECT_EQ(w.spec.granularity, quant::Granularity::PerGroup);
  EXPECT_EQ(w.spec.group_size, 32);
  EXPECT_EQ(w.estimator, Estimator::Ste);
  const FakeQuantizeOptions a = c.defaults.activation_options();
  EXPECT_EQ(a.spec.bits, 4);
  EXPECT_FALSE(a.spec.is_signed);
  EXPECT_EQ(c.bn_freeze_step, 500);
}

TEST(QatConfig, OverridesByGlobLaterWins) {
  const QatConfig c = QatConfig::from_json(json::parse(R"({
    "weight_bits": 4, "act_bits": 4,
    "overrides": [ {"pattern": "conv1", "weight_bits": 8, "act_bits": 8},
                   {"pattern": "fc*", "weight_format": "ternary"},
                   {"pattern": "fc2", "quantize": false} ] })"));
  EXPECT_EQ(c.settings_for("conv1").weight_options().spec.bits, 8);
  EXPECT_EQ(c.settings_for("conv2").weight_options().spec.bits, 4);
  EXPECT_EQ(c.settings_for("fc1").weight_options().spec, quant::QuantSpec::ternary());
  EXPECT_FALSE(c.settings_for("fc2").quantize);
  EXPECT_TRUE(c.settings_for("fc1").quantize);
  EXPECT_TRUE(glob_match("block?_conv*", "block1_conv2"));
  EXPECT_FALSE(glob_match("block?_conv*", "block12_conv2"));
  EXPECT_TRUE(glob_match("*", ""));
}

TEST(QatConfig, RoundTripsThroughJson) {
  QatConfig c = QatConfig::from_json(json::parse(R"({"weight_bits": 2, "weight_format": "seq2",
      "act_observer": "percentile", "observer_percentile": 99.9, "bn_freeze_step": 7,
      "overrides": [{"pattern": "fc2", "weight_bits": 8, "weight_format": "int"}]})"));
  const json j = c.to_json();
  const QatConfig back = QatConfig::from_json(j);
  EXPECT_EQ(back.to_json(), j);
  EXPECT_EQ(back.bn_freeze_step, 7);
  EXPECT_EQ(back.settings_for("fc2").weight_options().spec.bits, 8);
}

TEST(QatConfig, ErrorsNameKeyAndFix) {
  EXPECT_ERROR_HAS(QatConfig::from_json(json::parse(R"({"wbits": 4})")), "unknown key 'wbits'; allowed keys: weight_bits");
  EXPECT_ERROR_HAS(QatConfig::from_json(json::parse(R"({"weight_bits": 9})")), "weight_bits=9");
  EXPECT_ERROR_HAS(QatConfig::from_json(json::parse(R"({"weight_bits": 9})")), "2 to 8 bits");
  EXPECT_ERROR_HAS(QatConfig::from_json(json::parse(R"({"weight_format": "ternary", "weight_symmetric": false})")),
                   "asymmetric ternary");
  EXPECT_ERROR_HAS(QatConfig::from_json(json::parse(R"({"act_bits": 1})")), "binary activations are not supported");
  EXPECT_ERROR_HAS(QatConfig::from_json(json::parse(R"({"weight_bits": "four"})")), "'weight_bits' must be an integer");
  EXPECT_ERROR_HAS(QatConfig::from_json(json::parse(R"({"overrides": [{"weight_bits": 8}]})")), "needs a \"pattern\" key");
  EXPECT_ERROR_HAS(QatConfig::from_json(json::parse(R"({"overrides": [{"pattern": "fc2", "bits": 8}]})")),
                   "override 0: unknown key 'bits'");
  EXPECT_ERROR_HAS(QatConfig::from_json(json::parse(R"({"overrides": [{"pattern": "fc2", "act_bits": 12}]})")),
                   "pattern 'fc2'");
  EXPECT_ERROR_HAS(QatConfig::from_json(json::parse(R"({"weight_estimator": "lsqplus"})")), "weight_symmetric=false");
  QatFlags f;
  f.quantizer = "lsqq";
  EXPECT_ERROR_HAS(config_from_flags(f), "ste, lsq, lsqplus");
  const QatConfig c = QatConfig::from_json(json::parse(R"({"overrides": [{"pattern": "fc3", "weight_bits": 8}]})"));
  EXPECT_ERROR_HAS(c.check_patterns({"conv1", "fc1", "fc2"}), "'fc3' matches no layer of this model; layers are: conv1, fc1, fc2");
  EXPECT_NO_THROW(c.check_patterns({"fc3"}));
}

// Found while writing fuzz/qat_config_fuzz.cpp (UBSan on its reproducer): nlohmann's get<int>()
// casts any number, so {"weight_bits": 1e300} was undefined behaviour and 3.7 silently became 3.
TEST(QatConfig, NumbersMustBeExactlyOfTheKeysType) {
  EXPECT_ERROR_HAS(QatConfig::from_json(json::parse(R"({"weight_bits": 1e300})")), "'weight_bits' must be an integer");
  EXPECT_ERROR_HAS(QatConfig::from_json(json::parse(R"({"weight_bits": 3.7})")), "'weight_bits' must be an integer");
  EXPECT_ERROR_HAS(QatConfig::from_json(json::parse(R"({"act_bits": true})")), "'act_bits' must be an integer");
  EXPECT_ERROR_HAS(QatConfig::from_json(json::parse(R"({"freeze_steps": 1e30})")), "'freeze_steps' must be an integer");
  EXPECT_ERROR_HAS(QatConfig::from_json(json::parse(R"({"weight_group_size": 4294967296})")),
                   "'weight_group_size' must be an integer");
  EXPECT_ERROR_HAS(QatConfig::from_json(json::parse(R"({"quantize": 1})")), "'quantize' must be true or false");
  EXPECT_ERROR_HAS(QatConfig::from_json(json::parse(R"({"winq": {"period": 2.5}})")), "key 'period' must be an integer");
  // Whole numbers written as floats (as Python's json writes 4.0) are read exactly.
  EXPECT_EQ(QatConfig::from_json(json::parse(R"({"weight_bits": 3.0})")).defaults.weight_bits, 3);
  EXPECT_EQ(QatConfig::from_json(json::parse(R"({"observer_momentum": 1})")).defaults.observer_momentum, 1.0);
}

TEST(QatConfig, FromFileNamesTheFile) {
  const char* tmp = std::getenv("LOWBIT_TEST_TMP");
  const std::string dir = tmp ? tmp : "/tmp";
  std::system(("mkdir -p '" + dir + "'").c_str());
  const std::string path = dir + "/qat_config_test.json";
  std::ofstream(path) << R"({"weight_bits": 3, "overrides": [{"pattern": "conv1", "weight_bits": 8}]})";
  EXPECT_EQ(QatConfig::from_file(path).defaults.weight_bits, 3);
  std::ofstream(path) << "{ not json";
  EXPECT_ERROR_HAS(QatConfig::from_file(path), path);
  EXPECT_ERROR_HAS(QatConfig::from_file(dir + "/missing.json"), "cannot open QAT config file");
}

}  // namespace
}  // namespace lowbit::qat
