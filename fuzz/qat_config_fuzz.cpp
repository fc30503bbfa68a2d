// libFuzzer harness: the per-layer QAT config (qat/qat_config.h), what `lowbit qat --config FILE`
// and every QAT checkpoint's "qat" section go through. Whatever JSON arrives:
//   * QatConfig::from_json returns a config or throws lowbit::Error (nothing else escapes: no
//     nlohmann exception, no undefined behaviour on out-of-range numbers);
//   * an accepted config survives its JSON form: from_json(to_json(c)).to_json() == c.to_json();
//   * for any layer name (fixed names, and each override's pattern taken as a name, so that
//     several overrides can match one layer), settings_for(name).validate() passes or throws
//     lowbit::Error.
// Bytes that are not JSON are skipped: the JSON parser is nlohmann's, not ours.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "qat/qat_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const nlohmann::json j = nlohmann::json::parse(data, data + size, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return 0;
  lowbit::qat::QatConfig config;
  try {
    config = lowbit::qat::QatConfig::from_json(j);
  } catch (const lowbit::Error&) {
    return 0;
  }
  const nlohmann::json once = config.to_json();
  lowbit::qat::QatConfig again;
  try {
    again = lowbit::qat::QatConfig::from_json(once);
  } catch (const lowbit::Error&) {
    __builtin_trap();  // lowbit wrote a config it cannot read back
  }
  if (again.to_json() != once) __builtin_trap();

  std::vector<std::string> names = {"conv1", "fc", "block1_conv2", "layers.0.attn.q", ""};
  for (const auto& o : config.overrides) names.push_back(o.pattern);
  for (const std::string& name : names) {
    try {
      config.settings_for(name).validate();
    } catch (const lowbit::Error&) {
    }
  }
  return 0;
}
