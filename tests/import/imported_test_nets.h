// Imported models written layer by layer, for tests that need a model of a given shape but no ONNX
// file (tests/qat, tests/export, tests/ptq).
#pragma once
#include <string>

#include "import/imported_model.h"

namespace lowbit::import::test_nets {

// A 3x3 conv + batch norm + ReLU reading value `input`.
inline ImportedLayer conv3x3(const std::string& name, int input, int64_t cin, int64_t cout, int64_t stride, int64_t pad,
                             int64_t groups, int64_t dilation) {
  ImportedLayer l;
  l.name = name;
  l.kind = "conv";
  l.inputs = {input};
  l.activation = "relu";
  l.in_channels = cin;
  l.out_channels = cout;
  l.kernel = 3;
  l.stride = stride;
  l.padding = pad;
  l.groups = groups;
  l.dilation = dilation;
  l.batch_norm = true;
  return l;
}

// Global average pooling, flatten and a linear layer of `features` -> 10 after the last layer.
inline void add_classifier_head(ImportedModel& m, int64_t features) {
  const int last = static_cast<int>(m.layers.size());
  ImportedLayer gap, flat, fc;
  gap.name = "gap";
  gap.kind = "gap";
  gap.inputs = {last};
  flat.name = "flat";
  flat.kind = "flatten";
  flat.inputs = {last + 1};
  fc.name = "fc";
  fc.kind = "linear";
  fc.in_features = features;
  fc.out_features = 10;
  fc.inputs = {last + 2};
  m.layers.insert(m.layers.end(), {gap, flat, fc});
  m.num_outputs = 10;
}

// Dilated convolutions on a 1x28x28 input, each padded: dense (1 -> 8, dilation 2; 28x28),
// depthwise (8, stride 2, dilation 3; 14x14), grouped (8 -> 16, 2 groups, dilation 2; 12x12),
// then the classifier head.
inline ImportedModel dilated_convs() {
  ImportedModel m;
  m.input_shape = {1, 28, 28};
  m.layers = {conv3x3("dense", 0, 1, 8, 1, 2, 1, 2), conv3x3("depthwise", 1, 8, 8, 2, 3, 8, 3),
              conv3x3("grouped", 2, 8, 16, 1, 1, 2, 2)};
  add_classifier_head(m, 16);
  return m;
}

// conv 3 -> 8 (3x3, BN, ReLU) on a [3, 12, 12] input, then the classifier head.
inline ImportedModel tiny_colour() {
  ImportedModel m;
  m.input_shape = {3, 12, 12};
  m.layers = {conv3x3("conv", 0, 3, 8, 1, 1, 1, 1)};
  add_classifier_head(m, 8);
  return m;
}

}  // namespace lowbit::import::test_nets
