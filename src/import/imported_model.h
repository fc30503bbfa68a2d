// A float model imported from ONNX, lowered to the layer vocabulary lowbit models are written with
// (models/layer.h): conv (+ batch norm + activation), linear (+ activation), max / average pooling,
// global average pooling, flatten, residual add (+ activation), channel concatenation and element-wise functions. No LibTorch here: the torch
// side (models/imported_net.h) builds a Net from it, and the fuzzer reads files with it.
//
// The structure (everything but the weights) is also kept as JSON in the config of every run that
// starts from the imported model, so that its checkpoints rebuild without the ONNX file.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace lowbit::import {

struct WeightArray {
  std::vector<int64_t> dims;
  std::vector<float> values;
};

// One lowbit node. Value numbering is the Net's: 0 is the network input, i + 1 the output of
// layer i.
struct ImportedLayer {
  std::string name;        // lowbit node name, [a-z0-9_]+, unique
  std::string onnx_nodes;  // the ONNX node(s) it came from, e.g. "conv1 (Conv) + bn1 (BatchNormalization)"
  std::string kind;        // "conv", "linear", "maxpool", "avgpool", "gap", "flatten", "add", "concat", "pointwise"
  std::vector<int> inputs;
  std::string activation = "none";  // "none", "relu", "relu6" (models::activation_name)

  // conv
  int64_t in_channels = 0, out_channels = 0, kernel = 0, stride = 1, padding = 0, groups = 1;
  int64_t dilation = 1;  // ONNX dilations [d, d]; JSON key "dilation", written only when != 1 (absent: 1)
  bool batch_norm = false;
  // linear
  int64_t in_features = 0, out_features = 0;
  bool bias = true;
  // maxpool / avgpool
  int64_t pool_kernel = 0, pool_stride = 0, pool_padding = 0;
  // pointwise: quant::PointwiseFunction's name ("leaky_relu", "sigmoid", "hard_sigmoid",
  // "hard_swish", "tanh", "silu", "affine": alpha * x + beta) and parameters
  std::string function;
  float alpha = 0.0f, beta = 0.0f;

  // FP32 weights, in the layout of the torch module they load into:
  //   conv:   "weight" [out, in / groups, k, k]; "bias" [out] when !batch_norm;
  //           "bn_weight", "bn_bias", "bn_mean", "bn_var" [out] when batch_norm (epsilon 1e-5)
  //   linear: "weight" [out, in]; "bias" [out] when bias
  std::map<std::string, WeightArray> weights;
};

struct ImportedModel {
  std::string source;                // the file it was read from
  std::string graph_name;
  std::string producer;              // producer_name and version from the file
  int64_t opset = 0;                 // of the default ("ai.onnx") domain
  std::string input_name, output_name;
  std::vector<int64_t> input_shape;  // per example: {C, H, W} or {features}
  int64_t num_outputs = 0;           // logits per example
  std::vector<ImportedLayer> layers;
};

// Everything but the weights; structure_from_json(structure_to_json(m)) has empty weight maps.
nlohmann::json structure_to_json(const ImportedModel& model);
// Throws lowbit::Error naming the key for a structure this build cannot rebuild.
ImportedModel structure_from_json(const nlohmann::json& json);

}  // namespace lowbit::import
