// Where a training run computes (--device cpu | cuda | cuda:N, TrainConfig::device): parsing the
// name, checking that this process can use it, and keeping a run's state on it. Checkpoints are
// always written with CPU tensors (CpuForSaving), so a run trained on a GPU loads and resumes on a
// machine without one, and the reverse. docs/distributed.md, "Training on a GPU".
#pragma once
#include <string>

#include "torch_pch.h"

namespace lowbit::train {

// "cpu", "cuda" or "cuda:N". "cuda" is cuda:LOCAL_RANK in a data-parallel job (one GPU per rank
// on a host, as torchrun), else cuda:0. Throws lowbit::Error for any other name, saying what is
// allowed. Syntax only: no CUDA call.
torch::Device parse_training_device(const std::string& name);

// parse_training_device, then checks that this LibTorch has CUDA and the GPU exists; the error says
// to use --device cpu or a CUDA build of lowbit. Call before any work or file is written.
torch::Device usable_training_device(const std::string& name);

// The device this process trains on, set by the trainers (and run_qat) before the process group
// is made: distributed.cpp then adds an NCCL group for CUDA tensors where LibTorch has NCCL.
// CPU until set.
void set_process_training_device(const torch::Device& device);
torch::Device process_training_device();

// The device of a module's first parameter (or buffer); CPU for a module with neither.
torch::Device module_device(const torch::nn::Module& module);

// Moves the optimizer's per-parameter state (AdamW moments, SGD momentum) to `device`; the
// parameters themselves move with their module (Module::to keeps their identity).
void move_optimizer_state(torch::optim::Optimizer& optimizer, const torch::Device& device);

// Scope that moves a net and its optimizer state to the CPU (when they are elsewhere) and back on
// exit, so that checkpoints hold CPU tensors whatever device trained them.
class CpuForSaving {
 public:
  CpuForSaving(torch::nn::Module& net, torch::optim::Optimizer* optimizer);
  ~CpuForSaving() noexcept(false);  // moving back can fail (e.g. GPU memory)
  CpuForSaving(const CpuForSaving&) = delete;
  CpuForSaving& operator=(const CpuForSaving&) = delete;

 private:
  torch::nn::Module& net_;
  torch::optim::Optimizer* optimizer_;
  torch::Device device_;
};

}  // namespace lowbit::train
