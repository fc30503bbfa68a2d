// How the elements of a row-major tensor map onto (scale, zero_point) pairs, as runs of
// consecutive elements ("segments") that share one pair. Kernels walk segments so that the
// inner loop has a constant scale and zero point (vectorisable) and threads split work by
// segment. The mapping is exactly quant::qparam_index; tests check it.
#pragma once
#include <algorithm>
#include <cstdint>
#include <vector>

#include "base/error.h"
#include "quant/quant_spec.h"

namespace lowbit::qat {

struct Segment {
  int64_t begin = 0;   // flat index of the first element
  int64_t length = 0;  // number of consecutive elements
  int64_t param = 0;   // index into the scale / zero_point vectors
};

class QParamLayout {
 public:
  // `chunk` bounds segment length for per-tensor specs so threads get work to share.
  QParamLayout(const quant::QuantSpec& spec, const std::vector<int64_t>& shape, int64_t chunk = 16384)
      : spec_(spec) {
    numel_ = 1;
    for (int64_t d : shape) numel_ *= d;
    num_params_ = quant::num_qparams(spec, shape);
    switch (spec.granularity) {
      case quant::Granularity::PerTensor:
        seg_len_ = std::max<int64_t>(1, chunk);
        num_segments_ = (numel_ + seg_len_ - 1) / seg_len_;
        break;
      case quant::Granularity::PerChannel: {
        channels_ = shape[spec.axis];
        seg_len_ = 1;
        for (size_t i = spec.axis + 1; i < shape.size(); ++i) seg_len_ *= shape[i];
        num_segments_ = seg_len_ == 0 ? 0 : numel_ / seg_len_;
        break;
      }
      case quant::Granularity::PerGroup: {
        LOWBIT_CHECK(!shape.empty(), "per-group quantization needs a tensor of rank >= 1");
        channels_ = shape[0];
        row_ = channels_ == 0 ? 0 : numel_ / channels_;
        groups_per_row_ = (row_ + spec.group_size - 1) / spec.group_size;
        seg_len_ = spec.group_size;
        num_segments_ = channels_ * groups_per_row_;
        break;
      }
    }
  }

  int64_t numel() const { return numel_; }
  int64_t num_params() const { return num_params_; }
  int64_t num_segments() const { return num_segments_; }

  Segment segment(int64_t i) const {
    switch (spec_.granularity) {
      case quant::Granularity::PerTensor:
        return {i * seg_len_, std::min(seg_len_, numel_ - i * seg_len_), 0};
      case quant::Granularity::PerChannel:
        return {i * seg_len_, seg_len_, i % channels_};
      case quant::Granularity::PerGroup: {
        const int64_t c = i / groups_per_row_, g = i % groups_per_row_;
        const int64_t start = g * spec_.group_size;
        return {c * row_ + start, std::min<int64_t>(spec_.group_size, row_ - start), i};
      }
    }
    return {};
  }

  // Number of elements that share parameter p (the N of LSQ's gradient scale).
  int64_t elements_of(int64_t p) const {
    switch (spec_.granularity) {
      case quant::Granularity::PerTensor: return numel_;
      case quant::Granularity::PerChannel: return channels_ == 0 ? 0 : numel_ / channels_;
      case quant::Granularity::PerGroup: {
        const int64_t g = p % groups_per_row_;
        return std::min<int64_t>(spec_.group_size, row_ - g * spec_.group_size);
      }
    }
    return 0;
  }

 private:
  quant::QuantSpec spec_;
  int64_t numel_ = 0, num_params_ = 0, num_segments_ = 0, seg_len_ = 1;
  int64_t channels_ = 1, row_ = 0, groups_per_row_ = 1;
};

}  // namespace lowbit::qat
