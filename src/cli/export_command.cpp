// `lowbit export`: a checkpoint -> an ONNX model. --format onnx writes the quantized model as
// QDQ ONNX (from a QAT or PTQ checkpoint, through the same conversion as `lowbit convert`);
// --format onnx-fp32 writes the float model (from an FP32 or a QAT checkpoint). From a decoder
// .lbq (gpt-tiny after `lowbit convert`), --format onnx writes the language model in QDQ form and
// --format matmulnbits with com.microsoft MatMulNBits for its int4 projections
// (export/decoder_export.h); a gpt-tiny checkpoint with --format onnx-fp32 [--kv-cache] writes the
// float decoder graph (export/float_export.h, float_gpt_model). From an encoder .lbq (vit-tiny
// after `lowbit convert`), --format onnx writes the QDQ model (export/encoder_export.h).
#include <iostream>
#include <memory>

#include "base/error.h"
#include "cli/commands.h"
#include "export/decoder_export.h"
#include "export/encoder_export.h"
#include "export/float_export.h"
#include "export/qdq_export.h"
#include "qat/quantized_layers.h"
#include "runtime/decoder_model_file.h"
#include "runtime/encoder_model_file.h"
#include "models/gpt.h"
#include "train/checkpoint.h"

namespace lowbit::cli {
namespace {

struct ExportArgs {
  std::string from;
  std::string format = "onnx";
  std::string out;
  int64_t opset = 21;
  std::string weight_type = "auto";
  bool kv_cache = false;
};

void run_decoder(const ExportArgs& args) {
  LOWBIT_CHECK(args.format == "onnx" || args.format == "matmulnbits",
               "export: '" + args.from + "' is a decoder model (.lbq); --format " + args.format +
                   " is for checkpoints. Use --format onnx (QDQ) or matmulnbits (int4 projections)");
  LOWBIT_CHECK(args.opset == 21, "export: decoder models are exported at opset 21 (int4 DequantizeLinear); drop --opset");
  const runtime::DecoderModel m = runtime::load_decoder_model(args.from);
  onnx::DecoderExportOptions options;
  options.form = onnx::parse_decoder_export_form(args.format);
  options.with_kv_cache = args.kv_cache;
  const onnx::Model model = onnx::decoder_model(m, options, "'" + args.from + "'");
  onnx::save(model, args.out);
  std::cout << "wrote " << args.out << " (decoder language model, "
            << (options.form == onnx::DecoderExportForm::Qdq ? "QDQ" : "MatMulNBits") << " ONNX, opset " << model.opset
            << ", " << model.graph.nodes.size() << " nodes, " << model.graph.initializers.size() << " initializers; ";
  if (args.kv_cache)
    std::cout << "KV cache: inputs tokens int64 [1, T], past_key_<l> / past_value_<l> [1, " << m.heads << ", T_past, "
              << m.head_size() << "] for l < " << m.layers.size() << ", T_past + T <= " << m.context
              << "; outputs logits [1, T, " << m.vocab << "], present_key_<l> / present_value_<l>)\n";
  else
    std::cout << "input tokens int64 [1, T <= " << m.context << "], output logits [1, T, " << m.vocab << "])\n";
}

// Encoder .lbq (vit-tiny after `lowbit convert`) -> QDQ ONNX.
void run_encoder(const ExportArgs& args) {
  LOWBIT_CHECK(args.format == "onnx", "export: '" + args.from + "' is an encoder model (.lbq, vit-tiny); --format " + args.format +
                                          " does not take it. Use --format onnx (QDQ), or --format onnx-fp32 on the FP32 checkpoint");
  LOWBIT_CHECK(args.opset == 21, "export: encoder models are exported at opset 21 (int4 DequantizeLinear, Gelu); drop --opset");
  LOWBIT_CHECK(!args.kv_cache, "export: --kv-cache is for language models; '" + args.from + "' is an encoder (vit-tiny)");
  const runtime::EncoderModel m = runtime::load_encoder_model(args.from);
  const onnx::Model model = onnx::encoder_qdq_model(m, "'" + args.from + "'");
  onnx::save(model, args.out);
  std::cout << "wrote " << args.out << " (encoder image model, QDQ ONNX, opset " << model.opset << ", " << model.graph.nodes.size()
            << " nodes, " << model.graph.initializers.size() << " initializers; input float [N, " << m.channels << ", "
            << m.image_size << ", " << m.image_size << "], output logits [N, " << m.classes << "])\n";
}

// gpt-tiny checkpoint (FP32, or QAT with fake quantization removed) -> float32 ONNX, with the
// same graph (and optional KV cache) as the decoder exports.
void run_float_gpt(const ExportArgs& args, models::Net& net) {
  LOWBIT_CHECK(args.format == "onnx-fp32",
               "export: '" + args.from + "' is a gpt-tiny checkpoint; --format " + args.format +
                   " takes a decoder .lbq: run `lowbit convert --checkpoint " + args.from +
                   " --out gpt.lbq` first (or use --format onnx-fp32 for the float model)");
  LOWBIT_CHECK(args.opset == 21, "export: gpt-tiny is exported at opset 21; drop --opset");
  const train::CheckpointInfo info = train::load_checkpoint(args.from);
  const int64_t context = models::GptOptions::from_json(info.config.value("lm", nlohmann::json::object())).context;
  onnx::FloatDecoderExportOptions options;
  options.with_kv_cache = args.kv_cache;
  const onnx::Model model = onnx::float_gpt_model(net, context, options);
  onnx::save(model, args.out);
  std::cout << "wrote " << args.out << " (decoder language model, float32 ONNX, opset " << model.opset << ", "
            << model.graph.nodes.size() << " nodes, " << model.graph.initializers.size() << " initializers; input tokens int64 [1, T <= "
            << context << "], output logits [1, T, 256]" << (args.kv_cache ? "; KV cache: past_key_<l> / past_value_<l> -> present_*" : "")
            << ")\n";
}

void run(const ExportArgs& args) {
  if (runtime::is_decoder_model_file(args.from)) return run_decoder(args);
  if (runtime::is_encoder_model_file(args.from)) return run_encoder(args);
  models::Net net = train::load_net(args.from);
  if (net->model_name() == "gpt-tiny") return run_float_gpt(args, net);
  LOWBIT_CHECK(!args.kv_cache, "export: --kv-cache takes a gpt-tiny checkpoint (--format onnx-fp32) or a decoder language model "
                               ".lbq (lowbit convert of a gpt-tiny run); '" + args.from + "' is neither");
  LOWBIT_CHECK(args.format != "matmulnbits",
               "export: --format matmulnbits takes a decoder language model .lbq (lowbit convert of a gpt-tiny run); '" +
                   args.from + "' is not one");
  onnx::Model model;
  if (args.format == "onnx") {
    // The checkpoint QDQ writer covers the CNN-style graphs; a vit-tiny QAT model is exported from
    // its runtime form, whose encoder exporter knows the token, LayerNorm and attention ops.
    LOWBIT_CHECK(net->model_name() != "vit-tiny",
                 "export: '" + args.from + "' is a vit-tiny checkpoint; --format onnx takes its integer model: run `lowbit "
                 "convert --from " + args.from + " --out vit.lbq`, then `lowbit export --from vit.lbq --format onnx` "
                 "(--format onnx-fp32 exports the checkpoint's float model directly)");
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
  CLI::App* cmd = app.add_subcommand("export", "Export a checkpoint, a decoder .lbq or an encoder .lbq as an ONNX model (QDQ, MatMulNBits or float32)");
  cmd->add_option("--from", args->from,
                  "Checkpoint (file or run folder): QAT/PTQ for onnx, FP32 or QAT for onnx-fp32; or a decoder language "
                  "model .lbq (lowbit convert of a gpt-tiny run) for onnx or matmulnbits; or an encoder .lbq (lowbit "
                  "convert of a vit-tiny QAT run) for onnx")
      ->required();
  cmd->add_option("--format", args->format,
                  "onnx (quantized, QDQ), onnx-fp32, or matmulnbits (decoder .lbq with int4 projections: "
                  "com.microsoft MatMulNBits)")
      ->check(CLI::IsMember({"onnx", "onnx-fp32", "matmulnbits"}))
      ->capture_default_str();
  cmd->add_option("--out", args->out, "ONNX file to write")->required();
  cmd->add_option("--opset", args->opset, "ONNX opset, 13-21 (int4 weights need 21; decoder models: 21)")->check(CLI::Range(13, 21))->capture_default_str();
  cmd->add_option("--weight-type", args->weight_type,
                  "Checkpoints: 8-bit weights as: auto (exact in ONNX Runtime on every CPU: int8 where |code| <= 64, else uint8 + 128), "
                  "int8 (fastest; ONNX Runtime may saturate on x86 CPUs without VNNI), uint8")
      ->check(CLI::IsMember({"auto", "int8", "uint8"}))
      ->capture_default_str();
  cmd->add_flag("--kv-cache", args->kv_cache,
                "Decoder .lbq: add the KV cache (inputs past_key_<l> / past_value_<l> [1, heads, T_past, head_size], "
                "outputs present_key_<l> / present_value_<l>) for one-token-per-run decoding");
  cmd->callback([args] { run(*args); });
}

}  // namespace lowbit::cli
