// Definitions for quantizer_options.h: parsers and validation, no LibTorch.
#include "qat/quantizer_options.h"

#include <cmath>

#include "base/error.h"
#include "base/json_value.h"

namespace lowbit::qat {
namespace {

template <typename T>
T get_key(const nlohmann::json& j, const std::string& key, const char* what) {
  if (const std::optional<T> x = json_value_as<T>(j.at(key))) return *x;
  throw Error("QAT config 'winq': key '" + key + "' must be " + what + " (got " + j.at(key).dump() + ")");
}

}  // namespace

Estimator estimator_from_string(const std::string& name) {
  if (name == "ste") return Estimator::Ste;
  if (name == "lsq") return Estimator::Lsq;
  if (name == "lsqplus" || name == "lsq+") return Estimator::LsqPlus;
  throw Error("unknown gradient estimator '" + name + "'; use one of: ste, lsq, lsqplus");
}

std::string to_string(Estimator e) {
  switch (e) {
    case Estimator::Ste: return "ste";
    case Estimator::Lsq: return "lsq";
    case Estimator::LsqPlus: return "lsqplus";
  }
  return "?";
}

ObserverKind observer_kind_from_string(const std::string& name) {
  if (name == "minmax") return ObserverKind::MinMax;
  if (name == "ema" || name == "moving_average") return ObserverKind::MovingAverageMinMax;
  if (name == "percentile") return ObserverKind::Percentile;
  if (name == "mse") return ObserverKind::Mse;
  throw Error("unknown observer '" + name + "'; use one of: minmax, ema, percentile, mse");
}

std::string to_string(ObserverKind kind) {
  switch (kind) {
    case ObserverKind::MinMax: return "minmax";
    case ObserverKind::MovingAverageMinMax: return "ema";
    case ObserverKind::Percentile: return "percentile";
    case ObserverKind::Mse: return "mse";
  }
  return "?";
}

void ObserverOptions::validate() const {
  LOWBIT_CHECK(momentum > 0.0 && momentum <= 1.0,
               "observer momentum must be in (0, 1] (got " + std::to_string(momentum) + ")");
  LOWBIT_CHECK(percentile > 50.0 && percentile <= 100.0,
               "observer percentile must be in (50, 100] (got " + std::to_string(percentile) + "), e.g. 99.99");
  LOWBIT_CHECK(mse_candidates >= 1, "MSE observer needs at least 1 candidate range (got " +
                                        std::to_string(mse_candidates) + ")");
  LOWBIT_CHECK(mse_min_fraction > 0.0 && mse_min_fraction <= 1.0,
               "MSE observer's smallest clipping fraction must be in (0, 1] (got " + std::to_string(mse_min_fraction) +
                   ")");
}

ScaleInit scale_init_from_string(const std::string& name) {
  if (name == "auto") return ScaleInit::Auto;
  if (name == "observer") return ScaleInit::Observer;
  if (name == "lsq") return ScaleInit::LsqMeanAbs;
  if (name == "meanabs") return ScaleInit::MeanAbs;
  throw Error("unknown scale initialisation '" + name + "'; use one of: auto, observer, lsq, meanabs");
}

std::string to_string(ScaleInit init) {
  switch (init) {
    case ScaleInit::Auto: return "auto";
    case ScaleInit::Observer: return "observer";
    case ScaleInit::LsqMeanAbs: return "lsq";
    case ScaleInit::MeanAbs: return "meanabs";
  }
  return "?";
}

NoiseMode noise_mode_from_string(const std::string& name) {
  if (name == "abs") return NoiseMode::Absolute;
  if (name == "rel") return NoiseMode::Relative;
  throw Error("unknown noise mode '" + name + "'; use abs (sigma is absolute) or rel (sigma times each row's scale)");
}

std::string to_string(NoiseMode mode) { return mode == NoiseMode::Absolute ? "abs" : "rel"; }

void WinqConfig::validate() const {
  LOWBIT_CHECK(period >= -1, "--winq-period / winq.period: must be a number of steps >= 1, 0 (no reset) or -1 "
                             "(auto: a quarter of the run at <= 2 bits, half otherwise); got " +
                                 std::to_string(period));
  LOWBIT_CHECK(std::isfinite(keep) && keep >= 0.0 && keep < 1.0,
               "--winq-keep / winq.keep: the share of the latent weight kept, a in W <- a W + (1 - a) Q(W), must be "
               "in [0, 1) (the authors' code uses 0.2; the paper's alpha = 1 - a); got " +
                   std::to_string(keep));
  LOWBIT_CHECK(std::isfinite(noise) && noise >= 0.0 && noise < 1.0,
               "--winq-noise / winq.noise: sigma must be in [0, 1) (0: no noise; the authors' code uses 1e-3); got " +
                   std::to_string(noise));
  LOWBIT_CHECK(noise_mode == "abs" || noise_mode == "rel",
               "--winq-noise-mode / winq.noise_mode: use abs (sigma is absolute) or rel (sigma times each row's "
               "scale); got '" + noise_mode + "'");
}

nlohmann::json WinqConfig::to_json() const {
  return {{"enabled", enabled}, {"period", period}, {"keep", keep}, {"noise", noise}, {"noise_mode", noise_mode}};
}

WinqConfig WinqConfig::from_json(const nlohmann::json& j) {
  LOWBIT_CHECK(j.is_object(), "QAT config 'winq' must be a JSON object (got " + j.dump() + ")");
  WinqConfig c;
  for (const auto& [key, v] : j.items()) {
    if (key == "enabled") c.enabled = get_key<bool>(j, key, "true or false");
    else if (key == "period") c.period = get_key<int64_t>(j, key, "an integer");
    else if (key == "keep") c.keep = get_key<double>(j, key, "a number");
    else if (key == "noise") c.noise = get_key<double>(j, key, "a number");
    else if (key == "noise_mode") c.noise_mode = get_key<std::string>(j, key, "a string");
    else throw Error("QAT config 'winq': unknown key '" + key + "'; allowed: enabled, period, keep, noise, noise_mode");
  }
  c.validate();
  return c;
}

}  // namespace lowbit::qat
