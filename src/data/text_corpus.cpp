#include "data/text_corpus.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
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

TextCorpus load_text_corpus(const std::string& text, int64_t context, double val_fraction) {
  LOWBIT_CHECK(context >= 1, "text corpus: context must be at least 1, got " + std::to_string(context));
  LOWBIT_CHECK(val_fraction > 0 && val_fraction < 1,
               "text corpus: validation fraction must be in (0, 1), got " + std::to_string(val_fraction));
  TextCorpus c;
  c.files = text_corpus_files(text);
  std::string bytes;
  for (const auto& f : c.files) {
    std::ifstream in(f, std::ios::binary);
    LOWBIT_CHECK(in.good(), "cannot read text corpus file '" + f + "'");
    std::ostringstream s;
    s << in.rdbuf();
    bytes += s.str();
  }
  const std::string what = c.files.size() == 1 ? "text corpus '" + c.files[0] + "'"
                                               : "text corpus (" + std::to_string(c.files.size()) + " files in '" +
                                                     fs::path(c.files[0]).parent_path().string() + "')";
  const int64_t n = static_cast<int64_t>(bytes.size());
  const int64_t window = context + 1;
  LOWBIT_CHECK(n > 0, what + " is empty; gpt-tiny with context " + std::to_string(context) + " needs at least " +
                          std::to_string(2 * window) + " bytes");
  LOWBIT_CHECK(n >= 2 * window, what + " holds " + std::to_string(n) + " bytes; gpt-tiny with context " +
                                    std::to_string(context) + " needs at least " + std::to_string(2 * window) +
                                    " bytes (one window of context + 1 for training and one for validation); "
                                    "use a longer text or a smaller --context");
  const int64_t n_val = std::max(window, static_cast<int64_t>(static_cast<double>(n) * val_fraction));
  auto all = torch::empty({n}, torch::kUInt8);
  std::memcpy(all.data_ptr<uint8_t>(), bytes.data(), bytes.size());
  c.total_bytes = n;
  c.train = all.narrow(0, 0, n - n_val).clone();
  c.validation = all.narrow(0, n - n_val, n_val).clone();
  return c;
}

torch::Tensor random_windows(const torch::Tensor& bytes, int64_t count, int64_t length, at::Generator& generator) {
  const int64_t n = bytes.size(0);
  LOWBIT_CHECK(n >= length, "random_windows: " + std::to_string(n) + " bytes cannot hold a window of " +
                                std::to_string(length));
  const auto starts = torch::randint(0, n - length + 1, {count, 1}, generator, torch::kInt64);
  const auto idx = starts + torch::arange(length, torch::kInt64).view({1, length});
  return bytes.index({idx}).to(torch::kInt64);
}

torch::Tensor contiguous_windows(const torch::Tensor& bytes, int64_t length, int64_t max_windows) {
  int64_t n = bytes.size(0) / length;
  if (max_windows > 0) n = std::min(n, max_windows);
  return bytes.narrow(0, 0, n * length).to(torch::kInt64).view({n, length});
}

}  // namespace lowbit::data
