// Byte-level text corpora for the language models (models/gpt.h): file(s) -> bytes, a
// deterministic train / validation split, seeded random training windows and contiguous
// validation windows. Bytes are the vocabulary (256 ids), so any UTF-8 (or other) text works.
//
// Default corpus: the plain-text fortune files of Debian's `fortunes` package (real English:
// quotations, jokes, definitions, literature; about 2.5 MB in 41 files), installed by
// scripts/setup.sh. From /usr/share/games/fortunes we take every regular file without an
// extension, in name order, except "art" and "ascii-art" (ASCII drawings, not prose) and the
// off/ folder (offensive fortunes, package fortunes-off); the .dat files are strfile indexes and
// the .u8 names are symlinks to the same texts.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "data/text_files.h"  // text_corpus_files, kDefaultTextDir
#include "torch_pch.h"

namespace lowbit::data {

struct TextCorpus {
  std::vector<std::string> files;
  torch::Tensor train;       // uint8 [n_train]
  torch::Tensor validation;  // uint8 [n_val]: the last bytes of the corpus
  int64_t total_bytes = 0;
};

// Reads the files (concatenated in order) and splits off the last bytes for validation
// (validation_bytes in data/text_files.h: floor(n * val_fraction), at least one window of
// context + 1 bytes on either side). Throws lowbit::Error naming the
// file(s) and the minimum size (2 * window bytes) for a missing, empty or too-short corpus.
TextCorpus load_text_corpus(const std::string& text, int64_t context, double val_fraction = 0.1);

// `count` windows of `length` bytes starting at uniformly random offsets (from `generator`):
// int64 [count, length]. bytes.size(0) >= length.
torch::Tensor random_windows(const torch::Tensor& bytes, int64_t count, int64_t length, at::Generator& generator);

// Non-overlapping windows of `length` bytes from the start: int64 [n, length] with n =
// bytes / length, limited to max_windows when > 0.
torch::Tensor contiguous_windows(const torch::Tensor& bytes, int64_t length, int64_t max_windows = 0);

}  // namespace lowbit::data
