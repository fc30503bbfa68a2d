// Where the integer model departs from fake quantization, layer by layer.
//
// Training optimises the float fake-quantized forward; deployment runs the integer model, which
// the runtime reproduces bit for bit. The two differ only where requantization rounds: float
// division and rounding in fake quantization, a fixed-point multiplier and a shift in the integer
// model (docs/numerics.md). A value close to a rounding boundary can land one step apart, and a
// step changes what every later layer sees. This measures, for every value of the graph, the
// share of activation codes that differ between the two paths and by how many steps, so that
// "accuracy changed after convert" can be traced to the layer where it starts.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "data/fashion_mnist.h"
#include "models/net.h"
#include "runtime/model.h"

namespace lowbit::convert {

struct ValueDrift {
  std::string name;        // "input" or the node's name
  std::string kind;        // the runtime op's kind name ("input" for value 0)
  int64_t elements = 0;    // codes compared (images x elements per image)
  int64_t differing = 0;   // codes that differ between fake quantization and the integer model
  int64_t max_steps = 0;   // largest |difference| in quantization steps
  double sum_steps = 0.0;  // sum of |difference| in steps
  double differing_share() const { return elements ? static_cast<double>(differing) / static_cast<double>(elements) : 0.0; }
  double mean_steps() const { return elements ? sum_steps / static_cast<double>(elements) : 0.0; }
};

struct DriftReport {
  int64_t count = 0;                      // images
  std::vector<ValueDrift> values;         // the input and every hidden op's output, in graph order
  std::string output_name;                // the output layer
  double max_logit_difference = 0.0;      // max |fake-quant logit - integer logit|
  double logit_range = 0.0;               // max - min of the fake-quant logits, for scale
  int64_t predictions_equal = 0;          // images whose argmax agrees
  int64_t fake_quant_correct = 0;         // with labels
  int64_t integer_correct = 0;
  std::string table() const;              // a text table, one row per value
  nlohmann::json to_json() const;
};

// `net`: a quantized (QAT or PTQ) image model; `model`: its conversion (to_runtime_model(net)).
// Runs data.images through both in chunks of `chunk` images.
DriftReport measure_drift(models::Net& net, const runtime::Model& model, const data::Dataset& data, int64_t chunk = 100);

}  // namespace lowbit::convert
