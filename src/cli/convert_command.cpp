// `lowbit convert`: a QAT/PTQ checkpoint -> an integer runtime model file (.lbq), checked
// against the integer simulation on test images before it is written.
#include <cmath>
#include <iostream>
#include <memory>

#include "base/error.h"
#include "data/load_dataset.h"
#include "cli/commands.h"
#include "cli/data_flags.h"
#include "data/run_data_layout.h"
#include "convert/agreement.h"
#include "data/fashion_mnist.h"
#include "convert/to_decoder.h"
#include "convert/to_encoder.h"
#include "convert/to_runtime.h"
#include "models/gpt.h"
#include "qat/qat_config.h"
#include "qat/quantized_layers.h"
#include "qat/quantized_transformer.h"
#include "runtime/decoder_model_file.h"
#include "runtime/decoder_session.h"
#include "runtime/encoder_model_file.h"
#include "runtime/model_file.h"
#include "runtime/model_tools.h"
#include "train/checkpoint.h"

namespace lowbit::cli {
namespace {

struct ConvertArgs {
  std::string from;
  std::string out;
  std::string data_dir;
  std::string layout = "auto";
  int64_t check = 1000;
  // FP32 gpt-tiny checkpoints only: round-to-nearest weights (no training).
  int wbits = 4;
  int group_size = 32;
  std::string weight_format = "int";
};

// gpt-tiny: QAT checkpoint (or FP32 with round-to-nearest weights) -> decoder model file, checked
// against the LibTorch evaluation of the same model on one window of text.
void run_decoder(const ConvertArgs& args, models::Net& net) {
  const train::CheckpointInfo info = train::load_checkpoint(args.from);
  const models::GptOptions options = models::GptOptions::from_json(info.config.value("lm", nlohmann::json::object()));
  std::string how = "QAT";
  if (!info.config.contains("qat")) {
    qat::QatFlags f;
    f.wbits = args.wbits;
    f.group_size = args.group_size;
    f.granularity = args.group_size > 0 ? "group" : "channel";
    f.weight_format = args.weight_format;
    qat::prepare(net, qat::with_language_model_defaults(qat::config_from_flags(f)));
    how = "round-to-nearest " + args.weight_format + (args.weight_format == "int" ? std::to_string(args.wbits) : "") +
          (args.group_size > 0 ? " group" + std::to_string(args.group_size) : " per-channel");
  }
  const runtime::DecoderModel model =
      convert::to_decoder_model(net, options, net->model_name() + " (" + how + ") from " + args.from);
  if (args.check > 0) {
    // One window of fixed text: the runtime's logits against the model's evaluation forward.
    const std::string text = "The quick brown fox jumps over the lazy dog. Pack my box with five dozen liquor jugs.";
    const int64_t n = std::min<int64_t>(options.context, static_cast<int64_t>(text.size()));
    std::vector<int32_t> tokens(static_cast<size_t>(n));
    torch::Tensor ids = torch::empty({1, n}, torch::kLong);
    for (int64_t i = 0; i < n; ++i) ids[0][i] = tokens[static_cast<size_t>(i)] = static_cast<unsigned char>(text[i]);
    torch::Tensor expected;
    {
      torch::NoGradGuard no_grad;
      net->eval();
      expected = net->forward(ids).reshape({n, 256}).contiguous();
    }
    runtime::DecoderSession session(model);
    const std::vector<float> got = session.prefill(tokens);
    const float* e = expected.data_ptr<float>();
    double max_diff = 0, max_abs = 0;
    int64_t same = 0;
    for (int64_t t = 0; t < n; ++t) {
      int64_t ae = 0, ag = 0;
      for (int64_t v = 0; v < 256; ++v) {
        const size_t i = static_cast<size_t>(t * 256 + v);
        max_diff = std::max(max_diff, static_cast<double>(std::fabs(got[i] - e[i])));
        max_abs = std::max(max_abs, static_cast<double>(std::fabs(e[i])));
        if (e[i] > e[t * 256 + ae]) ae = v;
        if (got[i] > got[static_cast<size_t>(t * 256 + ag)]) ag = v;
      }
      same += ae == ag;
    }
    // A conversion mistake (layout, scale, RoPE) moves logits by O(1); float summation order by ~1e-5.
    LOWBIT_CHECK(std::isfinite(max_diff) && max_diff <= 1e-2 * (1.0 + max_abs),
                 "convert: the runtime's logits differ from the model's evaluation by up to " + std::to_string(max_diff) +
                     " on a test window; the model file was not written (please report this as a bug)");
    std::cout << "checked: " << n << " positions, runtime logits within " << max_diff << " of the LibTorch evaluation (max |logit| "
              << max_abs << "), same argmax at " << same << "/" << n << " (isa " << runtime::isa_name(session.isa())
              << ")\n";
  }
  runtime::save_decoder_model(model, args.out);
  std::cout << "wrote " << args.out << "\n" << runtime::describe_decoder_model(model);
}

// vit-tiny: QAT/PTQ checkpoint -> encoder model file, checked against the LibTorch evaluation
// (fake quantization) of the same model on the first --check test images.
void run_encoder(const ConvertArgs& args, models::Net& net) {
  const train::CheckpointInfo info = train::load_checkpoint(args.from);
  LOWBIT_CHECK(net->input_layer() != nullptr,
               "convert: '" + args.from + "' is an FP32 vit-tiny checkpoint; quantize it first (`lowbit qat --from " +
                   args.from + " --wbits 8 --abits 8 ...` or `lowbit ptq --from " + args.from +
                   " --method rtn --wbits 8 --abits 8 ...`), then convert that run");
  const models::VitOptions options = models::VitOptions::from_json(info.config.value("vit", nlohmann::json::object()));
  const std::string how = info.config.contains("ptq") ? " (PTQ)" : " (QAT)";
  const runtime::EncoderModel model = convert::to_encoder_model(net, options, net->model_name() + how + " from " + args.from);
  if (args.check > 0) {
    data::Dataset test =
        data::load_dataset(data::resolve_data_dir(args.data_dir), "test", data::run_data_layout(args.layout, info.config));
    const int64_t n = std::min<int64_t>(args.check, test.size());
    runtime::EncoderOptions eo;
    eo.threads = 2;
    runtime::EncoderSession session(model, eo);
    const convert::EncoderAgreement a = convert::compare_encoder_with_torch(
        session, net, test.images.narrow(0, 0, n), test.labels.narrow(0, 0, n));
    // A conversion mistake (layout, scales, grids) moves logits by O(1) and predictions on many
    // images; float summation order moves a static activation code by one step now and then
    // (docs/transformers.md, "vit-tiny on the integer runtime").
    const bool ok = std::isfinite(a.max_abs_diff) && a.mean_abs_diff <= 5e-3 * (1.0 + a.max_abs_logit) &&
                    a.predictions_equal * 100 >= a.count * 97;
    LOWBIT_CHECK(ok, "convert: the runtime disagrees with the model's evaluation on " + std::to_string(n) +
                         " test images (mean |logit difference| " + std::to_string(a.mean_abs_diff) + ", max " +
                         std::to_string(a.max_abs_diff) + ", same prediction on " + std::to_string(a.predictions_equal) +
                         "); the model file was not written (please report this as a bug)");
    std::cout << "checked: " << a.count << " test images, runtime logits within " << a.max_abs_diff
              << " of the LibTorch evaluation (mean " << a.mean_abs_diff << ", max |logit| " << a.max_abs_logit
              << "), same prediction on " << a.predictions_equal << "/" << a.count << " (isa "
              << runtime::isa_name(session.isa()) << ")\n";
  }
  runtime::save_encoder_model(model, args.out);
  std::cout << "wrote " << args.out << "\n" << runtime::describe_encoder_model(model);
}

void run(const ConvertArgs& args) {
  models::Net net = train::load_net(args.from);
  if (net->model_name() == "gpt-tiny") return run_decoder(args, net);
  if (net->model_name() == "vit-tiny") return run_encoder(args, net);
  const runtime::Model model = convert::to_runtime_model(net, net->model_name() + " from " + args.from);
  if (args.check > 0) {
    const nlohmann::json run_config = train::load_checkpoint(args.from).config;
    data::Dataset test =
        data::load_dataset(data::resolve_data_dir(args.data_dir), "test", data::run_data_layout(args.layout, run_config));
    const int64_t n = std::min<int64_t>(args.check, test.size());
    test.images = test.images.narrow(0, 0, n);
    test.labels = test.labels.narrow(0, 0, n);
    runtime::Session session(model, session_options(2));
    const convert::Agreement a = convert::compare_with_simulation(model, convert::evaluate_runtime(session, test), test);
    LOWBIT_CHECK(a.int_logits_equal == a.count,
                 "convert: the runtime disagrees with the integer simulation on " +
                     std::to_string(a.count - a.int_logits_equal) + " of " + std::to_string(a.count) +
                     " test images; the model file was not written (please report this as a bug)");
    std::cout << "checked: runtime integer logits equal the integer simulation on " << a.count << "/" << a.count
              << " test images (" << session.kernel_names().size() << " ops, isa " << runtime::isa_name(session.isa())
              << ")\n";
  }
  runtime::save_model(model, args.out);
  std::cout << "wrote " << args.out << "\n" << runtime::describe_model(model);
}

}  // namespace

void add_convert_command(CLI::App& app) {
  auto args = std::make_shared<ConvertArgs>();
  CLI::App* cmd = app.add_subcommand("convert", "Convert a QAT or PTQ checkpoint to an integer runtime model (.lbq)");
  cmd->add_option("--from,--checkpoint", args->from, "QAT/PTQ checkpoint (file or run folder)")->required();
  cmd->add_option("--out", args->out, "Model file to write (.lbq)")->required();
  add_data_and_layout_flags(cmd, args->data_dir, args->layout);
  add_run_normalisation_flags(cmd, [args] { return args->from; }, [](const std::string& p) { return train::load_checkpoint(p).config; });
  cmd->add_option("--check", args->check, "Test images on which runtime and integer simulation must agree (0: skip)")
      ->capture_default_str();
  cmd->add_option("--wbits", args->wbits, "FP32 gpt-tiny checkpoints: weight bits of round-to-nearest conversion")
      ->capture_default_str();
  cmd->add_option("--group-size", args->group_size,
                  "FP32 gpt-tiny checkpoints: inputs per weight scale (0: one scale per output row)")
      ->capture_default_str();
  cmd->add_option("--weight-format", args->weight_format, "FP32 gpt-tiny checkpoints: int, ternary, binary or seq2")
      ->capture_default_str();
  cmd->callback([args] { run(*args); });
}

}  // namespace lowbit::cli
