// The integer GEMM of encoder linears whose input lies on a static per-tensor grid (uint8 codes q,
// zero point z): one int32 accumulator per (row, output, weight group),
//
//   acc[m, o, g] = sum_{k in group g} (q[m, k] - z) * w[o, k]        (two's-complement wrap)
//
// w: the weight values (int8, int4, ternary, int2, binary +-1, SEQ +-1/+-3). Level `ref` runs the
// loop above; other levels run the op-graph runtime's GEMM kernels (kernels/gemm_config.h:
// find_gemm_config(isa, bits, grid), int32 output stage, U8 kernels with -z * sum_k w folded into
// their bias, S16 ones on x - z), one call per weight group. Every level gives the reference's
// accumulators bit for bit (tests/runtime/encoder_test.cpp).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "runtime/cpu_features.h"
#include "runtime/decoder_model.h"  // QuantLinear
#include "runtime/kernels/gemm_config.h"

namespace lowbit::runtime::ops {

class StaticQuantGemm {
 public:
  StaticQuantGemm() = default;
  StaticQuantGemm(const QuantLinear& w, int32_t zero_point, Isa isa);
  // acc [rows, out, groups] from codes [rows, in] (row stride `in`).
  void run(const uint8_t* codes, int64_t rows, int32_t* acc) const;
  // The kernel's symbol name ("u8_w8_gemm_fxp_12x32__avx512vnni", ...) or "static_gemm_ref" for `ref`.
  std::string kernel_name() const;
  int32_t groups() const { return groups_; }

 private:
  int32_t in_ = 0, out_ = 0, group_size_ = 0, groups_ = 0, zx_ = 0;
  const GemmConfig* config_ = nullptr;  // null: the reference loop
  std::vector<int32_t> values_;         // [out, in] (reference)
  struct Group {
    int32_t k0 = 0, len = 0, kp = 0;
    std::vector<uint8_t> packed;
    std::vector<int32_t> bias;  // U8 kernels: -z * sum_k w; S16: zeros
  };
  std::vector<Group> packed_;
  std::vector<int32_t> multiplier_, shift_;  // unused by the int32 output stage; kept valid
};

}  // namespace lowbit::runtime::ops
