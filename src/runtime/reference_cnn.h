// A model with the reference CNN's shape and deterministic random weights, for benchmarks and
// smoke tests of the runtime without a trained model:
//   input [1, 28, 28] (scale 1/255, zp 0) -> conv 1->32 3x3 pad 1 + ReLU -> maxpool 2
//   -> conv 32->64 3x3 pad 1 + ReLU -> maxpool 2 -> flatten -> linear 3136->128 + ReLU
//   -> linear 128->10 (output layer). About 4.2 M MACs per image.
#pragma once
#include <cstdint>

#include "runtime/model.h"

namespace lowbit::runtime {

Model random_reference_cnn(uint32_t seed, int32_t weight_bits = 8, quant::Grid grid = quant::Grid::Integer);

}  // namespace lowbit::runtime
