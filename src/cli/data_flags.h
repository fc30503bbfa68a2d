// The data flags `train` and `qat` share: --layout (how .npy/.npz image arrays are laid out) and
// the augmentation flags. Both are stored in the run's config ("data" and "augment" sections), so
// --resume continues with them; on --resume a flag may only repeat the run's value.
#pragma once
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <string>

#include "base/error.h"
#include "data/augment.h"

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
};

inline void add_layout_flag(CLI::App* cmd, std::string& layout, CLI::Option** option = nullptr) {
  CLI::Option* o = cmd->add_option("--layout", layout, "Image arrays of 4 dimensions (.npy/.npz): nchw or nhwc "
                                                       "(auto: the layout the run was trained with, else channels "
                                                       "are the axis of size 1 or 3)")
                       ->check(CLI::IsMember({"auto", "nchw", "nhwc"}))
                       ->capture_default_str();
  if (option != nullptr) *option = o;
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
}

}  // namespace lowbit::cli
