// Running an encoder image model (encoder_model.h, vit-tiny): images in, logits out. The ops live
// in runtime/ops/ (encoder_linear_op with the static-grid integer GEMM, layernorm_op,
// attention_op's full_attention); this class sequences them and owns the buffers.
//
// Threads: images of one run() call are spread over `threads` workers (each with its own
// buffers); every image is computed the same way whatever the thread count, so the logits do not
// depend on it. One EncoderSession must not run on two threads at once.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "runtime/cpu_features.h"
#include "runtime/encoder_model.h"

namespace lowbit::runtime {

struct EncoderOptions {
  int threads = 1;  // worker threads including the caller; <= 0: hardware concurrency
  std::string isa;  // "", "ref", "avx2", "avx512vnni", ...: as SessionOptions::isa ("" = LOWBIT_ISA or the best)
};

class EncoderSession {
 public:
  explicit EncoderSession(EncoderModel model, EncoderOptions options = {});
  ~EncoderSession();
  EncoderSession(EncoderSession&&) noexcept;
  EncoderSession& operator=(EncoderSession&&) noexcept;
  static EncoderSession load(const std::string& path, EncoderOptions options = {});

  // images: [n, channels, image_size, image_size] floats in [0, 1] (as the data loaders give
  // them); returns the logits [n, classes].
  std::vector<float> run(const float* images, int64_t n);

  const EncoderModel& model() const;
  Isa isa() const;
  int threads() const;
  // The integer GEMM kernel names first (one per distinct kernel), then the float ops.
  std::vector<std::string> kernel_names() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace lowbit::runtime
