// libFuzzer harness: the .npy parser and the .npz (zip) reader. Whatever the bytes, they return
// arrays whose byte count matches their shape and dtype, or throw lowbit::Error; a shape or a zip
// member that declares gigabytes must not make them allocate it (libFuzzer's -rss_limit_mb).
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "base/error.h"
#include "data/npy_array.h"
#include "data/npz_archive.h"

namespace {

void check(const lowbit::data::NpyArray& a) {
  if (a.bytes.size() != static_cast<size_t>(a.numel()) * static_cast<size_t>(a.item_size())) __builtin_trap();
  for (int64_t i = 0; i < a.numel() && i < 4; ++i) (void)a.value(i);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    check(lowbit::data::parse_npy(data, size, "fuzz.npy"));
  } catch (const lowbit::Error&) {
  }
  try {
    const lowbit::data::NpzArchive npz(std::vector<uint8_t>(data, data + size), "fuzz.npz");
    for (const auto& name : npz.array_names()) {
      try {
        check(npz.array(name));
      } catch (const lowbit::Error&) {
      }
    }
  } catch (const lowbit::Error&) {
  }
  return 0;
}
