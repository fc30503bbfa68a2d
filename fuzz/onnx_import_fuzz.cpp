// libFuzzer harness: the ONNX importer (import/onnx_reader.h): protobuf parsing, ONNX's checker
// and the lowering to lowbit layers. Whatever the bytes, the importer either throws lowbit::Error
// or returns a model whose layers read only earlier values, whose weight arrays match their
// shapes, whose output is [N, classes] with classes > 0, and whose structure survives JSON.
#include <cstddef>
#include <cstdint>
#include <string>

#include "base/error.h"
#include "import/onnx_reader.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const lowbit::import::ImportedModel m =
        lowbit::import::read_onnx_model_from_bytes(std::string(reinterpret_cast<const char*>(data), size), "fuzz.onnx");
    if (m.layers.empty() || m.num_outputs <= 0 || m.input_shape.empty()) __builtin_trap();
    for (size_t k = 0; k < m.layers.size(); ++k) {
      const auto& l = m.layers[k];
      if (l.inputs.empty()) __builtin_trap();
      for (int v : l.inputs)
        if (v < 0 || v > static_cast<int>(k)) __builtin_trap();
      for (const auto& [key, w] : l.weights) {
        int64_t n = 1;
        for (int64_t d : w.dims) n *= d;
        if (n != static_cast<int64_t>(w.values.size())) __builtin_trap();
      }
    }
    const auto again = lowbit::import::structure_from_json(lowbit::import::structure_to_json(m));
    if (again.layers.size() != m.layers.size() || again.input_shape != m.input_shape) __builtin_trap();
  } catch (const lowbit::Error&) {
  }
  return 0;
}
