// A quantized projection's weights (QuantLinear, decoder_model.h) in the graph section of a
// decoder or encoder .lbq file (runtime-internal; decoder_model_file.h and encoder_model_file.h
// give the layouts): group_size, bits (i32), grid (u32: 0 Integer, 1 Odd), packed codes (U8 tensor
// index), scales (F32 tensor index). The shape (in_features, out_features) is the caller's.
#pragma once
#include <string>

#include "runtime/decoder_model.h"
#include "runtime/lbq_format.h"

namespace lowbit::runtime::lbq {

inline void write_quant_weights(Writer& g, TensorList& tensors, const QuantLinear& w) {
  g.i32(w.group_size);
  g.i32(w.bits);
  g.u32(static_cast<uint32_t>(w.grid));
  g.u32(tensors.add(DType::U8, w.packed.data(), w.packed.size()));
  g.u32(tensors.floats(w.scales));
}

// `field` names the projection in errors ("layer 0 attn_q"); the tensors arrive with resolve().
inline void read_quant_weights(Reader& r, TensorRequests& tensors, const std::string& field, QuantLinear& w) {
  w.group_size = r.i32("group_size");
  w.bits = r.i32("weight bits");
  const uint32_t grid = r.u32("weight grid");
  if (grid > 1) r.fail(field + ": weight grid " + std::to_string(grid) + " is unknown");
  w.grid = static_cast<quant::Grid>(grid);
  tensors.u8(r.u32("packed weight tensor index"), field + " weights", w.packed);
  tensors.f32(r.u32("scale tensor index"), field + " scales", w.scales);
}

}  // namespace lowbit::runtime::lbq
