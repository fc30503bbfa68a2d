// libFuzzer harness: the text corpus reader (data/text_files.h). The first two bytes choose the
// context (1..1024) and the validation fraction; the rest is the corpus file. Whatever the bytes,
// the reader returns exactly the file's bytes and a split that leaves at least one window of
// context + 1 bytes on each side, or throws lowbit::Error.
#include <cstddef>
#include <cstdint>
#include <string>

#include "base/error.h"
#include "data/text_files.h"
#include "scratch_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const int64_t context = 1 + (data[0] | ((data[1] & 0x3) << 8));
  const double val_fraction = ((data[1] >> 2) + 1) / 65.0;  // in (0, 1)
  const std::string& path = lowbit::fuzz::write_scratch_file("lowbit_text_fuzz", data + 2, size - 2);
  try {
    const auto files = lowbit::data::text_corpus_files(path);
    if (files.size() != 1 || files[0] != path) __builtin_trap();
    const lowbit::data::TextBytes t = lowbit::data::read_text_files(files);
    if (t.bytes.size() != size - 2 || t.bytes.compare(0, t.bytes.size(), reinterpret_cast<const char*>(data + 2),
                                                      size - 2) != 0)
      __builtin_trap();
    const int64_t n = static_cast<int64_t>(t.bytes.size());
    const int64_t n_val = lowbit::data::validation_bytes(n, context, val_fraction, t.what);
    if (n_val < context + 1 || n - n_val < context + 1) __builtin_trap();
  } catch (const lowbit::Error&) {
  }
  return 0;
}
