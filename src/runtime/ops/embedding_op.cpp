#include "runtime/ops/embedding_op.h"

#include <algorithm>

#include "base/error.h"

namespace lowbit::runtime::ops {

void embedding_lookup(const DecoderModel& m, const int32_t* tokens, int64_t n, float* x) {
  for (int64_t t = 0; t < n; ++t) {
    const int32_t id = tokens[t];
    LOWBIT_CHECK(id >= 0 && id < m.vocab, "token " + std::to_string(id) + " at position " + std::to_string(t) +
                                              " is outside the vocabulary [0, " + std::to_string(m.vocab) + ")");
    const float* row = m.embedding.data() + static_cast<size_t>(id) * static_cast<size_t>(m.width);
    std::copy(row, row + m.width, x + t * m.width);
  }
}

}  // namespace lowbit::runtime::ops
