#include "data/text_corpus.h"

#include <algorithm>
#include <cstring>

#include "base/error.h"

namespace lowbit::data {

TextCorpus load_text_corpus(const std::string& text, int64_t context, double val_fraction) {
  TextCorpus c;
  c.files = text_corpus_files(text);
  const TextBytes t = read_text_files(c.files);
  const int64_t n = static_cast<int64_t>(t.bytes.size());
  const int64_t n_val = validation_bytes(n, context, val_fraction, t.what);
  auto all = torch::empty({n}, torch::kUInt8);
  std::memcpy(all.data_ptr<uint8_t>(), t.bytes.data(), t.bytes.size());
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
