// libFuzzer harness: the IDX reader (gzip or plain). Whatever the bytes, read_idx_images and
// read_idx_labels return data whose size matches the header, or throw lowbit::Error; a header
// that declares gigabytes must not make the reader allocate them (libFuzzer's -rss_limit_mb).
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>

#include "base/error.h"
#include "data/idx_file.h"

namespace {

// One scratch file per fuzzing process: gzopen reads files, not memory.
const std::string& scratch_path() {
  static const std::string path = "/tmp/lowbit_idx_fuzz." + std::to_string(::getpid());
  return path;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string& path = scratch_path();
  FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) __builtin_trap();
  if (size > 0 && std::fwrite(data, 1, size, f) != size) __builtin_trap();
  std::fclose(f);
  try {
    const lowbit::data::RawImages raw = lowbit::data::read_idx_images(path);
    if (raw.pixels.size() != static_cast<size_t>(raw.count * raw.rows * raw.cols)) __builtin_trap();
  } catch (const lowbit::Error&) {
  }
  try {
    (void)lowbit::data::read_idx_labels(path);
  } catch (const lowbit::Error&) {
  }
  return 0;
}
