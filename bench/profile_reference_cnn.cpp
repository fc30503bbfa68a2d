// describe_model table and per-op CPU time of the reference-CNN-shaped model (where the time goes),
// or of the MobileNetV2-tiny-shaped one (model "mobilenet", reference_cnn.h), or of a model file
// (a path ending in .lbq; bits is then ignored). Needs no LibTorch.
//   build/profile_reference_cnn [batch] [threads] [bits] [iterations] [cnn|mobilenet|FILE.lbq]   (bits 8, 7, 4, 2)
// Per op: the mean CPU ms over the iterations and the fastest iteration's (on a shared machine the
// minimum is the run least disturbed by other tenants; compare binaries on the same column).
#include <cstdio>
#include <algorithm>
#include <cstdlib>
#include <string>
#include <vector>

#include "runtime/model_tools.h"
#include "runtime/reference_cnn.h"
#include "runtime/session.h"

using namespace lowbit::runtime;

int main(int argc, char** argv) {
  const int64_t batch = argc > 1 ? std::atoll(argv[1]) : 256;
  const int threads = argc > 2 ? std::atoi(argv[2]) : 2;
  const int bits = argc > 3 ? std::atoi(argv[3]) : 8;
  const int iterations = argc > 4 ? std::atoi(argv[4]) : 10;
  const std::string shape = argc > 5 ? argv[5] : "cnn";
  const bool file = shape.size() > 4 && shape.compare(shape.size() - 4, 4, ".lbq") == 0;
  if (shape != "cnn" && shape != "mobilenet" && !file) {
    std::fprintf(stderr, "profile_reference_cnn: model must be cnn, mobilenet or a .lbq file, not '%s'\n", shape.c_str());
    return 2;
  }
  // bits 7: the int8 model with every weight halved (codes in [-64, 63], what `lowbit qat --wbits 7`
  // deploys as int8): on AVX2 its layers pass the vpmaddubsw pair bound and run u8_w8p
  Model m = file ? Session::load(shape).model()
                 : shape == "cnn" ? random_reference_cnn(1, bits == 7 ? 8 : bits) : random_mobilenet_tiny(1, bits == 7 ? 8 : bits);
  if (bits == 7 && !file)
    for (Op& op : m.ops) {
      if (!op.has_weights()) continue;
      std::vector<int32_t> w(static_cast<size_t>(op.weight_count()));
      for (size_t j = 0; j < w.size(); ++j) w[j] = op.weight.value(j) / 2;
      set_weight_values(op.weight, 8, lowbit::quant::Grid::Integer, w);
    }
  SessionOptions o;
  o.threads = threads;
  o.profile = true;
  std::printf("%s\n", describe_model(m).c_str());
  Session s(m, o);
  std::vector<double> total(m.ops.size() + 1, 0.0), best(m.ops.size() + 1, 1e30);
  std::vector<float> x(static_cast<size_t>(batch * m.in_channels * m.in_height * m.in_width), 0.5f);
  s.run(x.data(), batch);
  for (int it = 0; it < iterations; ++it) {
    s.run(x.data(), batch);
    for (size_t i = 0; i < total.size(); ++i) {
      total[i] += s.op_times_ms()[i];
      best[i] = std::min(best[i], s.op_times_ms()[i]);
    }
  }
  const auto names = s.kernel_names();
  double sum = 0, sum_best = 0;
  std::printf("%-55s %9s %9s\n", "op (CPU ms per run)", "mean", "min");
  for (size_t i = 0; i < total.size(); ++i) {
    std::printf("%-55s %9.3f %9.3f ms\n", i < names.size() ? names[i].c_str() : "input quantize + output",
                total[i] / iterations, best[i]);
    sum += total[i] / iterations;
    sum_best += best[i];
  }
  std::printf("%-55s %9.3f %9.3f ms\n", "total", sum, sum_best);
  std::printf("%s\n", benchmark_model(s, batch, threads, iterations).to_string().c_str());
}
