// Training-time augmentation (`lowbit train` / `lowbit qat`, off by default): random crop with
// zero padding and horizontal flip. The random choices of a batch are a pure function of the
// run's seed and the optimizer step, so a resumed run (--resume) draws exactly what the
// uninterrupted run drew, without any generator state in the checkpoint.
#pragma once
#include <cstdint>

#include <nlohmann/json.hpp>

#include "torch_pch.h"

namespace lowbit::data {

struct AugmentOptions {
  int64_t crop_pad = 0;  // > 0: pad by this many zero pixels on each side, crop back at random
  bool flip = false;     // flip left-right with probability 0.5
  bool active() const { return crop_pad > 0 || flip; }
  void validate() const;
  // The config's "augment" section ({"crop_pad": 4, "flip": true}); absent = off.
  nlohmann::json to_json() const;
  static AugmentOptions from_json(const nlohmann::json& j);
};

// `x` [B, C, H, W] is the slice [offset, offset + B) of global batch `step` (of size
// `global_batch`): the draws are made for the whole global batch, so data-parallel ranks that
// each hold a shard augment it as one process would.
torch::Tensor augment_batch(const torch::Tensor& x, const AugmentOptions& options, uint64_t seed, int64_t step,
                            int64_t offset, int64_t global_batch);

}  // namespace lowbit::data
