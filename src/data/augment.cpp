#include "data/augment.h"

#include "base/error.h"

namespace lowbit::data {

void AugmentOptions::validate() const {
  LOWBIT_CHECK(crop_pad >= 0 && crop_pad <= 64,
               "--augment-crop " + std::to_string(crop_pad) + " must be in [0, 64] (padding in pixels; 0: off)");
}

nlohmann::json AugmentOptions::to_json() const { return {{"crop_pad", crop_pad}, {"flip", flip}}; }

AugmentOptions AugmentOptions::from_json(const nlohmann::json& j) {
  AugmentOptions o;
  if (j.is_null()) return o;
  LOWBIT_CHECK(j.is_object(), "config section 'augment' must be an object like {\"crop_pad\": 4, \"flip\": true}");
  for (auto it = j.begin(); it != j.end(); ++it) {
    LOWBIT_CHECK(it.key() == "crop_pad" || it.key() == "flip",
                 "unknown key 'augment." + it.key() + "' in the config (known: crop_pad, flip)");
  }
  o.crop_pad = j.value("crop_pad", int64_t{0});
  o.flip = j.value("flip", false);
  o.validate();
  return o;
}

torch::Tensor augment_batch(const torch::Tensor& x, const AugmentOptions& o, uint64_t seed, int64_t step,
                            int64_t offset, int64_t global_batch) {
  if (!o.active()) return x;
  LOWBIT_CHECK(x.dim() == 4, "augmentation takes image batches [B, C, H, W]");
  // A generator per step: seed and step mixed (splitmix64's constant) so that neighbouring steps
  // and seeds give unrelated streams.
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed * 0x9E3779B97F4A7C15ull + static_cast<uint64_t>(step) + 1);
  const int64_t b = x.size(0), h = x.size(2), w = x.size(3);
  torch::Tensor out = x;
  if (o.crop_pad > 0) {
    const int64_t p = o.crop_pad;
    const auto dy = torch::randint(0, 2 * p + 1, {global_batch}, gen, torch::kInt64).narrow(0, offset, b);
    const auto dx = torch::randint(0, 2 * p + 1, {global_batch}, gen, torch::kInt64).narrow(0, offset, b);
    const auto padded = torch::constant_pad_nd(x, {p, p, p, p}, 0.0);
    out = torch::empty_like(x);
    const auto* py = dy.data_ptr<int64_t>();
    const auto* px = dx.data_ptr<int64_t>();
    for (int64_t i = 0; i < b; ++i) out[i].copy_(padded[i].narrow(1, py[i], h).narrow(2, px[i], w));
  }
  if (o.flip) {
    const auto flip = torch::rand({global_batch}, gen).narrow(0, offset, b).lt(0.5).view({b, 1, 1, 1});
    out = torch::where(flip, out.flip({3}), out);
  }
  return out.contiguous();
}

}  // namespace lowbit::data
