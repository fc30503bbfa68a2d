// Shared by the export tests: small quantized models built in-process, as tests/qat/convert_test
// does, and a way to run ONNX Runtime's Node.js binding on a model.
#pragma once
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "qat/quantized_layers.h"
#include "train/test_files.h"

#ifndef LOWBIT_SOURCE_DIR
#define LOWBIT_SOURCE_DIR "."
#endif

namespace lowbit::testing {

// A QAT-prepared net whose observers have seen random images (fast; weights as initialised).
inline models::Net calibrated_on_noise(const std::string& model, const std::string& config_json, uint64_t seed = 1) {
  torch::manual_seed(seed);
  models::Net net = models::make_model(model);
  qat::prepare(net, qat::QatConfig::from_json(nlohmann::json::parse(config_json)));
  net->train();
  torch::NoGradGuard no_grad;
  for (int i = 0; i < 3; ++i) net->forward(torch::rand({8, 1, 28, 28}));
  net->eval();
  return net;
}

inline std::string source_dir() {
  const char* env = std::getenv("LOWBIT_SOURCE_DIR");
  return (env != nullptr && env[0] != '\0') ? env : LOWBIT_SOURCE_DIR;
}

inline std::string ort_node_modules() {
  const char* env = std::getenv("LOWBIT_ORT_NODE_MODULES");
  return (env != nullptr && env[0] != '\0') ? env : source_dir() + "/third_party/node/node_modules";
}

// Empty when node and onnxruntime-node are there; otherwise why not.
inline std::string ort_missing_reason() {
  if (std::system("node --version > /dev/null 2>&1") != 0) return "node is not installed";
  if (!std::filesystem::exists(ort_node_modules() + "/onnxruntime-node/package.json"))
    return "onnxruntime-node is not installed under " + ort_node_modules();
  return "";
}

#define LOWBIT_SKIP_WITHOUT_ORT()                                                                        \
  do {                                                                                                   \
    const std::string why = ::lowbit::testing::ort_missing_reason();                                     \
    if (!why.empty()) GTEST_SKIP() << why << "; run scripts/setup.sh to install ONNX Runtime for Node"; \
  } while (0)

inline void write_floats(const std::string& path, const torch::Tensor& t) {
  const torch::Tensor c = t.contiguous().to(torch::kFloat32);
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(c.data_ptr<float>()), static_cast<std::streamsize>(c.numel() * 4));
  ASSERT_TRUE(f.good()) << path;
}

// Runs tests/export/ort_run.js on `model` with `images` ([N, ...] float); returns the logits
// [N, classes]. Fails the test (and returns an undefined tensor) if the run fails.
inline torch::Tensor run_ort(const std::string& model, const torch::Tensor& images, const std::string& dir) {
  const std::string input = dir + "/images.f32", logits = dir + "/logits.bin", log = dir + "/ort_run.log";
  write_floats(input, images);
  std::string shape;
  for (int64_t k = 1; k < images.dim(); ++k) shape += (k > 1 ? "," : "") + std::to_string(images.size(k));
  const std::string cmd = "LOWBIT_ORT_NODE_MODULES='" + ort_node_modules() + "' node '" + source_dir() +
                          "/tests/export/ort_run.js' '" + model + "' '" + input + "' --shape " + shape + " --logits '" +
                          logits + "' > '" + log + "' 2>&1";
  if (std::system(cmd.c_str()) != 0) {
    std::ifstream l(log);
    ADD_FAILURE() << "ONNX Runtime failed on " << model << ":\n" << std::string(std::istreambuf_iterator<char>(l), {});
    return {};
  }
  std::ifstream f(logits, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(f)), {});
  const int64_t n = images.size(0);
  EXPECT_EQ(bytes.size() % (4 * static_cast<size_t>(n)), 0u);
  torch::Tensor out = torch::empty({n, static_cast<int64_t>(bytes.size() / 4 / static_cast<size_t>(n))}, torch::kFloat32);
  std::memcpy(out.data_ptr<float>(), bytes.data(), bytes.size());
  return out;
}

}  // namespace lowbit::testing
