#include "runtime/kernels/depthwise_kernels.h"

namespace lowbit::runtime {

std::vector<int32_t> pack_depthwise_weights(const Op& op) {
  const int32_t KH = op.kernel_h, KW = op.kernel_w, pw = (KW + 1) / 2, C = op.out_channels;
  std::vector<int32_t> w(static_cast<size_t>(KH) * pw * C);
  for (int32_t c = 0; c < C; ++c)
    for (int32_t kh = 0; kh < KH; ++kh)
      for (int32_t j = 0; j < pw; ++j) {
        const auto tap = [&](int32_t kw) {
          return kw < KW ? op.weight.value((static_cast<size_t>(c) * KH + kh) * KW + kw) : 0;
        };
        w[(static_cast<size_t>(kh) * pw + j) * C + c] = pack_int16_pair(tap(2 * j), tap(2 * j + 1));
      }
  return w;
}

}  // namespace lowbit::runtime
