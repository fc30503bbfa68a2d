// Resource limits: a small valid model file that asks for a huge activation buffer or an absurd
// amount of arithmetic is refused before anything is allocated, with an error that names the
// file, the limit and how to raise it.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <functional>
#include <random>

#include "base/error.h"
#include "runtime/model_file.h"
#include "runtime/session.h"
#include "test_models.h"

using namespace lowbit::runtime;
using namespace lowbit;

namespace {

// input [1, side, side] -> 1x1 conv (1 -> out channels) output layer: a few hundred bytes on disk.
Model single_conv(int32_t side, int32_t out_channels = 1) {
  std::mt19937 rng(3);
  Model m;
  m.name = "single conv";
  m.in_channels = 1;
  m.in_height = side;
  m.in_width = side;
  m.input = rtest::random_act(rng);
  Op conv = make_conv2d(0, 1, out_channels, 1, 1, 0);
  rtest::fill_layer(rng, conv, {8, quant::Grid::Integer}, m.input, true);
  m.add(conv);
  return m;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

class ResourceLimits_ : public ::testing::Test {
 protected:
  void SetUp() override {
    ::unsetenv("LOWBIT_MAX_ACTIVATION_MB");
    ::unsetenv("LOWBIT_MAX_GMACS");
  }
  void TearDown() override { SetUp(); }
};

TEST_F(ResourceLimits_, HugeInputIsRefusedBeforeAllocationNamingFileAndLimit) {
  const Model m = single_conv(16384);  // 256 MiB of uint8 input + 1 GiB of int32 logits per item
  const std::string path = (std::filesystem::temp_directory_path() / "lowbit_huge_input.lbq").string();
  save_model(m, path);
  EXPECT_LT(std::filesystem::file_size(path), 1024u);
  const std::string e = error_of([&] { Session::load(path, {1, "ref"}); });
  std::filesystem::remove(path);
  EXPECT_NE(e.find(path), std::string::npos) << e;
  EXPECT_NE(e.find("activations per item"), std::string::npos) << e;
  EXPECT_NE(e.find("256.0 MiB"), std::string::npos) << e;  // the default limit
  EXPECT_NE(e.find("LOWBIT_MAX_ACTIVATION_MB"), std::string::npos) << e;
}

TEST_F(ResourceLimits_, ActivationBytesCountValuesLogitsAndConvScratch) {
  const Model m = single_conv(100, 3);
  const auto shapes = validate_model(m);
  // input 100*100 bytes, logits 3 * 100*100 int32, padded conv input widened to int16
  EXPECT_EQ(activation_bytes_per_item(m, shapes), 10000 + 4 * 30000 + 2 * 10000);
  EXPECT_EQ(macs_per_item(m, shapes), 3 * 10000);
}

TEST_F(ResourceLimits_, LimitsCanBeRaisedOrLoweredByOptionsAndEnvironment) {
  const Model m = single_conv(64, 4);  // 64*64 + 4*4*64*64 + 2*64*64 = 77,824 bytes, 16,384 MACs
  SessionOptions o;
  o.isa = "ref";
  o.limits.max_activation_bytes = 77824;
  EXPECT_NO_THROW(Session(m, o));
  o.limits.max_activation_bytes = 77823;
  EXPECT_NE(error_of([&] { Session(m, o); }).find("model 'single conv'"), std::string::npos);
  o.limits.max_activation_bytes = int64_t{1} << 20;
  o.limits.max_macs = 16383;
  const std::string e = error_of([&] { Session(m, o); });
  EXPECT_NE(e.find("multiply-accumulates per item"), std::string::npos) << e;
  EXPECT_NE(e.find("LOWBIT_MAX_GMACS"), std::string::npos) << e;

  ::setenv("LOWBIT_MAX_ACTIVATION_MB", "2048", 1);
  ::setenv("LOWBIT_MAX_GMACS", "3", 1);
  EXPECT_EQ(default_resource_limits().max_activation_bytes, int64_t{2048} << 20);
  EXPECT_EQ(default_resource_limits().max_macs, int64_t{3} << 30);
  ::setenv("LOWBIT_MAX_GMACS", "lots", 1);
  EXPECT_NE(error_of([] { default_resource_limits(); }).find("LOWBIT_MAX_GMACS='lots'"), std::string::npos);
  ::setenv("LOWBIT_MAX_GMACS", "0", 1);
  EXPECT_THROW(default_resource_limits(), Error);
}

}  // namespace
