// Training and evaluating the byte language model (models/gpt.h) with the same configs,
// checkpoints, resume, progress lines and metrics.jsonl as the image models (train/trainer.h).
//
// The config's "lm" section holds the model sizes (GptOptions keys: layers, width, heads,
// context, hidden, rope_base) and the data / schedule settings below. A run takes `steps`
// optimizer steps (or, when 0, config.epochs passes over the training bytes in windows of
// batch_size x context); every `eval_interval` steps (default: a tenth of the run) it measures
// the validation split, appends a line to metrics.jsonl and writes checkpoint.pt. The checkpoint's
// "epoch" counts these intervals. Each step samples batch_size random windows of context + 1
// bytes from the training bytes with a seeded generator stored in the checkpoint, so a resumed
// run continues the same sequence.
#pragma once
#include <string>

#include <nlohmann/json.hpp>

#include "data/text_corpus.h"
#include "models/gpt.h"
#include "train/trainer.h"

namespace lowbit::train {

struct LmSettings {
  models::GptOptions model;
  std::string text;            // --text: "" = the default corpus (data/text_corpus.h)
  int64_t steps = 0;           // 0: config.epochs passes
  int64_t eval_interval = 0;   // 0: max(1, steps / 10)
  double val_fraction = 0.1;   // the last 10% of the bytes
  int64_t eval_windows = 256;  // validation windows (of context + 1 bytes) measured; 0: all

  nlohmann::json to_json() const;  // one flat object (model keys next to the others)
  static LmSettings from_json(const nlohmann::json& j);  // unknown keys are errors
  void validate() const;
};

struct LmEval {
  double loss = 0.0;           // mean cross-entropy per predicted byte, nats
  double bits_per_byte = 0.0;  // loss / ln 2
  double perplexity = 0.0;     // exp(loss)
  double accuracy = 0.0;       // next-byte argmax accuracy
  int64_t bytes = 0;           // predicted bytes
};
// windows: int64 [n, context + 1]; predicts bytes 1.. from the ones before. Eval mode, no grad.
LmEval evaluate_lm(models::Net& net, const torch::Tensor& windows, int64_t batch_size = 64);
nlohmann::json to_json(const LmEval& e);

// The validation windows of a run's config (what `lowbit eval` measures).
torch::Tensor lm_validation_windows(const data::TextCorpus& corpus, const LmSettings& lm);

// The whole `lowbit train` / `lowbit qat` job for config.model == "gpt-tiny".
TrainResult run_lm_training(const TrainConfig& config, const RunOptions& options, const TrainHooks& hooks = {});

}  // namespace lowbit::train
