// Checkpoints: the full state of a training run in one file, <out>/checkpoint.pt.
//
// A checkpoint is a torch archive (zip) with a format tag, the model name, the config JSON (with
// any extra sections such as "qat"), the epoch and step, the model's parameters and buffers, the
// optimizer state, and the RNG states (torch's default generator and the shuffle generator), so
// that a resumed run continues exactly where it stopped. It is written atomically; a file that is
// not a lowbit checkpoint gives a lowbit::Error "<path> is not a lowbit checkpoint: ...". After the
// archive comes a 24-byte trailer with its length and CRC-32 (v2): a flipped byte anywhere gives
// "<path> is damaged: ..." on load.
#pragma once
#include <cstdint>
#include <functional>
#include <string>

#include <nlohmann/json.hpp>

#include "models/net.h"
#include "train/checkpoint_trailer.h"  // kCheckpointFormat

namespace lowbit::train {

// A folder means <folder>/checkpoint.pt; anything else is taken as the file itself.
std::string checkpoint_path(const std::string& path_or_dir);

// What a checkpoint says about itself (validated; no weights loaded).
struct CheckpointInfo {
  std::string path;
  std::string model_name;
  nlohmann::json config;  // to_json(TrainConfig) plus extra sections ("qat", ...)
  int64_t epoch = 0;      // completed epochs
  int64_t step = 0;       // optimizer steps taken
};
// A path ending in ".onnx" is an FP32 ONNX model (import/onnx_reader.h) standing in for an FP32
// run: model "onnx", a config with its imported structure, epoch and step 0.
CheckpointInfo load_checkpoint(const std::string& path_or_dir);

// The mutable state a checkpoint holds besides the model. Null pointers are skipped on save and
// on restore (e.g. an evaluation only needs the model).
struct TrainingState {
  torch::optim::Optimizer* optimizer = nullptr;
  at::Generator* shuffle_generator = nullptr;
  int64_t epoch = 0;
  int64_t step = 0;
  nlohmann::json config;
};

// Writes atomically: on any failure the previous file at `path` is left as it was.
void save_checkpoint(const std::string& path, models::Net& net, const TrainingState& state);
// Loads into an existing net (built with build_net from the same config) and the non-null parts
// of `state`; also restores torch's default generator. Errors name the file and the mismatch.
void restore_checkpoint(const std::string& path_or_dir, models::Net& net, TrainingState& state);

// Rebuilding a model from its config. The "qat" section is opaque here: when a config has one,
// build_net calls the hook registered by qat/ (it prepares `net` in place as the QAT run did,
// before the weights are loaded). Without a registered hook such a config is an error.
using QatRebuildHook = std::function<void(models::Net& net, const nlohmann::json& qat_section)>;
void set_qat_rebuild_hook(QatRebuildHook hook);
models::Net build_net(const nlohmann::json& config);

// CRC-32 over every parameter's and buffer's name, shape and bytes, in the net's order: two nets
// with the same value have bitwise identical weights (`lowbit eval --json` prints it as
// "weights_crc32", e.g. to check that a resumed run equals an uninterrupted one).
uint32_t weights_crc32(models::Net& net);

// build_net + the checkpoint's weights, in eval mode (for a ".onnx" path: the imported model).
models::Net load_net(const std::string& path_or_dir);

}  // namespace lowbit::train
