// Per-channel input normalisation, as training applied it before the input quantizer:
// x' = (x - mean[c]) / std[c], in float32, subtract then divide (no reciprocal, no fused
// multiply-add). Training (models::Net), the integer simulation, the runtime's Session and the
// ONNX export's Sub/Div nodes all compute this one expression, so they agree bit for bit.
#pragma once

namespace lowbit::quant {

inline float normalise_input(float x, float mean, float std_dev) {
  return (x - mean) / std_dev;  // no fused form exists for a subtraction then a division
}

}  // namespace lowbit::quant
