#include "data/text_files.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "base/error.h"

namespace lowbit::data {
namespace fs = std::filesystem;

std::vector<std::string> text_corpus_files(const std::string& text) {
  std::string path = text;
  const bool is_default = text.empty();
  if (is_default) {
    const char* env = std::getenv("LOWBIT_TEXT");
    path = env != nullptr && *env != '\0' ? env : kDefaultTextDir;
  }
  std::error_code ec;
  if (!fs::exists(path, ec)) {
    throw Error("text corpus '" + path + "' does not exist; " +
                (is_default ? std::string("install the default corpus with scripts/setup.sh (Debian package "
                                          "'fortunes') or pass --text FILE")
                            : std::string("pass --text with an existing text file")));
  }
  if (!fs::is_directory(path, ec)) return {path};
  std::vector<std::string> files;
  for (const auto& e : fs::directory_iterator(path)) {
    const std::string name = e.path().filename().string();
    if (e.is_symlink() || !e.is_regular_file()) continue;                 // .u8 links, off/
    if (name.find('.') != std::string::npos) continue;                     // .dat indexes, hidden files
    if (name == "art" || name == "ascii-art") continue;                    // drawings, not prose
    files.push_back(e.path().string());
  }
  std::sort(files.begin(), files.end());
  LOWBIT_CHECK(!files.empty(), "text corpus folder '" + path +
                                   "' has no plain-text files (files without an extension); pass --text FILE");
  return files;
}

TextBytes read_text_files(const std::vector<std::string>& files) {
  LOWBIT_CHECK(!files.empty(), "text corpus: no files");
  TextBytes t;
  for (const auto& f : files) {
    std::ifstream in(f, std::ios::binary);
    LOWBIT_CHECK(in.good(), "cannot read text corpus file '" + f + "'");
    std::ostringstream s;
    s << in.rdbuf();
    LOWBIT_CHECK(!in.bad(), "reading text corpus file '" + f + "' failed");
    t.bytes += s.str();
  }
  t.what = files.size() == 1 ? "text corpus '" + files[0] + "'"
                             : "text corpus (" + std::to_string(files.size()) + " files in '" +
                                   fs::path(files[0]).parent_path().string() + "')";
  return t;
}

int64_t validation_bytes(int64_t n, int64_t context, double val_fraction, const std::string& what) {
  LOWBIT_CHECK(context >= 1, "text corpus: context must be at least 1, got " + std::to_string(context));
  LOWBIT_CHECK(val_fraction > 0 && val_fraction < 1,
               "text corpus: validation fraction must be in (0, 1), got " + std::to_string(val_fraction));
  const int64_t window = context + 1;
  LOWBIT_CHECK(n > 0, what + " is empty; gpt-tiny with context " + std::to_string(context) + " needs at least " +
                          std::to_string(2 * window) + " bytes");
  LOWBIT_CHECK(n >= 2 * window, what + " holds " + std::to_string(n) + " bytes; gpt-tiny with context " +
                                    std::to_string(context) + " needs at least " + std::to_string(2 * window) +
                                    " bytes (one window of context + 1 for training and one for validation); "
                                    "use a longer text or a smaller --context");
  // Both parts keep at least one window, whatever the fraction (n >= 2 * window here).
  return std::clamp(static_cast<int64_t>(static_cast<double>(n) * val_fraction), window, n - window);
}

}  // namespace lowbit::data
