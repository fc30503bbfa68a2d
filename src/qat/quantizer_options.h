// The options of QAT's quantizers, without LibTorch: gradient estimator, observer, scale
// initialisation, noise and WinQ settings. The modules that use them (fake_quant.h, observers.h,
// fake_quantize_module.h, winq.h) need LibTorch; these plain structs and their parsers do not, so
// the per-layer QAT config (qat_config.h) builds and is fuzzed without it (fuzz/qat_config_fuzz.cpp).
// Meanings of the fields: in the headers of the modules named above.
#pragma once
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "quant/quant_spec.h"

namespace lowbit::qat {

// Gradient estimators of qat::fake_quantize (fake_quant.h).
enum class Estimator { Ste, Lsq, LsqPlus };
// "ste" | "lsq" | "lsqplus"; throws lowbit::Error naming the allowed values.
Estimator estimator_from_string(const std::string& name);
std::string to_string(Estimator e);

// Observer kinds (observers.h).
enum class ObserverKind { MinMax, MovingAverageMinMax, Percentile, Mse };
// "minmax" | "ema" (alias "moving_average") | "percentile" | "mse"; throws naming the allowed values.
ObserverKind observer_kind_from_string(const std::string& name);
std::string to_string(ObserverKind kind);

struct ObserverOptions {
  ObserverKind kind = ObserverKind::MinMax;
  double momentum = 0.1;          // weight of the new batch in the moving average, in (0, 1]
  double percentile = 99.99;      // Percentile: in (50, 100]
  int mse_candidates = 64;        // Mse: number of clipping fractions tried, >= 1
  double mse_min_fraction = 0.1;  // Mse: smallest fraction of the batch range tried, in (0, 1]
  int64_t freeze_after = -1;      // freeze after this many observe() calls; < 0: never

  // Throws lowbit::Error naming the bad field and its allowed range.
  void validate() const;
};

// Initialisation of learned scales (fake_quantize_module.h).
enum class ScaleInit { Auto, Observer, LsqMeanAbs, MeanAbs };
ScaleInit scale_init_from_string(const std::string& name);  // "auto" | "observer" | "lsq" | "meanabs"
std::string to_string(ScaleInit init);

struct FakeQuantizeOptions {
  quant::QuantSpec spec;
  Estimator estimator = Estimator::Ste;
  ObserverOptions observer;
  ScaleInit init = ScaleInit::Auto;
  int64_t init_batches = 1;  // learned scales: batches observed before the scale is set
  // Observe in eval mode too (weights: their range is known without a training batch, so an
  // untrained model can be evaluated quantized).
  bool observe_in_eval = false;
};

// WinQ's noise on a quantizer (fake_quantize_module.h).
enum class NoiseMode { Absolute, Relative };
NoiseMode noise_mode_from_string(const std::string& name);  // "abs" | "rel"
std::string to_string(NoiseMode mode);

struct QuantizerNoise {
  double sigma = 0.0;  // 0: off
  NoiseMode mode = NoiseMode::Absolute;
};

// WinQ's settings (winq.h, docs/winq.md).
struct WinqConfig {
  bool enabled = false;
  // Reset every `period` optimizer steps; 0: no reset; -1 ("auto"): as the released schedules,
  // a quarter of the run when every quantized weight has <= 2 bits, half of it otherwise.
  int64_t period = -1;
  double keep = 0.2;          // a in W <- a W + (1 - a) Q(W); in [0, 1)
  double noise = 1e-3;        // sigma; 0: no noise
  std::string noise_mode = "abs";  // "abs" | "rel"

  // Throws lowbit::Error naming the key / flag and what is allowed.
  void validate() const;
  nlohmann::json to_json() const;
  static WinqConfig from_json(const nlohmann::json& j);  // keys: enabled, period, keep, noise, noise_mode
};

}  // namespace lowbit::qat
