// libFuzzer harness: the IDX reader (gzip or plain). Whatever the bytes, read_idx_images and
// read_idx_labels return data whose size matches the header, or throw lowbit::Error; a header
// that declares gigabytes must not make the reader allocate them (libFuzzer's -rss_limit_mb).
#include <cstddef>
#include <cstdint>
#include <string>

#include "base/error.h"
#include "data/idx_file.h"
#include "scratch_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // gzopen reads files, not memory.
  const std::string& path = lowbit::fuzz::write_scratch_file("lowbit_idx_fuzz", data, size);
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
