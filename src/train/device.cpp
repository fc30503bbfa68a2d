#include "train/device.h"

#include <torch/cuda.h>

#include <cstdlib>
#include <mutex>

#include "base/error.h"
#include "train/train_config.h"

namespace lowbit::train {
namespace {

const char* kDeviceDoc = "docs/distributed.md, \"Training on a GPU\"";

bool all_digits(const std::string& s) {
  if (s.empty() || s.size() > 4) return false;
  for (const char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

// LOCAL_RANK when set to a number, else 0 (the distributed context validates it properly).
int local_rank() {
  const char* v = std::getenv("LOCAL_RANK");
  if (v == nullptr || !all_digits(v)) {
    v = std::getenv("RANK");
    if (v == nullptr || !all_digits(v)) return 0;
  }
  return std::atoi(v);
}

// Moves one tensor of an optimizer's state in place (set_data keeps the state's tensor handle).
void move(torch::Tensor& t, const torch::Device& device) {
  if (t.defined() && t.device() != device) t = t.to(device);
}

}  // namespace

torch::Device parse_training_device(const std::string& name) {
  LOWBIT_CHECK(is_training_device_name(name),
               "--device '" + name + "' is not a training device; use cpu, cuda or cuda:N (N the GPU's index, from 0)");
  if (name == "cpu") return torch::Device(torch::kCPU);
  if (name == "cuda") {
    const char* world = std::getenv("WORLD_SIZE");
    const bool data_parallel = world != nullptr && std::string(world) != "1" && std::string(world) != "";
    return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(data_parallel ? local_rank() : 0));
  }
  return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(std::atoi(name.c_str() + 5)));
}

torch::Device usable_training_device(const std::string& name) {
  const torch::Device device = parse_training_device(name);
  if (device.is_cpu()) return device;
  LOWBIT_CHECK(torch::cuda::is_available(),
               "--device " + name + ": this LibTorch build has no CUDA (or no GPU is visible); use --device cpu, or "
               "build lowbit against a CUDA LibTorch (" + std::string(kDeviceDoc) + ")");
  const int64_t count = static_cast<int64_t>(torch::cuda::device_count());
  LOWBIT_CHECK(device.index() < count, "--device " + name + ": GPU " + std::to_string(device.index()) +
                                           " does not exist; this machine shows " + std::to_string(count) +
                                           " (cuda:0 .. cuda:" + std::to_string(count - 1) + ")");
  return device;
}

namespace {
std::mutex device_mutex;
torch::Device process_device(torch::kCPU);
}  // namespace

void set_process_training_device(const torch::Device& device) {
  std::lock_guard<std::mutex> lock(device_mutex);
  process_device = device;
}

torch::Device process_training_device() {
  std::lock_guard<std::mutex> lock(device_mutex);
  return process_device;
}

torch::Device module_device(const torch::nn::Module& module) {
  for (const auto& p : module.parameters()) return p.device();
  for (const auto& b : module.buffers()) return b.device();
  return torch::Device(torch::kCPU);
}

void move_optimizer_state(torch::optim::Optimizer& optimizer, const torch::Device& device) {
  torch::NoGradGuard no_grad;
  for (auto& entry : optimizer.state()) {
    torch::optim::OptimizerParamState* state = entry.second.get();
    if (auto* adamw = dynamic_cast<torch::optim::AdamWParamState*>(state)) {
      torch::Tensor a = adamw->exp_avg(), b = adamw->exp_avg_sq(), c = adamw->max_exp_avg_sq();
      move(a, device);
      move(b, device);
      move(c, device);
      adamw->exp_avg(a);
      adamw->exp_avg_sq(b);
      adamw->max_exp_avg_sq(c);
    } else if (auto* sgd = dynamic_cast<torch::optim::SGDParamState*>(state)) {
      torch::Tensor m = sgd->momentum_buffer();
      move(m, device);
      sgd->momentum_buffer(m);
    } else {
      throw Error("move_optimizer_state: an optimizer state of an unknown kind (lowbit trains with adamw or sgd)");
    }
  }
}

CpuForSaving::CpuForSaving(torch::nn::Module& net, torch::optim::Optimizer* optimizer)
    : net_(net), optimizer_(optimizer), device_(module_device(net)) {
  if (device_.is_cpu()) return;
  net_.to(torch::kCPU);
  if (optimizer_ != nullptr) move_optimizer_state(*optimizer_, torch::Device(torch::kCPU));
}

CpuForSaving::~CpuForSaving() noexcept(false) {
  if (device_.is_cpu()) return;
  net_.to(device_);
  if (optimizer_ != nullptr) move_optimizer_state(*optimizer_, device_);
}

}  // namespace lowbit::train
