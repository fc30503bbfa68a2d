// A Net from an imported ONNX model (import/imported_model.h): one node per imported layer, with
// the layer's name, so that per-layer QAT configs, sensitivity tables and reports name the
// layers of the user's model. The model name is "onnx".
#pragma once
#include "import/imported_model.h"
#include "models/net.h"

namespace lowbit::models {

constexpr const char* kImportedModelName = "onnx";

// The structure only (weights as initialised); throws lowbit::Error for an unknown layer kind.
Net make_imported_net(const import::ImportedModel& model);
// Copies the FP32 weights read from the file into a net made by make_imported_net from the same
// model; a missing or mis-shaped array is a lowbit::Error naming the layer.
void load_imported_weights(Net& net, const import::ImportedModel& model);

// The zoo's convertible image models (models::model_names()) and imported ones: the models that
// `convert`, `analyze sensitivity` and `inspect --metrics` take.
bool is_image_classifier(const std::string& model_name);

}  // namespace lowbit::models
