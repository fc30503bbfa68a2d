// Fashion-MNIST's IDX files (gzip-compressed or plain), read without LibTorch: the integer
// runtime's tools and the fuzzing harness (fuzz/idx_file_fuzz.cpp) use this part alone.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace lowbit::data {

// The bytes of the IDX files as they are: what the integer runtime consumes (no LibTorch there).
struct RawImages {
  int64_t count = 0;
  int64_t rows = 0;
  int64_t cols = 0;
  std::vector<uint8_t> pixels;  // count * rows * cols, row-major
  std::vector<uint8_t> labels;  // count
};

// Directory holding the four .gz files: $LOWBIT_DATA if set and non-empty, else
// /usr/share/datasets/fashion-mnist. A --data flag overrides both (see resolve_data_dir).
std::string default_data_dir();
// `flag` when non-empty, else default_data_dir().
std::string resolve_data_dir(const std::string& flag);

// One IDX file (gzip-compressed or plain: zlib reads both). Validates the magic number (2051 for
// images, 2049 for labels), the dimensions and the length; errors name the file and what was
// expected.
RawImages read_idx_images(const std::string& path);
std::vector<uint8_t> read_idx_labels(const std::string& path);

// split is "train" (60,000 images) or "test" (10,000 images). Checks that images and labels agree
// in count and that every label is in [0, 9].
RawImages load_fashion_mnist_raw(const std::string& dir, const std::string& split);

}  // namespace lowbit::data
