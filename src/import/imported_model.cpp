#include "import/imported_model.h"

#include "base/error.h"
#include "quant/pointwise_function.h"

namespace lowbit::import {

nlohmann::json structure_to_json(const ImportedModel& model) {
  nlohmann::json layers = nlohmann::json::array();
  for (const ImportedLayer& l : model.layers) {
    nlohmann::json j = {{"name", l.name}, {"onnx_nodes", l.onnx_nodes}, {"kind", l.kind}, {"inputs", l.inputs}};
    if (l.kind == "conv") {
      j.update({{"in_channels", l.in_channels}, {"out_channels", l.out_channels}, {"kernel", l.kernel},
                {"stride", l.stride}, {"padding", l.padding}, {"groups", l.groups}, {"batch_norm", l.batch_norm}});
      if (l.dilation != 1) j["dilation"] = l.dilation;  // configs of undilated models stay as they were
    } else if (l.kind == "linear") {
      j.update({{"in_features", l.in_features}, {"out_features", l.out_features}, {"bias", l.bias}});
    } else if (l.kind == "maxpool" || l.kind == "avgpool") {
      j.update({{"kernel", l.pool_kernel}, {"stride", l.pool_stride}, {"padding", l.pool_padding}});
    } else if (l.kind == "pointwise") {
      j.update({{"function", l.function}, {"alpha", l.alpha}, {"beta", l.beta}});
    }
    if (l.kind == "conv" || l.kind == "linear" || l.kind == "add") j["activation"] = l.activation;
    layers.push_back(std::move(j));
  }
  return {{"source", model.source},           {"graph_name", model.graph_name}, {"producer", model.producer},
          {"opset", model.opset},             {"input_name", model.input_name}, {"output_name", model.output_name},
          {"input_shape", model.input_shape}, {"num_outputs", model.num_outputs}, {"layers", layers}};
}

ImportedModel structure_from_json(const nlohmann::json& json) {
  const std::string where = "the config's \"onnx\" section";
  LOWBIT_CHECK(json.is_object(), where + " is not an object");
  try {
    ImportedModel m;
    m.source = json.value("source", "");
    m.graph_name = json.value("graph_name", "");
    m.producer = json.value("producer", "");
    m.opset = json.value("opset", int64_t{0});
    m.input_name = json.value("input_name", "");
    m.output_name = json.value("output_name", "");
    m.input_shape = json.at("input_shape").get<std::vector<int64_t>>();
    m.num_outputs = json.at("num_outputs").get<int64_t>();
    for (const auto& j : json.at("layers")) {
      ImportedLayer l;
      l.name = j.at("name").get<std::string>();
      l.onnx_nodes = j.value("onnx_nodes", "");
      l.kind = j.at("kind").get<std::string>();
      l.inputs = j.at("inputs").get<std::vector<int>>();
      l.activation = j.value("activation", "none");
      if (l.kind == "conv") {
        l.in_channels = j.at("in_channels");
        l.out_channels = j.at("out_channels");
        l.kernel = j.at("kernel");
        l.stride = j.at("stride");
        l.padding = j.at("padding");
        l.groups = j.at("groups");
        l.dilation = j.value("dilation", int64_t{1});
        if (l.dilation < 1)
          throw Error(where + ": layer '" + l.name + "' has dilation " + std::to_string(l.dilation) + " (must be >= 1)");
        l.batch_norm = j.at("batch_norm");
      } else if (l.kind == "linear") {
        l.in_features = j.at("in_features");
        l.out_features = j.at("out_features");
        l.bias = j.at("bias");
      } else if (l.kind == "maxpool" || l.kind == "avgpool") {
        l.pool_kernel = j.at("kernel");
        l.pool_stride = j.at("stride");
        l.pool_padding = j.at("padding");
      } else if (l.kind == "pointwise") {
        l.function = j.at("function").get<std::string>();
        l.alpha = j.at("alpha").get<float>();
        l.beta = j.at("beta").get<float>();
        try {
          quant::pointwise_function(l.function);
        } catch (const Error& e) {
          throw Error(where + ": layer '" + l.name + "': " + e.what());
        }
      } else if (l.kind != "gap" && l.kind != "flatten" && l.kind != "add" && l.kind != "concat") {
        throw Error(where + ": layer '" + l.name + "' has kind '" + l.kind + "', which this build does not know");
      }
      m.layers.push_back(std::move(l));
    }
    return m;
  } catch (const nlohmann::json::exception& e) {
    throw Error(where + " is malformed (" + e.what() + "); re-import the ONNX file");
  }
}

}  // namespace lowbit::import
