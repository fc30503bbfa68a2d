// The data flags `train` and `qat` share: --layout (how .npy/.npz image arrays are laid out) and
// the augmentation flags. Both are stored in the run's config ("data" and "augment" sections), so
// --resume continues with them; on --resume a flag may only repeat the run's value.
#pragma once
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <functional>
#include <memory>
#include <string>
#include <utility>

#include "base/error.h"
#include "data/augment.h"
#include "data/input_normalisation.h"

namespace lowbit::cli {

inline const char* data_flag_help() {
  return "Data: a folder of IDX files, a .npz (x_train, y_train, x_test, y_test), a folder of train_x.npy ... "
         "test_y.npy, or a folder with train/ and test/ image folders (docs/datasets.md; default: $LOWBIT_DATA or "
         "/usr/share/datasets/fashion-mnist)";
}

struct DataFlags {
  int64_t augment_crop = 0;
  bool augment_flip = false;
  std::string layout = "auto";
  CLI::Option* crop = nullptr;
  CLI::Option* flip = nullptr;
  CLI::Option* layout_option = nullptr;
  std::string mean, std_dev;  // --mean / --std as given (empty: not given)
};

// --mean / --std: per-channel input normalisation (x - mean) / std of images in [0, 1]
// (data/input_normalisation.h). For commands that read a run, the values may only repeat the run's.
inline void add_normalisation_flags(CLI::App* cmd, std::string& mean, std::string& std_dev, bool for_run = true) {
  const std::string note = for_run ? " (a run's own is used; the flag may only repeat it)" : " (stored in the run)";
  cmd->add_option("--mean", mean, "Input normalisation (x - mean) / std of images in [0, 1]: mean per input channel, "
                                  "comma-separated, or one for all, e.g. 0.485,0.456,0.406" + note);
  cmd->add_option("--std", std_dev, "Input normalisation: standard deviation per input channel (> 0), or one for all, "
                                    "e.g. 0.229,0.224,0.225" + note);
}

inline void add_layout_flag(CLI::App* cmd, std::string& layout, CLI::Option** option = nullptr) {
  CLI::Option* o = cmd->add_option("--layout", layout, "Image arrays of 4 dimensions (.npy/.npz): nchw or nhwc "
                                                       "(auto: the layout the run was trained with, else channels "
                                                       "are the axis of size 1 or 3)")
                       ->check(CLI::IsMember({"auto", "nchw", "nhwc"}))
                       ->capture_default_str();
  if (option != nullptr) *option = o;
}

// --mean / --std on a command that reads a run (`run_path` gives its checkpoint, `run_config` its
// config): checked once the command line is parsed; the run's normalisation is used either way.
inline void add_run_normalisation_flags(CLI::App* cmd, std::function<std::string()> run_path,
                                        std::function<nlohmann::json(const std::string&)> run_config) {
  auto f = std::make_shared<std::pair<std::string, std::string>>();
  add_normalisation_flags(cmd, f->first, f->second);
  cmd->parse_complete_callback([f, run_path, run_config] {
    if (f->first.empty() && f->second.empty()) return;
    const std::string path = run_path();
    data::run_normalisation(f->first, f->second, run_config(path), path);
  });
}

// --data and --layout, for the commands that read data without training on it (analyze, search,
// study, convert); with a checkpoint, --layout auto means the run's own (data/run_data_layout.h).
inline void add_data_and_layout_flags(CLI::App* cmd, std::string& data_dir, std::string& layout) {
  cmd->add_option("--data", data_dir, data_flag_help());
  add_layout_flag(cmd, layout);
}

inline void add_data_flags(CLI::App* cmd, DataFlags& f) {
  add_layout_flag(cmd, f.layout, &f.layout_option);
  f.crop = cmd->add_option("--augment-crop", f.augment_crop,
                           "Augment: random crop after zero padding of this many pixels (0: off)")
               ->check(CLI::Range(0, 64))
               ->capture_default_str();
  f.flip = cmd->add_flag("--augment-flip", f.augment_flip, "Augment: horizontal flip with probability 0.5");
  add_normalisation_flags(cmd, f.mean, f.std_dev, false);
}

// A fresh run: writes the sections; a resumed one: checks that the flags given match `extra`'s.
inline void apply_data_flags(nlohmann::json& extra, const DataFlags& f, bool resume) {
  if (!resume) {
    data::AugmentOptions a;
    a.crop_pad = f.augment_crop;
    a.flip = f.augment_flip;
    a.validate();
    if (a.active()) extra["augment"] = a.to_json();
    if (f.layout != "auto") extra["data"]["layout"] = f.layout;
    data::normalisation_from_flags(f.mean, f.std_dev).write_to(extra);
    return;
  }
  const data::AugmentOptions stored = data::AugmentOptions::from_json(extra.value("augment", nlohmann::json(nullptr)));
  const bool crop_differs = f.crop != nullptr && f.crop->count() > 0 && f.augment_crop != stored.crop_pad;
  const bool flip_differs = f.flip != nullptr && f.flip->count() > 0 && f.augment_flip != stored.flip;
  LOWBIT_CHECK(!crop_differs && !flip_differs,
               "--resume continues with the run's augmentation (crop " + std::to_string(stored.crop_pad) + ", flip " +
                   (stored.flip ? "on" : "off") + "); drop the --augment-* flags or start a new run to change it");
  const std::string stored_layout = extra.value("data", nlohmann::json::object()).value("layout", std::string("auto"));
  LOWBIT_CHECK(f.layout_option == nullptr || f.layout_option->count() == 0 || f.layout == stored_layout,
               "--resume continues with the run's --layout " + stored_layout + "; drop --layout or start a new run");
  const data::InputNormalisation stored_norm = data::InputNormalisation::from_run_config(extra);
  const data::InputNormalisation flag_norm = data::normalisation_from_flags(f.mean, f.std_dev);
  LOWBIT_CHECK(!flag_norm.active() || flag_norm == stored_norm,
               "--resume continues with the run's input normalisation (" + stored_norm.describe() + "), not " +
                   flag_norm.describe() + "; drop --mean/--std or start a new run to change it");
}

}  // namespace lowbit::cli
