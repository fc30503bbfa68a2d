// Fashion-MNIST from the IDX files (gzip) that the dataset-fashion-mnist package installs.
//
// The whole split is kept in memory as one tensor: an epoch is 47 MB of float32, and gathering a
// batch with index_select from one tensor costs far less than per-sample loading.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "torch_pch.h"

namespace lowbit::data {

// Images [N, 1, 28, 28] float32 in [0, 1] (pixel / 255, no mean/std normalisation), labels [N]
// int64 in [0, 9].
struct Dataset {
  torch::Tensor images;
  torch::Tensor labels;
  int64_t size() const { return labels.defined() ? labels.size(0) : 0; }
};

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
Dataset load_fashion_mnist(const std::string& dir, const std::string& split);
Dataset to_dataset(const RawImages& raw);

// Deterministic hold-out: the last `validation_size` examples of `full` become the validation
// set, the rest the training set (no shuffling, so every run and every engineer sees the same
// split). validation_size == 0 gives an empty validation set.
struct TrainValidation {
  Dataset train;
  Dataset validation;
};
TrainValidation split_train_validation(const Dataset& full, int64_t validation_size);

}  // namespace lowbit::data
