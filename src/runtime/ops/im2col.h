// im2col building blocks of the GEMM op (gemm_op.cpp): the copy slack, the row order of the
// conv + max-pool fusion, and the "stacked rows" image of small-K convolutions.
#pragma once
#include <cstdint>
#include <cstring>

#include "runtime/kernels/gemm_config.h"
#include "runtime/kernels/im2col_kernels.h"
#include "runtime/kernels/isa_kernels.h"
#include "runtime/model.h"

namespace lowbit::runtime {

// im2col runs are short (conv1: 3 bytes, conv2: 96): they are copied in whole 16-byte blocks here
// or by the level's gather kernel (avx2: 32-byte blocks), which may read and write up to 31 bytes
// past the run. The buffers carry that slack (in elements, so more for int16); the bytes
// written past a run are overwritten by the next run or row, or lie in the row's padding K..Kp,
// which is zeroed after the row is built.
constexpr int64_t kCopySlack = 32;
static_assert(kCopySlack >= kGatherSlack, "buffers read and written by the gather kernels need their slack");
inline void copy_run(void* dst, const void* src, size_t bytes) {
  auto* d = static_cast<uint8_t*>(dst);
  const auto* s = static_cast<const uint8_t*>(src);
  for (size_t j = 0; j < bytes; j += 16) std::memcpy(d + j, s + j, 16);
}

// Position of im2col row m in the (item n, pooled row ph, pooled column pw, window tap ti, tj) order
// of the conv + pool fusion (no pool: 1x1 windows), advanced row by row without divisions; the conv
// output position is (ph * pkh + ti, pw * pkw + tj).
struct RowCursor {
  int64_t n;
  int32_t ph, pw, ti, tj;
  const int32_t pooled_h, pooled_w, pkh, pkw;
  RowCursor(int64_t m, int64_t rows_per_item, int32_t taps, int32_t pooled_w_, int32_t pkh_, int32_t pkw_)
      : n(m / rows_per_item),
        pooled_h(static_cast<int32_t>(rows_per_item / taps / pooled_w_)), pooled_w(pooled_w_), pkh(pkh_), pkw(pkw_) {
    const int32_t pos = static_cast<int32_t>((m % rows_per_item) / taps), tap = static_cast<int32_t>((m % rows_per_item) % taps);
    ph = pos / pooled_w;
    pw = pos % pooled_w;
    ti = tap / pkw;
    tj = tap % pkw;
  }
  int64_t oh() const { return int64_t{ph} * pkh + ti; }
  int64_t ow() const { return int64_t{pw} * pkw + tj; }
  void next() {
    if (++tj < pkw) return;
    tj = 0;
    if (++ti < pkh) return;
    ti = 0;
    if (++pw < pooled_w) return;
    pw = 0;
    if (++ph < pooled_h) return;
    ph = 0;
    ++n;
  }
};

// Small-K convolutions (conv1: C = 1, 3x3, K = 9) spend most of their time building im2col rows
// from KH short runs. Instead the input is rewritten once as a "stacked rows" image
// S[n][oh][w] = 4 bytes (P[oh * stride_h + kh][w][c] for kh, c; zero after KH * C), P the padded
// input, so that the im2col row of (oh, ow) is the 4 * KW contiguous bytes at S[n][oh][ow * stride_w]
// (one 16-byte copy). The weights are reordered to match, k = 4 * kw + C * kh + c, with zero weights
// at the unused bytes. Used when this costs no extra quads of K (4 * KW = round_up(K, 4)) and the
// conv is not dilated.
bool stacks_rows(const Op& op, const GemmConfig* config);

// Stacked-rows image of one padded item (stacks_rows): rows oh < OH of 4-byte columns w < pad_w.
// stack_c1: the level's vector build for C == 1 (nullptr: scalar loops).
void stack_rows(const Op& op, const uint8_t* padded, int64_t pad_w, int32_t C, int32_t OH, StackRowsC1Fn stack_c1,
                uint8_t* out);

}  // namespace lowbit::runtime
