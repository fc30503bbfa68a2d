// The input normalisation of a run: x' = (x - mean[c]) / std[c] on images in [0, 1], applied by
// the model itself (models::Net) before its input quantizer, so every command that feeds a run's
// model its data in [0, 1] gets it. It comes from `--mean` / `--std` (train, qat, ptq) and lives in
// the run's config ("data": {"mean": [...], "std": [...]}), like the layout; commands that read a
// run accept the flags only when they repeat the run's values. One value stands for every channel.
#pragma once
#include <cmath>
#include <cstdlib>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/error.h"

namespace lowbit::data {

struct InputNormalisation {
  std::vector<float> mean, std;  // both empty (none), or of equal size: 1 (all channels) or one per channel
  bool active() const { return !mean.empty(); }
  bool operator==(const InputNormalisation& o) const { return mean == o.mean && std == o.std; }
  bool operator!=(const InputNormalisation& o) const { return !(*this == o); }

  // One value per channel (`channels` of them); throws naming the flags when the count does not fit.
  std::vector<float> mean_for(int64_t channels) const { return expand(mean, channels, "--mean"); }
  std::vector<float> std_for(int64_t channels) const { return expand(std, channels, "--std"); }

  std::string describe() const {
    if (!active()) return "none";
    auto list = [](const std::vector<float>& v) {
      std::string s;
      for (float x : v) s += (s.empty() ? "" : ",") + nlohmann::json(x).dump();
      return s;
    };
    return "--mean " + list(mean) + " --std " + list(std);
  }

  // Throws unless both are empty or both hold 1 or `channels` finite values, std > 0 (channels <= 0: not checked).
  void validate(int64_t channels = 0) const {
    LOWBIT_CHECK(mean.size() == std.size(),
                 "--mean has " + std::to_string(mean.size()) + " values and --std " + std::to_string(std.size()) +
                     "; give both, with the same count (one per input channel, or one for all)");
    for (size_t c = 0; c < mean.size(); ++c) {
      LOWBIT_CHECK(std::isfinite(mean[c]), "--mean value " + std::to_string(c + 1) + " is not a finite number");
      LOWBIT_CHECK(std::isfinite(std[c]) && std[c] > 0.0f,
                   "--std value " + std::to_string(c + 1) + " is " + nlohmann::json(std[c]).dump() +
                       "; standard deviations must be > 0 (e.g. --std 0.229,0.224,0.225)");
    }
    if (channels > 0 && active()) {
      mean_for(channels);
      std_for(channels);
    }
  }

  nlohmann::json to_json() const { return {{"mean", mean}, {"std", std}}; }

  // From a run config's "data" section (absent: none).
  static InputNormalisation from_run_config(const nlohmann::json& run_config) {
    InputNormalisation n;
    if (!run_config.is_object()) return n;
    const auto section = run_config.find("data");
    if (section == run_config.end() || !section->is_object()) return n;
    const bool has_mean = section->contains("mean"), has_std = section->contains("std");
    if (!has_mean && !has_std) return n;
    LOWBIT_CHECK(has_mean && has_std && (*section)["mean"].is_array() && (*section)["std"].is_array(),
                 "the run's config has data.mean / data.std that are not both arrays of numbers: " + section->dump());
    for (const auto& v : (*section)["mean"]) {
      LOWBIT_CHECK(v.is_number(), "the run's config has a data.mean entry that is not a number: " + v.dump());
      n.mean.push_back(v.get<float>());
    }
    for (const auto& v : (*section)["std"]) {
      LOWBIT_CHECK(v.is_number(), "the run's config has a data.std entry that is not a number: " + v.dump());
      n.std.push_back(v.get<float>());
    }
    n.validate();
    return n;
  }

  // Writes (or, when inactive, removes) the "data" section's mean and std.
  void write_to(nlohmann::json& config) const {
    if (active()) {
      config["data"]["mean"] = mean;
      config["data"]["std"] = std;
    } else if (config.is_object() && config.contains("data") && config["data"].is_object()) {
      config["data"].erase("mean");
      config["data"].erase("std");
    }
  }

 private:
  static std::vector<float> expand(const std::vector<float>& v, int64_t channels, const char* flag) {
    if (v.empty()) return {};
    if (v.size() == 1) return std::vector<float>(static_cast<size_t>(channels), v[0]);
    LOWBIT_CHECK(static_cast<int64_t>(v.size()) == channels,
                 std::string(flag) + " has " + std::to_string(v.size()) + " values but the input has " +
                     std::to_string(channels) + " channel" + (channels == 1 ? "" : "s") +
                     "; give one value per channel or one for all");
    return v;
  }
};

// "0.485,0.456,0.406" -> values; throws naming `flag` for an empty item or one that is not a number.
inline std::vector<float> parse_float_list(const std::string& text, const std::string& flag) {
  std::vector<float> out;
  if (text.empty()) return out;
  size_t start = 0;
  while (true) {
    const size_t comma = text.find(',', start);
    const std::string item = text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    const char* begin = item.c_str();
    char* end = nullptr;
    const float v = item.empty() ? 0.0f : std::strtof(begin, &end);
    LOWBIT_CHECK(!item.empty() && end != nullptr && *end == '\0' && std::isfinite(v),
                 flag + " '" + text + "': '" + item + "' is not a number; give comma-separated numbers, one per "
                 "input channel or one for all (e.g. " + flag + (flag == "--std" ? " 0.229,0.224,0.225)" : " 0.485,0.456,0.406)"));
    out.push_back(v);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

// The flags as given (both empty strings: none given).
inline InputNormalisation normalisation_from_flags(const std::string& mean, const std::string& std_dev) {
  LOWBIT_CHECK(mean.empty() == std_dev.empty(), std::string(mean.empty() ? "--std" : "--mean") + " needs " +
                                                    (mean.empty() ? "--mean" : "--std") +
                                                    " too (images are normalised as (x - mean) / std)");
  InputNormalisation n;
  n.mean = parse_float_list(mean, "--mean");
  n.std = parse_float_list(std_dev, "--std");
  n.validate();
  return n;
}

// For a command that reads a run: the run's normalisation; flags given must repeat it.
inline InputNormalisation run_normalisation(const std::string& mean_flag, const std::string& std_flag,
                                            const nlohmann::json& run_config, const std::string& run_name) {
  const InputNormalisation stored = InputNormalisation::from_run_config(run_config);
  const InputNormalisation flags = normalisation_from_flags(mean_flag, std_flag);
  LOWBIT_CHECK(!flags.active() || flags == stored,
               "--mean/--std (" + flags.describe() + ") contradict the input normalisation of '" + run_name + "' (" +
                   stored.describe() + "); the run's is used without the flags: drop them");
  return stored;
}

}  // namespace lowbit::data
