// ONNX import: an FP32 model file (e.g. exported from PyTorch) read with ONNX's own generated
// protobuf classes and checker (Debian's libonnx-dev), then lowered to lowbit's layers
// (imported_model.h). docs/onnx_import.md lists the operators and how each is lowered.
//
// Bad input never crashes: a file that is not ONNX, a graph the checker rejects, an operator
// lowbit has no layer for, a shape that cannot be resolved statically: each is a lowbit::Error
// naming the file and, for graph problems, the node, its operator and the opset, with what to do.
#pragma once
#include <string>
#include <vector>

#include "import/imported_model.h"

namespace lowbit::import {

ImportedModel read_onnx_model(const std::string& path);
// The same from the file's bytes; `label` names the source in messages.
ImportedModel read_onnx_model_from_bytes(const std::string& bytes, const std::string& label);

// True for a path lowbit treats as an ONNX model (it ends in ".onnx", any case).
bool is_onnx_path(const std::string& path);

// The operators (default domain) the importer accepts, for messages and docs.
const std::vector<std::string>& supported_onnx_operators();

}  // namespace lowbit::import
