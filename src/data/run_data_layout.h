// Which layout (nchw / nhwc / auto) a command loads a run's .npy / .npz images with: the
// --layout flag when given, else the layout the run was trained with (its config's
// "data": {"layout": ...}, written by train / qat), else "auto" (channels are the axis of size 1
// or 3). So `lowbit analyze`, `search`, `convert` and `eval` read the user's data as training did.
#pragma once
#include <string>

#include <nlohmann/json.hpp>

#include "base/error.h"

namespace lowbit::data {

inline std::string run_data_layout(const std::string& layout_flag, const nlohmann::json& run_config) {
  if (layout_flag != "auto" || !run_config.is_object()) return layout_flag;
  const auto section = run_config.find("data");
  if (section == run_config.end() || !section->is_object()) return "auto";
  const auto layout = section->find("layout");
  if (layout == section->end()) return "auto";
  LOWBIT_CHECK(layout->is_string() && (*layout == "auto" || *layout == "nchw" || *layout == "nhwc"),
               "the run's config has data.layout = " + layout->dump() + "; expected \"auto\", \"nchw\" or \"nhwc\"");
  return layout->get<std::string>();
}

}  // namespace lowbit::data
