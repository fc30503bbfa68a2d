// `--data`: every command's one way to its examples (formats in data/dataset_source.h and
// docs/datasets.md). Fashion-MNIST's folder stays the default, so commands behave as before
// when --data is not given.
#pragma once
#include <string>

#include "data/dataset_source.h"
#include "data/fashion_mnist.h"

namespace lowbit::data {

// Images float32 [N, C, H, W] (uint8 / 255, float as stored), labels int64 [N].
Dataset load_dataset(const std::string& spec, const std::string& split, const std::string& layout = "auto");
Dataset to_dataset(const RawDataset& raw);

// The integer runtime's input: uint8 pixels of one channel. Float sources and colour images are
// errors that say so (the runtime models take [1, 28, 28] uint8 images).
RawImages load_dataset_uint8(const std::string& spec, const std::string& split, const std::string& layout = "auto");

// max label + 1 (0 for an empty set).
int64_t num_classes(const Dataset& d);

// "[1, 28, 28]": one example's shape.
std::string example_shape_string(const Dataset& d);

}  // namespace lowbit::data
