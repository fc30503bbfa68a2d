// --device (train/device.h): names, the CUDA check, and moving optimizer state; the CPU-side
// behaviour a CPU-only build can test (the CLI side is tests/cli/device_test.sh).
#include "train/device.h"

#include <gtest/gtest.h>
#include <torch/cuda.h>

#include <functional>
#include <string>

#include "base/error.h"
#include "train/train_config.h"

namespace lowbit::train {
namespace {

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "<no error>";
}

TEST(Device, NamesAndIndices) {
  EXPECT_TRUE(parse_training_device("cpu").is_cpu());
  EXPECT_EQ(parse_training_device("cuda:3"), torch::Device(torch::kCUDA, 3));
  for (const char* bad : {"gpu", "CPU", "cuda:", "cuda:x", "cuda:-1", "cuda:1a", "", "cpu:0"}) {
    EXPECT_NE(error_of([&] { parse_training_device(bad); }).find("is not a training device; use cpu, cuda or cuda:N"),
              std::string::npos)
        << "'" << bad << "'";
    EXPECT_FALSE(is_training_device_name(bad)) << "'" << bad << "'";
  }
}

TEST(Device, ConfigKeepsTheDeviceAndRejectsBadNames) {
  TrainConfig c;
  EXPECT_EQ(c.device, "cpu");
  c.device = "cuda:1";
  EXPECT_EQ(config_from_json(to_json(c)).device, "cuda:1");
  nlohmann::json old = to_json(TrainConfig{});
  old.erase("device");  // a run from before --device
  EXPECT_EQ(config_from_json(old).device, "cpu");
  c.device = "tpu";
  EXPECT_NE(error_of([&] { c.validate(); }).find("device = 'tpu' is invalid"), std::string::npos);
}

TEST(Device, CudaWithoutCudaIsAClearError) {
  if (torch::cuda::is_available()) GTEST_SKIP() << "CUDA is available here: nothing to refuse";
  EXPECT_NE(error_of([] { usable_training_device("cuda"); })
                .find("--device cuda: this LibTorch build has no CUDA (or no GPU is visible); use --device cpu"),
            std::string::npos);
  EXPECT_TRUE(usable_training_device("cpu").is_cpu());
}

TEST(Device, OptimizerStateMovesWithItsValues) {
  torch::nn::Linear lin(3, 2);
  for (const bool adamw : {true, false}) {
    std::unique_ptr<torch::optim::Optimizer> opt;
    if (adamw) opt = std::make_unique<torch::optim::AdamW>(lin->parameters(), torch::optim::AdamWOptions(0.1));
    else opt = std::make_unique<torch::optim::SGD>(lin->parameters(), torch::optim::SGDOptions(0.1).momentum(0.9));
    lin->forward(torch::ones({4, 3})).sum().backward();
    opt->step();
    ASSERT_FALSE(opt->state().empty());
    move_optimizer_state(*opt, torch::Device(torch::kCPU));  // the CPU-only build can only move to the CPU
    for (auto& entry : opt->state()) {
      if (auto* a = dynamic_cast<torch::optim::AdamWParamState*>(entry.second.get())) {
        EXPECT_TRUE(a->exp_avg().device().is_cpu() && a->exp_avg().abs().sum().item<float>() > 0);
      } else {
        auto* s = dynamic_cast<torch::optim::SGDParamState*>(entry.second.get());
        ASSERT_NE(s, nullptr);
        EXPECT_TRUE(s->momentum_buffer().device().is_cpu());
      }
    }
    CpuForSaving on_cpu(*lin, opt.get());  // a CPU net: nothing moves
    EXPECT_TRUE(module_device(*lin).is_cpu());
  }
}

}  // namespace
}  // namespace lowbit::train
