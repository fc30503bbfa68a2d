// Decoder language models in .lbq files: format version 2, header model kind 2 (lbq_format.h).
// The container (header, tensor table, 64-byte aligned tensors, CRC-32s) is the one of
// model_file.h; the graph section holds (docs/transformers.md, "File format"):
//   name (u32 length + bytes), vocab, width, heads, hidden, context (i32), rope_base (f64),
//   norm_eps (f32), layer count (u32), flags (u32; bit 0: quantized head),
//   tensor indices of embedding, norm_f and head (F32; head: 0xFFFFFFFF when quantized),
//   per layer: norm1, norm2 (F32 tensor indices) and the projections q, k, v, o, gate, up, down,
//   each as in_features, out_features, group_size, bits (i32), grid (u32: 0 Integer, 1 Odd),
//   packed codes (U8 tensor index), scales (F32 tensor index); then the quantized head likewise;
//   then the tensor table.
// Every count, size, index, enum and checksum is checked before use (validate_decoder_model
// last); errors are lowbit::Error naming the file and the field.
#pragma once
#include <string>

#include "runtime/decoder_model.h"

namespace lowbit::runtime {

constexpr uint32_t kDecoderFormatVersion = 2;

void save_decoder_model(const DecoderModel& model, const std::string& path);  // atomic
DecoderModel load_decoder_model(const std::string& path);
std::string serialize_decoder_model(const DecoderModel& model);
DecoderModel parse_decoder_model(const std::string& bytes, const std::string& name);

// Whether the .lbq file at `path` holds a decoder (version 2, kind 2) rather than an op graph,
// from its header alone (a file too short or not a model reads as "not a decoder"; the loader
// then reports what is wrong).
bool is_decoder_model_file(const std::string& path);

}  // namespace lowbit::runtime
