// Distribution shift for robustness evaluation: image corruptions in the style of MNIST-C
// (Mu & Gilmer 2019) and ImageNet-C (Hendrycks & Dietterich 2019), five severities each, generated
// in C++ with a fixed seed. They act on uint8 pixels, so a checkpoint (LibTorch) and a .lbq model
// (integer runtime) evaluated on a corrupted set see exactly the same bytes. No LibTorch here.
//
// Each image gets its own random stream, derived from (seed, corruption, severity, the image's
// position in the call): the same call gives the same bytes on every run and machine, and the
// evaluation (which corrupts a whole split in one call) does not depend on batch size or threads.
// Parameters per severity are listed in docs/robustness.md.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace lowbit::data {

// "gaussian_noise", "shot_noise", "impulse_noise", "gaussian_blur", "motion_blur", "contrast",
// "brightness", "rotate", "translate", "elastic".
const std::vector<std::string>& corruption_names();

// Corrupts `count` images of [channels, height, width] uint8 pixels (0 = black) in place.
// severity 1..5. Throws lowbit::Error for an unknown name (listing the known ones) or severity.
void corrupt_images(uint8_t* pixels, int64_t count, int32_t channels, int32_t height, int32_t width,
                    const std::string& name, int severity, uint64_t seed = 0);

// --shift values: "all" or a comma-separated list of names, validated; severities "1..5" style
// ranges or comma lists ("3", "1,3,5", "1-5").
std::vector<std::string> parse_corruption_list(const std::string& spec);
std::vector<int> parse_severity_list(const std::string& spec);

}  // namespace lowbit::data
