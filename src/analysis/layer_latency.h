// Per-layer latency of the integer runtime at each weight container width, for the latency
// budget of the mixed-precision search (analysis/bit_allocation.h).
//
// For each container width b (8, 4, 2, 1 bits), the FP32 checkpoint is quantized uniformly to
// b-bit weights (round-to-nearest PTQ: only the shapes and widths matter for speed, not the
// values), converted, and profiled by the runtime (runtime::profile_model: median CPU ms per op
// over the timed runs). A layer's time at width b is its op's median; everything that is not a
// weight layer (pools, adds, input and output stages) is the fixed part, taken from the 8-bit
// model. Activations are 8-bit codes in every runtime kernel, so activation width does not enter.
// The table holds this machine's figures (ISA, threads and batch recorded with them).
#pragma once
#include <cstdint>
#include <iosfwd>
#include <string>
#include <vector>

#include "analysis/bit_allocation.h"

namespace lowbit::analysis {

struct LatencyOptions {
  std::vector<int> container_bits{8, 4, 2, 1};
  int64_t batch = 1;
  int threads = 1;
  std::string isa;          // "" = LOWBIT_ISA or the best the CPU has
  int iterations = 30;
  int64_t calib_batches = 1, calib_batch_size = 64;
  std::string data_dir;
  std::string layout = "auto";  // .npy/.npz arrays; auto: the checkpoint's (data/run_data_layout.h)
  std::ostream* log = nullptr;
};

LatencyTable measure_layer_latency(const std::string& checkpoint, const LatencyOptions& options);

}  // namespace lowbit::analysis
