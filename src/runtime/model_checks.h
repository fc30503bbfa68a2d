// Checks shared by the transformer model validators (validate_decoder_model, decoder_model.cpp;
// validate_encoder_model, encoder_model.cpp; runtime-internal). `where` says where the model came
// from ("model file '<path>'", "convert", ...); every error names it, the field and what was
// expected, and ends with what to do.
#pragma once
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "base/error.h"
#include "quant/bit_packing.h"
#include "runtime/decoder_model.h"  // QuantLinear

namespace lowbit::runtime::model_checks {

[[noreturn]] inline void bad(const std::string& where, const std::string& what) {
  throw Error(where + ": " + what + "; the model is damaged or was written by another tool, re-convert it");
}

inline void check_vector(const std::string& where, const std::string& field, size_t got, int64_t want) {
  if (static_cast<int64_t>(got) != want)
    bad(where, field + " has " + std::to_string(got) + " values, expected " + std::to_string(want));
}

inline void check_finite(const std::string& where, const std::string& field, const std::vector<float>& v,
                         bool positive) {
  for (size_t i = 0; i < v.size(); ++i)
    if (!std::isfinite(v[i]) || (positive && !(v[i] > 0.0f)))
      bad(where, field + "[" + std::to_string(i) + "] = " + std::to_string(v[i]) +
                     (positive ? " is not a positive finite number" : " is not finite"));
}

// A quantized projection whose shape the caller has checked: group size, bits and grid, the packed
// code count and the scales. `f` prefixes every field ("layer 0 attn_q: "); `scales` names the
// scales ("scales", "weight scales").
inline void check_quant_weights(const std::string& where, const std::string& f, const QuantLinear& w,
                                const std::string& scales) {
  if (w.group_size < 1 || w.group_size > w.in_features)
    bad(where, f + "group size " + std::to_string(w.group_size) + " is outside [1, " + std::to_string(w.in_features) + "]");
  if (w.bits != 1 && w.bits != 2 && w.bits != 4 && w.bits != 8)
    bad(where, f + "weight bits " + std::to_string(w.bits) + " is not 1, 2, 4 or 8");
  if (w.grid == quant::Grid::Odd && w.bits > 2) bad(where, f + "Odd-grid weights have 1 or 2 bits, got " + std::to_string(w.bits));
  if (w.grid == quant::Grid::Integer && w.bits == 1) bad(where, f + "1-bit weights must use the Odd grid (binary)");
  check_vector(where, f + "packed weights", w.packed.size(),
               static_cast<int64_t>(quant::packed_size(static_cast<size_t>(w.in_features) * w.out_features, w.bits)));
  check_vector(where, f + scales, w.scales.size(), int64_t{w.out_features} * w.groups());
  check_finite(where, f + scales, w.scales, true);
}

}  // namespace lowbit::runtime::model_checks
