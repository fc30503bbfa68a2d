#include "data/load_dataset.h"

#include "base/error.h"

namespace lowbit::data {

Dataset to_dataset(const RawDataset& raw) {
  Dataset d;
  const std::vector<int64_t> shape{raw.count, raw.channels, raw.height, raw.width};
  // from_blob does not copy; the conversions below produce owning tensors.
  if (raw.is_float) {
    d.images = torch::from_blob(const_cast<float*>(raw.f32.data()), shape, torch::kFloat32).clone();
  } else {
    d.images = torch::from_blob(const_cast<uint8_t*>(raw.u8.data()), shape, torch::kUInt8)
                   .to(torch::kFloat32)
                   .div_(255.0f)
                   .contiguous();
  }
  d.labels = torch::from_blob(const_cast<int64_t*>(raw.labels.data()), {raw.count}, torch::kInt64).clone();
  return d;
}

Dataset load_dataset(const std::string& spec, const std::string& split, const std::string& layout) {
  return to_dataset(load_raw_dataset(spec, split, layout));
}

RawImages load_dataset_uint8(const std::string& spec, const std::string& split, const std::string& layout) {
  if (detect_source(resolve_data_dir(spec)) == SourceKind::kIdxFolder) {
    return load_fashion_mnist_raw(resolve_data_dir(spec), split);  // as before, without a copy
  }
  RawDataset d = load_raw_dataset(spec, split, layout);
  LOWBIT_CHECK(!d.is_float, "data '" + d.spec + "' stores float pixels; the integer runtime reads uint8 images "
                            "(save the images as uint8 0..255, e.g. (x * 255).round().astype(np.uint8))");
  LOWBIT_CHECK(d.channels == 1, "data '" + d.spec + "' has " + std::to_string(d.channels) +
                                    " channels; the integer runtime's models take one-channel images [1, 28, 28]");
  RawImages raw;
  raw.count = d.count;
  raw.rows = d.height;
  raw.cols = d.width;
  raw.pixels = std::move(d.u8);
  raw.labels.resize(d.labels.size());
  for (size_t i = 0; i < d.labels.size(); ++i) {
    LOWBIT_CHECK(d.labels[i] <= 255, "data '" + d.spec + "' has label " + std::to_string(d.labels[i]) +
                                         "; the integer runtime's evaluation takes labels 0..255");
    raw.labels[i] = static_cast<uint8_t>(d.labels[i]);
  }
  return raw;
}

int64_t num_classes(const Dataset& d) { return d.size() == 0 ? 0 : d.labels.max().item<int64_t>() + 1; }

std::string example_shape_string(const Dataset& d) {
  std::vector<int64_t> shape;
  for (int64_t i = 1; i < d.images.dim(); ++i) shape.push_back(d.images.size(i));
  return shape_string(shape);
}

}  // namespace lowbit::data
