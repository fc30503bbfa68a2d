// Embedding lookup of a decoder model (float table; a quantized table is stored dequantized).
#pragma once
#include <cstdint>

#include "runtime/decoder_model.h"

namespace lowbit::runtime::ops {

// x[t, :] = embedding[tokens[t], :] for t < n. Throws lowbit::Error for a token outside the vocabulary.
void embedding_lookup(const DecoderModel& m, const int32_t* tokens, int64_t n, float* x);

}  // namespace lowbit::runtime::ops
