#include "train/train_config.h"

#include <cmath>
#include <mutex>
#include <set>

#include "base/error.h"
#include "base/json_value.h"

namespace lowbit::train {
namespace {

std::set<std::string>& extra_sections() {
  static std::set<std::string> sections{"qat", "ptq", "export", "lm", "vit", "augment", "data", "onnx", "distill"};  // "lm": train/lm_trainer.h, "vit": models/vit.h,
  // "augment": data/augment.h, "onnx": models/imported_net.h, "data": the --data layout and an image folder's class names (trainer.cpp),
  // "distill": train/distillation.h
  return sections;
}
std::mutex& sections_mutex() {
  static std::mutex m;
  return m;
}

template <typename T>
void read_key(const nlohmann::json& j, const char* key, T& field) {
  read_json_key(j, key, field, "training config");
}

const std::vector<const char*>& known_keys() {
  static const std::vector<const char*> keys{
      "model",       "epochs",    "batch_size", "optimizer", "lr",       "weight_decay",        "momentum",
      "nesterov",    "warmup_steps", "warmup_fraction", "clip_grad", "seed", "threads", "data_dir",
      "out_dir",     "val_size",  "max_steps_per_epoch", "eval_batch_size", "device", "sync_bn"};
  return keys;
}

}  // namespace

void register_config_section(const std::string& name) {
  std::lock_guard<std::mutex> lock(sections_mutex());
  extra_sections().insert(name);
}

void TrainConfig::validate() const {
  auto bad = [](const std::string& key, const std::string& value, const std::string& allowed) {
    throw Error("training config: " + key + " = " + value + " is invalid; " + allowed);
  };
  if (epochs < 1) bad("epochs", std::to_string(epochs), "use at least 1");
  if (batch_size < 1) bad("batch_size", std::to_string(batch_size), "use at least 1");
  if (eval_batch_size < 1) bad("eval_batch_size", std::to_string(eval_batch_size), "use at least 1");
  if (optimizer != "adamw" && optimizer != "sgd") bad("optimizer", "'" + optimizer + "'", "use 'adamw' or 'sgd'");
  if (!(lr > 0) || !std::isfinite(lr)) bad("lr", std::to_string(lr), "use a positive learning rate");
  if (!(weight_decay >= 0)) bad("weight_decay", std::to_string(weight_decay), "use a value >= 0");
  if (!(momentum >= 0 && momentum < 1)) bad("momentum", std::to_string(momentum), "use a value in [0, 1)");
  if (warmup_steps < 0) bad("warmup_steps", std::to_string(warmup_steps), "use a value >= 0");
  if (!(warmup_fraction >= 0 && warmup_fraction < 1))
    bad("warmup_fraction", std::to_string(warmup_fraction), "use a value in [0, 1)");
  if (!(clip_grad >= 0)) bad("clip_grad", std::to_string(clip_grad), "use 0 (off) or a positive norm");
  if (threads < 1) bad("threads", std::to_string(threads), "use at least 1");
  if (val_size < 0) bad("val_size", std::to_string(val_size), "use a value >= 0");
  if (max_steps_per_epoch < 0) bad("max_steps_per_epoch", std::to_string(max_steps_per_epoch), "use 0 (whole epoch) or more");
  if (out_dir.empty()) bad("out_dir", "''", "name the output folder");
  if (!is_training_device_name(device))
    bad("device", "'" + device + "'", "use cpu, cuda or cuda:N (N the GPU's index, from 0)");
}

bool is_training_device_name(const std::string& name) {
  if (name == "cpu" || name == "cuda") return true;
  if (name.rfind("cuda:", 0) != 0 || name.size() == 5 || name.size() > 9) return false;
  for (size_t i = 5; i < name.size(); ++i) {
    if (name[i] < '0' || name[i] > '9') return false;
  }
  return true;
}

nlohmann::json to_json(const TrainConfig& c) {
  nlohmann::json j = {
      {"model", c.model},
      {"epochs", c.epochs},
      {"batch_size", c.batch_size},
      {"optimizer", c.optimizer},
      {"lr", c.lr},
      {"weight_decay", c.weight_decay},
      {"momentum", c.momentum},
      {"nesterov", c.nesterov},
      {"warmup_steps", c.warmup_steps},
      {"warmup_fraction", c.warmup_fraction},
      {"clip_grad", c.clip_grad},
      {"seed", c.seed},
      {"threads", c.threads},
      {"data_dir", c.data_dir},
      {"out_dir", c.out_dir},
      {"val_size", c.val_size},
      {"max_steps_per_epoch", c.max_steps_per_epoch},
      {"eval_batch_size", c.eval_batch_size},
      {"device", c.device},
      {"sync_bn", c.sync_bn},
  };
  if (c.extra.is_object()) {
    for (auto it = c.extra.begin(); it != c.extra.end(); ++it) j[it.key()] = it.value();
  }
  return j;
}

TrainConfig config_from_json(const nlohmann::json& j) {
  LOWBIT_CHECK(j.is_object(), "training config must be a JSON object, got: " + j.dump().substr(0, 80));
  TrainConfig c;
  {
    std::lock_guard<std::mutex> lock(sections_mutex());
    for (auto it = j.begin(); it != j.end(); ++it) {
      bool known = false;
      for (const char* k : known_keys()) known = known || it.key() == k;
      if (known) continue;
      if (extra_sections().count(it.key()) != 0) {
        c.extra[it.key()] = it.value();
        continue;
      }
      std::string list;
      for (const char* k : known_keys()) list += (list.empty() ? "" : ", ") + std::string(k);
      throw Error("unknown key '" + it.key() + "' in training config (known keys: " + list + ")");
    }
  }
  read_key(j, "model", c.model);
  read_key(j, "epochs", c.epochs);
  read_key(j, "batch_size", c.batch_size);
  read_key(j, "optimizer", c.optimizer);
  read_key(j, "lr", c.lr);
  read_key(j, "weight_decay", c.weight_decay);
  read_key(j, "momentum", c.momentum);
  read_key(j, "nesterov", c.nesterov);
  read_key(j, "warmup_steps", c.warmup_steps);
  read_key(j, "warmup_fraction", c.warmup_fraction);
  read_key(j, "clip_grad", c.clip_grad);
  read_key(j, "seed", c.seed);
  read_key(j, "threads", c.threads);
  read_key(j, "data_dir", c.data_dir);
  read_key(j, "out_dir", c.out_dir);
  read_key(j, "val_size", c.val_size);
  read_key(j, "max_steps_per_epoch", c.max_steps_per_epoch);
  read_key(j, "eval_batch_size", c.eval_batch_size);
  read_key(j, "device", c.device);  // absent in runs from before --device: cpu
  read_key(j, "sync_bn", c.sync_bn);  // absent in runs from before SyncBN: on (it changes only multi-process runs)
  return c;
}

int64_t steps_per_epoch(const TrainConfig& c, int64_t train_size) {
  int64_t steps = (train_size + c.batch_size - 1) / c.batch_size;
  if (c.max_steps_per_epoch > 0) steps = std::min(steps, c.max_steps_per_epoch);
  return steps;
}

int64_t warmup_steps(const TrainConfig& c, int64_t total_steps) {
  if (c.warmup_steps > 0) return std::min(c.warmup_steps, total_steps);
  return static_cast<int64_t>(std::floor(c.warmup_fraction * static_cast<double>(total_steps)));
}

double lr_factor(int64_t step, int64_t warmup, int64_t total_steps) {
  if (step < warmup) return static_cast<double>(step + 1) / static_cast<double>(warmup);
  const int64_t decay = total_steps - warmup;
  if (decay <= 0 || step >= total_steps) return step >= total_steps ? 0.0 : 1.0;
  const double progress = static_cast<double>(step - warmup) / static_cast<double>(decay);
  return 0.5 * (1.0 + std::cos(M_PI * progress));
}

}  // namespace lowbit::train
