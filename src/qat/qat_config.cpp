#include "qat/qat_config.h"

#include <fstream>
#include <sstream>

#include "base/error.h"
#include "base/json_value.h"

namespace lowbit::qat {
namespace {

using nlohmann::json;

const char* const kSettingKeys =
    "weight_bits, weight_format, weight_symmetric, weight_granularity, weight_group_size, weight_estimator, "
    "weight_observer, weight_init, act_bits, act_signed, act_symmetric, act_granularity, act_estimator, "
    "act_observer, act_init, observer_momentum, observer_percentile, freeze_steps, quantize";

template <typename T>
T get_as(const json& v, const std::string& key, const std::string& where, const char* type_name) {
  if (const std::optional<T> x = json_value_as<T>(v)) return *x;
  throw Error("QAT config " + where + ": key '" + key + "' must be " + type_name + " (got " + v.dump() + ")");
}

ObserverOptions observer_options(const std::string& kind, const QuantSettings& s) {
  ObserverOptions o;
  o.kind = observer_kind_from_string(kind);
  o.momentum = s.observer_momentum;
  o.percentile = s.observer_percentile;
  o.freeze_after = s.freeze_steps;
  o.validate();
  return o;
}

// Runs f; a lowbit::Error gets `context` prepended so the message names the settings involved.
template <typename F>
auto with_context(const std::string& context, F&& f) {
  try {
    return f();
  } catch (const Error& e) {
    throw Error(context + ": " + e.what());
  }
}

}  // namespace

bool glob_match(const std::string& pattern, const std::string& name) {
  // Iterative matcher with backtracking to the last '*'.
  size_t p = 0, n = 0, star = std::string::npos, mark = 0;
  while (n < name.size()) {
    if (p < pattern.size() && (pattern[p] == '?' || pattern[p] == name[n])) {
      ++p;
      ++n;
    } else if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      mark = n;
    } else if (star != std::string::npos) {
      p = star + 1;
      n = ++mark;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

FakeQuantizeOptions QuantSettings::weight_options() const {
  const std::string ctx = "weight quantizer (weight_bits=" + std::to_string(weight_bits) + ", weight_format=" +
                          weight_format + ", weight_granularity=" + weight_granularity + ")";
  return with_context(ctx, [&] {
    FakeQuantizeOptions o;
    if (weight_format == "int") {
      o.spec = quant::QuantSpec::int_symmetric(weight_bits);
    } else if (weight_format == "ternary") {
      o.spec = quant::QuantSpec::ternary();
    } else if (weight_format == "binary") {
      o.spec = quant::QuantSpec::binary();
    } else if (weight_format == "seq2") {
      o.spec = quant::QuantSpec::seq2();
    } else {
      throw Error("unknown weight_format '" + weight_format + "'; use one of: int, ternary, binary, seq2");
    }
    o.spec.symmetric = weight_symmetric;
    if (weight_granularity == "tensor") {
      o.spec.granularity = quant::Granularity::PerTensor;
    } else if (weight_granularity == "channel") {
      o.spec.granularity = quant::Granularity::PerChannel;
      o.spec.axis = 0;
    } else if (weight_granularity == "group") {
      o.spec.granularity = quant::Granularity::PerGroup;
      o.spec.group_size = weight_group_size;
    } else {
      throw Error("unknown weight_granularity '" + weight_granularity + "'; use one of: tensor, channel, group");
    }
    o.spec.validate();
    // "auto": at 8 bits the grid is fine enough that a learned step only adds noise; an observed
    // (min-max) scale with the clipped STE trained the reference CNN 0.16 points better at W8A8
    // over 3 seeds (docs/RESULTS.md). Below 8 bits, and for the ParetoQ formats, the step is learned.
    const bool observed_scale = weight_format == "int" && weight_bits >= 8;
    if (weight_estimator != "auto" && weight_estimator != "ste" && weight_estimator != "lsq" &&
        weight_estimator != "lsqplus" && weight_estimator != "lsq+") {
      throw Error("unknown weight_estimator '" + weight_estimator + "'; use one of: auto, ste, lsq, lsqplus");
    }
    o.estimator = estimator_from_string(weight_estimator != "auto" ? weight_estimator : observed_scale ? "ste" : "lsq");
    if (o.estimator == Estimator::LsqPlus && o.spec.symmetric) {
      throw Error("weight_estimator lsqplus learns a zero point and needs weight_symmetric=false; use lsq");
    }
    o.observer = observer_options(weight_observer, *this);
    // Weights change every step: their range is the current tensor's, never a running
    // extreme or a slow average over old weights.
    if (o.observer.kind == ObserverKind::MinMax) o.observer.kind = ObserverKind::MovingAverageMinMax;
    if (o.observer.kind != ObserverKind::MovingAverageMinMax || weight_observer == "minmax") o.observer.momentum = 1.0;
    o.observe_in_eval = true;
    o.init = scale_init_from_string(weight_init);
    return o;
  });
}

FakeQuantizeOptions QuantSettings::activation_options() const {
  const std::string ctx = "activation quantizer (act_bits=" + std::to_string(act_bits) + ")";
  return with_context(ctx, [&] {
    LOWBIT_CHECK(act_bits != 1, "binary activations are not supported; activations take 2 to 8 bits");
    FakeQuantizeOptions o;
    o.spec.bits = act_bits;
    o.spec.is_signed = act_signed;
    o.spec.symmetric = act_symmetric;
    if (act_granularity == "tensor") {
      o.spec.granularity = quant::Granularity::PerTensor;
    } else if (act_granularity == "channel") {
      o.spec.granularity = quant::Granularity::PerChannel;
      o.spec.axis = 1;  // NCHW
    } else {
      throw Error("act_granularity must be tensor, channel or token (got '" + act_granularity +
                  "'); token (per-token dynamic int8) has no static quantizer and applies to language models");
    }
    o.spec.validate();
    o.estimator = estimator_from_string(act_estimator);
    if (o.estimator == Estimator::LsqPlus && o.spec.symmetric) {
      throw Error("act_estimator lsqplus learns a zero point and needs act_symmetric=false; use lsq");
    }
    o.observer = observer_options(act_observer, *this);
    o.init = scale_init_from_string(act_init);
    return o;
  });
}

void QuantSettings::validate() const {
  weight_options();
  if (act_granularity == "token") {
    // Per-token dynamic activations (language models, quant/per_token.h): symmetric int8, no
    // static quantizer to build.
    LOWBIT_CHECK(act_bits == 8, "act_granularity 'token' quantizes activations to int8 per token; act_bits must be 8 (got " +
                                    std::to_string(act_bits) + ")");
    return;
  }
  activation_options();
}

json QuantSettings::to_json() const {
  return json{{"weight_bits", weight_bits},
              {"weight_format", weight_format},
              {"weight_symmetric", weight_symmetric},
              {"weight_granularity", weight_granularity},
              {"weight_group_size", weight_group_size},
              {"weight_estimator", weight_estimator},
              {"weight_observer", weight_observer},
              {"weight_init", weight_init},
              {"act_bits", act_bits},
              {"act_signed", act_signed},
              {"act_symmetric", act_symmetric},
              {"act_granularity", act_granularity},
              {"act_estimator", act_estimator},
              {"act_observer", act_observer},
              {"act_init", act_init},
              {"observer_momentum", observer_momentum},
              {"observer_percentile", observer_percentile},
              {"freeze_steps", freeze_steps},
              {"quantize", quantize}};
}

void QuantSettings::apply(const json& j, const std::string& where) {
  LOWBIT_CHECK(j.is_object(), "QAT config " + where + " must be a JSON object (got " + j.dump() + ")");
  for (const auto& [key, v] : j.items()) {
    if (key == "weight_bits") weight_bits = get_as<int>(v, key, where, "an integer");
    else if (key == "weight_format") weight_format = get_as<std::string>(v, key, where, "a string");
    else if (key == "weight_symmetric") weight_symmetric = get_as<bool>(v, key, where, "true or false");
    else if (key == "weight_granularity") weight_granularity = get_as<std::string>(v, key, where, "a string");
    else if (key == "weight_group_size") weight_group_size = get_as<int>(v, key, where, "an integer");
    else if (key == "weight_estimator") weight_estimator = get_as<std::string>(v, key, where, "a string");
    else if (key == "weight_observer") weight_observer = get_as<std::string>(v, key, where, "a string");
    else if (key == "weight_init") weight_init = get_as<std::string>(v, key, where, "a string");
    else if (key == "act_bits") act_bits = get_as<int>(v, key, where, "an integer");
    else if (key == "act_signed") act_signed = get_as<bool>(v, key, where, "true or false");
    else if (key == "act_symmetric") act_symmetric = get_as<bool>(v, key, where, "true or false");
    else if (key == "act_granularity") act_granularity = get_as<std::string>(v, key, where, "a string");
    else if (key == "act_estimator") act_estimator = get_as<std::string>(v, key, where, "a string");
    else if (key == "act_observer") act_observer = get_as<std::string>(v, key, where, "a string");
    else if (key == "act_init") act_init = get_as<std::string>(v, key, where, "a string");
    else if (key == "observer_momentum") observer_momentum = get_as<double>(v, key, where, "a number");
    else if (key == "observer_percentile") observer_percentile = get_as<double>(v, key, where, "a number");
    else if (key == "freeze_steps") freeze_steps = get_as<int64_t>(v, key, where, "an integer");
    else if (key == "quantize") quantize = get_as<bool>(v, key, where, "true or false");
    else throw Error("QAT config " + where + ": unknown key '" + key + "'; allowed keys: " + kSettingKeys);
  }
}

QuantSettings QatConfig::settings_for(const std::string& name) const {
  QuantSettings s = defaults;
  for (size_t i = 0; i < overrides.size(); ++i) {
    if (glob_match(overrides[i].pattern, name)) s.apply(overrides[i].settings, "override " + std::to_string(i));
  }
  return s;
}

void QatConfig::check_patterns(const std::vector<std::string>& node_names) const {
  for (const LayerOverride& o : overrides) {
    bool hit = false;
    for (const std::string& n : node_names) hit = hit || glob_match(o.pattern, n);
    if (!hit) {
      std::string names;
      for (const std::string& n : node_names) names += (names.empty() ? "" : ", ") + n;
      throw Error("QAT config: override pattern '" + o.pattern + "' matches no layer of this model; layers are: " +
                  names);
    }
  }
}

json QatConfig::to_json() const {
  json j = defaults.to_json();
  j["bn_freeze_step"] = bn_freeze_step;
  json list = json::array();
  for (const LayerOverride& o : overrides) {
    json e = o.settings;
    e["pattern"] = o.pattern;
    list.push_back(e);
  }
  j["overrides"] = list;
  j["winq"] = winq.to_json();
  return j;
}

QatConfig QatConfig::from_json(const json& j) {
  LOWBIT_CHECK(j.is_object(), "QAT config must be a JSON object (got " + j.dump() + ")");
  QatConfig c;
  json settings = j;
  if (j.contains("bn_freeze_step")) {
    c.bn_freeze_step = get_as<int64_t>(j["bn_freeze_step"], "bn_freeze_step", "top level", "an integer");
    settings.erase("bn_freeze_step");
  }
  if (j.contains("winq")) {
    c.winq = WinqConfig::from_json(j["winq"]);
    settings.erase("winq");
  }
  if (j.contains("overrides")) {
    const json& list = j["overrides"];
    LOWBIT_CHECK(list.is_array(), "QAT config: 'overrides' must be a list of objects with a 'pattern' key");
    for (size_t i = 0; i < list.size(); ++i) {
      const std::string where = "override " + std::to_string(i);
      LOWBIT_CHECK(list[i].is_object() && list[i].contains("pattern"),
                   "QAT config " + where + ": needs a \"pattern\" key (a glob on layer names, e.g. \"conv1\" or \"fc*\")");
      LayerOverride o;
      o.pattern = get_as<std::string>(list[i]["pattern"], "pattern", where, "a string");
      o.settings = list[i];
      o.settings.erase("pattern");
      QuantSettings probe;
      probe.apply(o.settings, where);  // unknown keys and types now, not at prepare time
      c.overrides.push_back(o);
    }
    settings.erase("overrides");
  }
  c.defaults.apply(settings, "top level");
  with_context("QAT config defaults", [&] { c.defaults.validate(); return 0; });
  for (size_t i = 0; i < c.overrides.size(); ++i) {
    QuantSettings s = c.defaults;
    s.apply(c.overrides[i].settings, "override " + std::to_string(i));
    with_context("QAT config override " + std::to_string(i) + " (pattern '" + c.overrides[i].pattern + "')", [&] {
      s.validate();
      return 0;
    });
  }
  return c;
}

QatConfig QatConfig::from_file(const std::string& path) {
  std::ifstream in(path);
  LOWBIT_CHECK(in.good(), "cannot open QAT config file '" + path + "'");
  json j;
  try {
    j = json::parse(in);
  } catch (const json::exception& e) {
    throw Error("QAT config file '" + path + "' is not valid JSON: " + e.what());
  }
  return with_context("QAT config file '" + path + "'", [&] { return from_json(j); });
}

QatConfig config_from_flags(const QatFlags& f) {
  json j{{"weight_bits", f.wbits},          {"act_bits", f.abits},
         {"weight_estimator", f.quantizer}, {"weight_granularity", f.granularity},
         {"weight_group_size", f.group_size}, {"weight_format", f.weight_format},
         {"weight_observer", f.observer},   {"freeze_steps", f.freeze_steps},
         {"bn_freeze_step", f.bn_freeze_step}};
  QatConfig c = QatConfig::from_json(j);
  c.winq.enabled = f.winq;
  c.winq.period = f.winq_period;
  c.winq.keep = f.winq_keep;
  c.winq.noise = f.winq_noise;
  c.winq.noise_mode = f.winq_noise_mode;
  c.winq.validate();
  return c;
}

}  // namespace lowbit::qat
