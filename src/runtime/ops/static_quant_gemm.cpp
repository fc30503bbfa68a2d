#include "runtime/ops/static_quant_gemm.h"

#include <algorithm>

namespace lowbit::runtime::ops {

StaticQuantGemm::StaticQuantGemm(const QuantLinear& w, int32_t zero_point, Isa isa)
    : in_(w.in_features),
      out_(w.out_features),
      group_size_(w.group_size),
      groups_(w.groups()),
      zx_(zero_point),
      config_(isa == Isa::Ref ? nullptr : find_gemm_config(isa, w.bits, w.grid)) {
  const std::vector<int8_t> v = w.values();
  values_.assign(v.begin(), v.end());
  if (!config_) return;
  multiplier_.assign(static_cast<size_t>(out_), 0);
  shift_.assign(static_cast<size_t>(out_), 31);
  for (int32_t g = 0; g < groups_; ++g) {
    Group G;
    G.k0 = g * group_size_;
    G.len = std::min(group_size_, in_ - G.k0);
    G.kp = (G.len + config_->k_align - 1) / config_->k_align * config_->k_align;
    std::vector<int32_t> wg(static_cast<size_t>(out_) * G.len);
    for (int32_t o = 0; o < out_; ++o)
      std::copy_n(values_.data() + static_cast<size_t>(o) * in_ + G.k0, G.len, wg.data() + static_cast<size_t>(o) * G.len);
    G.packed = config_->pack(wg.data(), out_, G.len);
    const std::vector<int32_t> zeros(static_cast<size_t>(out_), 0);
    G.bias = config_->input == GemmInput::U8 ? fold_zero_point(zeros.data(), wg.data(), out_, G.len, zx_) : zeros;
    packed_.push_back(std::move(G));
  }
}

std::string StaticQuantGemm::kernel_name() const { return config_ ? config_->name : "static_gemm_ref"; }

void StaticQuantGemm::run(const uint8_t* codes, int64_t rows, int32_t* acc) const {
  if (!config_) {
    for (int64_t m = 0; m < rows; ++m)
      for (int32_t o = 0; o < out_; ++o)
        for (int32_t g = 0; g < groups_; ++g) {
          const int32_t k0 = g * group_size_, k1 = std::min(in_, k0 + group_size_);
          uint32_t s = 0;  // int32 with wrap-around, defined on uint32
          for (int32_t k = k0; k < k1; ++k)
            s += static_cast<uint32_t>(int32_t{codes[m * in_ + k]} - zx_) *
                 static_cast<uint32_t>(values_[static_cast<size_t>(o) * in_ + k]);
          acc[(m * out_ + o) * groups_ + g] = static_cast<int32_t>(s);
        }
    return;
  }
  std::vector<int32_t> c(static_cast<size_t>(rows) * out_);
  for (int32_t g = 0; g < groups_; ++g) {
    const Group& G = packed_[static_cast<size_t>(g)];
    GemmOutput out;
    out.bias = G.bias.data();
    out.multiplier = multiplier_.data();
    out.shift = shift_.data();
    out.y_i32 = c.data();
    out.ldy = out_;
    if (config_->input == GemmInput::U8) {
      std::vector<uint8_t> a(static_cast<size_t>(rows) * G.kp + 64, 0);  // padding: code 0, weights 0 there
      for (int64_t m = 0; m < rows; ++m) std::copy_n(codes + m * in_ + G.k0, G.len, a.data() + m * G.kp);
      config_->gemm(rows, out_, G.len, a.data(), G.kp, G.packed.data(), out);
    } else {
      std::vector<int16_t> a(static_cast<size_t>(rows) * G.kp + 64, 0);
      for (int64_t m = 0; m < rows; ++m) config_->widen(codes + m * in_ + G.k0, G.len, zx_, a.data() + m * G.kp);
      config_->gemm(rows, out_, G.len, a.data(), G.kp, G.packed.data(), out);
    }
    for (int64_t m = 0; m < rows; ++m)
      for (int32_t o = 0; o < out_; ++o) acc[(m * out_ + o) * groups_ + g] = c[static_cast<size_t>(m * out_ + o)];
  }
}

}  // namespace lowbit::runtime::ops
