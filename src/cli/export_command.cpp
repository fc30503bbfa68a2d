// `lowbit export`: a checkpoint -> an ONNX model. --format onnx writes the quantized model as
// QDQ ONNX (from a QAT or PTQ checkpoint, through the same conversion as `lowbit convert`);
// --format onnx-fp32 writes the float model (from an FP32 or a QAT checkpoint).
#include <iostream>
#include <memory>

#include "base/error.h"
#include "cli/commands.h"
#include "export/float_export.h"
#include "export/qdq_export.h"
#include "qat/quantized_layers.h"
#include "train/checkpoint.h"

namespace lowbit::cli {
namespace {

struct ExportArgs {
  std::string from;
  std::string format = "onnx";
  std::string out;
  int64_t opset = 21;
  std::string weight_type = "auto";
};

void run(const ExportArgs& args) {
  models::Net net = train::load_net(args.from);
  onnx::Model model;
  if (args.format == "onnx") {
    LOWBIT_CHECK(std::dynamic_pointer_cast<qat::QInputImpl>(net->input_layer()) != nullptr,
                 "export: '" + args.from + "' is an FP32 checkpoint; --format onnx writes a quantized (QDQ) model and "
                 "needs a QAT or PTQ checkpoint (use --format onnx-fp32 for the float model)");
    onnx::QdqOptions options;
    options.opset = args.opset;
    options.weight_encoding = onnx::parse_weight_encoding(args.weight_type);
    model = onnx::qdq_model_from_net(net, options);
  } else {
    model = onnx::float_model(net, args.opset);
  }
  onnx::save(model, args.out);
  std::cout << "wrote " << args.out << " (" << (args.format == "onnx" ? "QDQ" : "float32") << " ONNX, opset "
            << model.opset << ", " << model.graph.nodes.size() << " nodes, " << model.graph.initializers.size()
            << " initializers)\n";
}

}  // namespace

void add_export_command(CLI::App& app) {
  auto args = std::make_shared<ExportArgs>();
  CLI::App* cmd = app.add_subcommand("export", "Export a checkpoint as an ONNX model (QDQ or float32)");
  cmd->add_option("--from", args->from, "Checkpoint (file or run folder): QAT/PTQ for onnx, FP32 or QAT for onnx-fp32")->required();
  cmd->add_option("--format", args->format, "onnx (quantized, QDQ) or onnx-fp32")
      ->check(CLI::IsMember({"onnx", "onnx-fp32"}))
      ->capture_default_str();
  cmd->add_option("--out", args->out, "ONNX file to write")->required();
  cmd->add_option("--opset", args->opset, "ONNX opset, 13-21 (int4 weights need 21)")->check(CLI::Range(13, 21))->capture_default_str();
  cmd->add_option("--weight-type", args->weight_type,
                  "8-bit weights as: auto (exact in ONNX Runtime on every CPU: int8 where |code| <= 64, else uint8 + 128), "
                  "int8 (fastest; ONNX Runtime may saturate on x86 CPUs without VNNI), uint8")
      ->check(CLI::IsMember({"auto", "int8", "uint8"}))
      ->capture_default_str();
  cmd->callback([args] { run(*args); });
}

}  // namespace lowbit::cli
