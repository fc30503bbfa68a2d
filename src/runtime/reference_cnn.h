// A model with the reference CNN's shape and deterministic random weights, for benchmarks and
// smoke tests of the runtime without a trained model:
//   input [1, 28, 28] (scale 1/255, zp 0) -> conv 1->32 3x3 pad 1 + ReLU -> maxpool 2
//   -> conv 32->64 3x3 pad 1 + ReLU -> maxpool 2 -> flatten -> linear 3136->128 + ReLU
//   -> linear 128->10 (output layer). About 4.2 M MACs per image.
// And a model with the shape of bench/onnx_examples.py's MobileNetV2Tiny (the imported-model
// example): stem conv 1->16 3x3 + ReLU6, five inverted residual blocks (1x1 expand + ReLU6, 3x3
// depthwise + ReLU6, 1x1 projection, residual add where the shape allows), global average pool,
// linear 48->10. About 5.9 M MACs per image, mostly 1x1 and depthwise convs.
#pragma once
#include <cstdint>

#include "runtime/model.h"

namespace lowbit::runtime {

Model random_reference_cnn(uint32_t seed, int32_t weight_bits = 8, quant::Grid grid = quant::Grid::Integer);
Model random_mobilenet_tiny(uint32_t seed, int32_t weight_bits = 8, quant::Grid grid = quant::Grid::Integer);

}  // namespace lowbit::runtime
