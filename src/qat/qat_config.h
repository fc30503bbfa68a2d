// QatConfig: what prepare() needs to turn a float model into a QAT model. Defaults for weights
// and activations, plus per-layer overrides selected by a glob on node names ("conv1", "fc*",
// "block?_conv2"). Built from CLI-style flags or from JSON; serialises back to the same JSON
// (it is stored inside checkpoints).
//
// JSON keys (top level: any setting, plus "bn_freeze_step" and "overrides"; an override: any
// setting plus "pattern"; later overrides win):
//   weight_bits (int), weight_format ("int" | "ternary" | "binary" | "seq2"),
//   weight_symmetric (bool), weight_granularity ("tensor" | "channel" | "group"),
//   weight_group_size (int), weight_estimator ("auto" | "ste" | "lsq" | "lsqplus"; "auto": ste for
//   "int" weights of 8 bits, lsq below 8 bits and for ternary / binary / seq2),
//   weight_observer ("minmax" | "ema" | "percentile" | "mse"), weight_init ("auto" | "observer" |
//   "lsq" | "meanabs"),
//   act_bits (int), act_signed (bool), act_symmetric (bool), act_granularity ("tensor" |
//   "channel" | "token": per-token dynamic int8 inputs of linear layers and no static activation
//   quantizers, the language-model setting, qat/quantized_transformer.h), act_estimator,
//   act_observer, act_init,
//   observer_momentum, observer_percentile, freeze_steps (observers stop after this many
//   training batches; -1 never), quantize (bool: false leaves the layer in float).
// Weight observers see the current weights each step (minmax, percentile, mse use only the
// current tensor; ema averages with observer_momentum) and also observe in eval mode.
// weight_bits and weight_format: format "int" with weight_bits 2..8; "ternary" (2-bit narrow
// symmetric), "binary" and "seq2" fix the bit width (weight_bits is then ignored in the spec).
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "qat/quantizer_options.h"

namespace lowbit::qat {

struct QuantSettings {
  int weight_bits = 4;
  std::string weight_format = "int";
  bool weight_symmetric = true;
  std::string weight_granularity = "channel";
  int weight_group_size = 128;
  std::string weight_estimator = "auto";
  std::string weight_observer = "minmax";
  std::string weight_init = "auto";
  int act_bits = 8;
  bool act_signed = false;
  bool act_symmetric = false;
  std::string act_granularity = "tensor";
  std::string act_estimator = "ste";
  std::string act_observer = "ema";
  std::string act_init = "auto";
  double observer_momentum = 0.1;
  double observer_percentile = 99.99;
  int64_t freeze_steps = -1;
  bool quantize = true;

  // Validated quantizer options; throw lowbit::Error naming the key and what to do.
  FakeQuantizeOptions weight_options() const;
  FakeQuantizeOptions activation_options() const;
  void validate() const;  // both of the above

  nlohmann::json to_json() const;
  // Applies the keys of `j` that are settings; `where` names the place in errors.
  void apply(const nlohmann::json& j, const std::string& where);
};

struct LayerOverride {
  std::string pattern;
  nlohmann::json settings;  // a subset of the setting keys
};

struct QatConfig {
  QuantSettings defaults;
  // Training step from which BN statistics are frozen and training uses the exact folded
  // arithmetic of the integer runtime; -1 never (batch statistics with approximate folding).
  // Default 0: QAT starts from a trained checkpoint whose running statistics are already good,
  // and batch-statistics folding divides by gamma / sqrt(var + eps), which is unstable for grids
  // without a zero level (binary, seq2) and measured worse at every bit width (docs/RESULTS.md).
  int64_t bn_freeze_step = 0;
  std::vector<LayerOverride> overrides;
  // WinQ (qat/winq.h, docs/winq.md): key "winq", an object; absent in older checkpoints = off.
  WinqConfig winq;

  // The settings of node `name`: defaults, then every matching override in order.
  QuantSettings settings_for(const std::string& name) const;
  // Throws naming the first override pattern that matches none of `node_names` (and listing them).
  void check_patterns(const std::vector<std::string>& node_names) const;

  nlohmann::json to_json() const;
  static QatConfig from_json(const nlohmann::json& j);  // validates everything
  static QatConfig from_file(const std::string& path);  // errors name the file
};

// The CLI flags, one field each (--wbits --abits --quantizer --granularity --group-size
// --weight-format --observer --freeze-steps --bn-freeze-step). --quantizer is the weight
// estimator (auto | ste | lsq | lsqplus).
struct QatFlags {
  int wbits = 4;
  int abits = 8;
  std::string quantizer = "auto";
  std::string granularity = "channel";
  int group_size = 128;
  std::string weight_format = "int";
  std::string observer = "minmax";
  int64_t freeze_steps = -1;
  int64_t bn_freeze_step = 0;
  // WinQ: --winq turns it on with the defaults below; any --winq-* flag also turns it on.
  bool winq = false;
  int64_t winq_period = -1;  // -1 auto, 0 no reset
  double winq_keep = 0.2;
  double winq_noise = 1e-3;
  std::string winq_noise_mode = "abs";
};
QatConfig config_from_flags(const QatFlags& flags);

// Shell-style glob: '*' any run of characters, '?' one character.
bool glob_match(const std::string& pattern, const std::string& name);

}  // namespace lowbit::qat
