// Encoder image models (vit-tiny) in .lbq files: format version 2, header model kind 3
// (lbq_format.h). The container (header, tensor table, 64-byte aligned tensors, CRC-32s) is the one
// of model_file.h; the graph section holds (docs/transformers.md, "vit-tiny on the integer runtime"):
//   name (u32 length + bytes), channels, image_size, patch, width, heads, hidden, classes (i32),
//   norm_eps (f32), layer count (u32), flags (u32; bit 0: the input is quantized), input grid,
//   patch_embed (linear), position (F32 tensor index),
//   per layer: norm1 weight, norm1 bias, norm2 weight, norm2 bias (F32 tensor indices), the linears
//     q, k, v, o, fc1, fc2, add flags (u32; bit 0: add1 grid, bit 1: add2 grid), the add grids,
//   norm_f weight and bias (F32 tensor indices), head (linear); then the tensor table.
// A grid: scale (f32), zero point, qmin, qmax (i32). A linear: in_features, out_features (i32),
//   flags (u32; bit 0 quantized weights, 1 bias, 2 GELU, 3 input grid, 4 output grid), then
//   quantized: group_size, bits (i32), grid (u32: 0 Integer, 1 Odd), packed codes (U8 tensor
//   index), scales (F32 tensor index, [out, groups]); float: weights (F32 tensor index, [out, in]);
//   bias (F32 tensor index) if flagged; input grid, output grid if flagged.
// Every count, size, index, enum and checksum is checked before use (validate_encoder_model
// last); errors are lowbit::Error naming the file and the field.
#pragma once
#include <string>

#include "runtime/encoder_model.h"

namespace lowbit::runtime {

constexpr uint32_t kEncoderFormatVersion = 2;

void save_encoder_model(const EncoderModel& model, const std::string& path);  // atomic
EncoderModel load_encoder_model(const std::string& path);
std::string serialize_encoder_model(const EncoderModel& model);
EncoderModel parse_encoder_model(const std::string& bytes, const std::string& name);

// Whether the .lbq file at `path` holds an encoder (version 2, kind 3), from its header alone.
bool is_encoder_model_file(const std::string& path);

}  // namespace lowbit::runtime
