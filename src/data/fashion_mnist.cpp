#include "data/fashion_mnist.h"

#include "base/error.h"

namespace lowbit::data {

Dataset to_dataset(const RawImages& raw) {
  Dataset d;
  // from_blob does not copy; the conversions below produce owning tensors.
  auto pixels = torch::from_blob(const_cast<uint8_t*>(raw.pixels.data()), {raw.count, 1, raw.rows, raw.cols},
                                 torch::kUInt8);
  d.images = pixels.to(torch::kFloat32).div_(255.0f).contiguous();
  auto labels = torch::from_blob(const_cast<uint8_t*>(raw.labels.data()), {static_cast<int64_t>(raw.labels.size())},
                                 torch::kUInt8);
  d.labels = labels.to(torch::kInt64);
  return d;
}

Dataset load_fashion_mnist(const std::string& dir, const std::string& split) {
  return to_dataset(load_fashion_mnist_raw(dir, split));
}

TrainValidation split_train_validation(const Dataset& full, int64_t validation_size) {
  const int64_t n = full.size();
  LOWBIT_CHECK(validation_size >= 0 && validation_size < n,
               "validation size " + std::to_string(validation_size) + " must be in [0, " + std::to_string(n) +
                   ") for a training set of " + std::to_string(n) + " images (see --val-size)");
  const int64_t cut = n - validation_size;
  TrainValidation s;
  s.train.images = full.images.narrow(0, 0, cut);
  s.train.labels = full.labels.narrow(0, 0, cut);
  s.validation.images = full.images.narrow(0, cut, validation_size);
  s.validation.labels = full.labels.narrow(0, cut, validation_size);
  return s;
}

}  // namespace lowbit::data
