// Running QAT as a job: from an FP32 (or earlier QAT) checkpoint, prepare the net with a QAT
// config, then train it with the same Trainer, checkpoints and metrics as `lowbit train`.
#pragma once
#include <string>

#include "qat/qat_config.h"
#include "train/distillation.h"
#include "train/trainer.h"

namespace lowbit::qat {

// Lets checkpoints with a "qat" section be rebuilt (train::build_net calls prepare). Idempotent;
// the CLI calls it once at start-up (a static initialiser in a static library may be dropped).
void register_checkpoint_hook();

struct QatRunOptions {
  std::string from;        // checkpoint (file or run folder) whose weights QAT starts from
  bool resume = false;     // continue the QAT run in config.out_dir instead
  bool overwrite = false;  // replace an existing checkpoint in config.out_dir
  // Knowledge distillation from an FP32 teacher (train/distillation.h); stored in the run's
  // config, so a resumed run distils from the same teacher.
  train::DistillConfig distill;
  std::ostream* log = nullptr;
};

// `config` is the training configuration of the QAT run (model name is taken from `from`);
// the QAT settings are stored in its "qat" section.
train::TrainResult run_qat(train::TrainConfig config, const QatConfig& qat, const QatRunOptions& options);

}  // namespace lowbit::qat
