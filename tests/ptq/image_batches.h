// Calibration-like image batches for the PTQ tests.
#pragma once
#include <cstdint>
#include <vector>

#include "torch_pch.h"

namespace lowbit::ptq::testing {

// Fashion-MNIST-like: mostly dark, some bright blobs, values on the 1/255 grid; n batches of
// `size` images [size, 1, 28, 28], deterministic by seed.
inline std::vector<torch::Tensor> image_batches(int64_t n, int64_t size, uint64_t seed) {
  torch::manual_seed(seed);
  std::vector<torch::Tensor> out;
  for (int64_t i = 0; i < n; ++i) out.push_back((torch::rand({size, 1, 28, 28}).pow(3) * 255).round() / 255);
  return out;
}

}  // namespace lowbit::ptq::testing
