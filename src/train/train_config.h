// Training configuration: every knob of a run, serialisable to/from JSON so that a checkpoint
// carries the exact configuration that produced it. Also the learning-rate schedule, which is a
// pure function of the configuration and the step.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace lowbit::train {

struct TrainConfig {
  std::string model = "cnn";
  int64_t epochs = 10;
  int64_t batch_size = 128;
  std::string optimizer = "adamw";  // "adamw" or "sgd" (momentum below, nesterov optional)
  double lr = 1e-3;
  double weight_decay = 5e-4;       // applied to conv/linear weights only (see default_param_groups)
  double momentum = 0.9;            // sgd only
  bool nesterov = false;            // sgd only
  int64_t warmup_steps = 0;         // linear warm-up length; when 0, warmup_fraction * total steps
  double warmup_fraction = 0.0;
  double clip_grad = 0.0;           // clip by global L2 norm; 0 = off
  uint64_t seed = 0;
  int64_t threads = 2;              // torch::set_num_threads
  std::string data_dir;             // empty: $LOWBIT_DATA or /usr/share/datasets/fashion-mnist
  std::string out_dir = "runs/run";
  int64_t val_size = 5000;          // last val_size training images hold out for validation
  int64_t max_steps_per_epoch = 0;  // 0 = whole epoch; >0 for quick runs and tests
  int64_t eval_batch_size = 256;
  std::string device = "cpu";       // where training computes: cpu, cuda, cuda:N (train/device.h)
  bool sync_bn = true;              // WORLD_SIZE > 1: batch norm with the global batch's statistics (SyncBN)

  // Sections owned by other parts of lowbit (e.g. "qat"), stored and handed back untouched.
  // Keys here appear at the top level of the JSON next to the fields above.
  nlohmann::json extra = nlohmann::json::object();

  // Checks ranges and names; throws lowbit::Error naming the key, the value and what is allowed.
  void validate() const;
};

// "cpu", "cuda" or "cuda:N" (N a GPU index): the names TrainConfig::device accepts.
bool is_training_device_name(const std::string& name);

nlohmann::json to_json(const TrainConfig& config);
// Unknown keys are errors naming the key, unless registered with register_config_section.
TrainConfig config_from_json(const nlohmann::json& j);

// Lets another part of lowbit own a top-level section of the config (qat/ registers "qat").
// "qat", "ptq", "export", "lm" (gpt-tiny) and "vit" (vit-tiny sizes) are registered already.
void register_config_section(const std::string& name);

// Total optimizer steps of a run and the warm-up length it implies.
int64_t steps_per_epoch(const TrainConfig& config, int64_t train_size);
int64_t warmup_steps(const TrainConfig& config, int64_t total_steps);

// Learning-rate multiplier for optimizer step `step` (0-based) of `total_steps`: linear warm-up
// (step + 1) / warmup up to 1, then cosine decay from 1 to 0 at step == total_steps.
double lr_factor(int64_t step, int64_t warmup, int64_t total_steps);

}  // namespace lowbit::train
