// libFuzzer harness: what lowbit itself reads from a checkpoint before and besides LibTorch's
// tensors (train/checkpoint_trailer.h, train/train_config.h, qat/qat_config.h). The first byte
// chooses the case:
//   odd:  the rest is a checkpoint file. verified_checkpoint_archive returns the bytes before the
//         24-byte trailer, and only if re-sealing them gives back the file exactly, or throws
//         lowbit::Error. (LibTorch's zip and pickle readers, which read the archive after this
//         check, are not instrumented in this build: docs/reliability.md.)
//   even: the rest is the config JSON a checkpoint carries. config_from_json and, for a "qat"
//         section, QatConfig::from_json return a config or throw lowbit::Error; an accepted
//         training config survives its JSON form; and the same bytes sealed with a trailer verify
//         back to themselves.
#include <cstddef>
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "qat/qat_config.h"
#include "train/checkpoint_trailer.h"
#include "train/train_config.h"

namespace {

void check_file(const std::string& file) {
  std::string archive;
  try {
    archive = lowbit::train::verified_checkpoint_archive("fuzz.pt", file);
  } catch (const lowbit::Error&) {
    return;
  }
  if (archive.size() + lowbit::train::kCheckpointTrailerSize != file.size()) __builtin_trap();
  if (lowbit::train::with_checksum_trailer(archive) != file) __builtin_trap();
}

void check_config(const std::string& text) {
  // Sealing is the identity on any bytes.
  try {
    if (lowbit::train::verified_checkpoint_archive("fuzz.pt", lowbit::train::with_checksum_trailer(text)) != text)
      __builtin_trap();
  } catch (const lowbit::Error&) {
    __builtin_trap();
  }
  const nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return;
  lowbit::train::TrainConfig config;
  bool accepted = true;
  try {
    config = lowbit::train::config_from_json(j);
  } catch (const lowbit::Error&) {
    accepted = false;
  }
  if (accepted) {
    const nlohmann::json once = lowbit::train::to_json(config);
    try {
      if (lowbit::train::to_json(lowbit::train::config_from_json(once)) != once) __builtin_trap();
    } catch (const lowbit::Error&) {
      __builtin_trap();  // lowbit wrote a config it cannot read back
    }
  }
  if (j.is_object() && j.contains("qat")) {
    try {
      (void)lowbit::qat::QatConfig::from_json(j["qat"]);
    } catch (const lowbit::Error&) {
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const std::string rest(reinterpret_cast<const char*>(data + 1), size - 1);
  if (data[0] & 1) {
    check_file(rest);
  } else {
    check_config(rest);
  }
  return 0;
}
