// The byte side of a text corpus (no LibTorch, so the fuzzing harness links it alone): which files
// a --text value stands for, their bytes, and where the train / validation split falls.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace lowbit::data {

constexpr const char* kDefaultTextDir = "/usr/share/games/fortunes";

// The files a --text value stands for: "" -> the default corpus ($LOWBIT_TEXT if set, else
// kDefaultTextDir) ; a folder -> its files chosen by the fortunes rule (data/text_corpus.h); a
// file -> itself. Throws lowbit::Error naming the path (and `scripts/setup.sh` for the default)
// when missing.
std::vector<std::string> text_corpus_files(const std::string& text);

// The files' bytes, concatenated in order, and how errors name them ("text corpus 'a.txt'").
struct TextBytes {
  std::string bytes;
  std::string what;
};
TextBytes read_text_files(const std::vector<std::string>& files);

// Validation bytes of a corpus of n bytes for language-model windows of context + 1 bytes: the
// last floor(n * val_fraction) bytes, clamped so that both parts hold at least one window. Throws lowbit::Error (naming `what` and the
// minimum size, 2 * window bytes) for an empty or too-short corpus or bad parameters.
int64_t validation_bytes(int64_t n, int64_t context, double val_fraction, const std::string& what);

}  // namespace lowbit::data
