// Fashion-MNIST from the IDX files (gzip) that the dataset-fashion-mnist package installs.
//
// The whole split is kept in memory as one tensor: an epoch is 47 MB of float32, and gathering a
// batch with index_select from one tensor costs far less than per-sample loading.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "data/idx_file.h"
#include "torch_pch.h"

namespace lowbit::data {

// Images [N, 1, 28, 28] float32 in [0, 1] (pixel / 255, no mean/std normalisation), labels [N]
// int64 in [0, 9].
struct Dataset {
  torch::Tensor images;
  torch::Tensor labels;
  int64_t size() const { return labels.defined() ? labels.size(0) : 0; }
};

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
