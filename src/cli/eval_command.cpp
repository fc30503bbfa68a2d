// `lowbit eval`: accuracy and loss of a checkpoint on a Fashion-MNIST split.
#include <cstdio>
#include <iomanip>
#include <iostream>
#include <memory>

#include "base/atomic_file.h"
#include "base/error.h"
#include "cli/commands.h"
#include "cli/data_flags.h"
#include "data/load_dataset.h"
#include "data/run_data_layout.h"
#include "train/compute_threads.h"
#include "train/data_fit.h"
#include "analysis/robustness.h"
#include "convert/agreement.h"
#include "data/corruptions.h"
#include "data/idx_file.h"
#include "runtime/model_file.h"
#include "convert/to_encoder.h"
#include "runtime/encoder_model_file.h"
#include "runtime/encoder_session.h"
#include "data/fashion_mnist.h"
#include "train/checkpoint.h"
#include "train/lm_trainer.h"
#include "train/trainer.h"

namespace lowbit::cli {
namespace {

struct EvalArgs {
  std::string checkpoint;
  std::string model;  // .lbq: evaluate on the integer runtime
  std::string data_dir;
  std::string layout = "auto";  // .npy/.npz image arrays (auto: a checkpoint's own, else by shape)
  std::string split = "test";
  int64_t batch_size = 256;
  int64_t threads = 2;
  bool json = false;
  std::string text;  // gpt-tiny: another text than the run's
  std::string shift;     // corruptions ("all" or a list): robustness evaluation
  std::string severity = "1-5";
  uint64_t shift_seed = 0;
  int64_t limit = 0;     // > 0: only the first N images of the split (quick robustness runs)
  std::string out;       // --shift: also write the JSON result to this file (for `lowbit report`)
  std::string mean, std_dev;  // --mean / --std: may only repeat the run's (or the .lbq model's) normalisation
};

// --mean / --std given to eval: they must say what the checkpoint's run (or the .lbq file) holds.
void check_normalisation_flags(const EvalArgs& args) {
  if (args.mean.empty() && args.std_dev.empty()) return;
  if (!args.checkpoint.empty()) {
    data::run_normalisation(args.mean, args.std_dev, train::load_checkpoint(args.checkpoint).config, args.checkpoint);
    return;
  }
  const runtime::Model m = runtime::load_model(args.model);
  const data::InputNormalisation flags = data::normalisation_from_flags(args.mean, args.std_dev);
  data::InputNormalisation stored;
  stored.mean = m.input_mean;
  stored.std = m.input_std;
  LOWBIT_CHECK(flags.mean_for(m.in_channels) == m.input_mean && flags.std_for(m.in_channels) == m.input_std,
               "--mean/--std (" + flags.describe() + ") contradict the input normalisation stored in '" + args.model +
                   "' (" + stored.describe() +
                   "); the model file's is used without the flags: drop them");
}

// `--shift`: the clean split and its corrupted copies through the checkpoint or the .lbq model.
void run_robustness(const EvalArgs& args) {
  const std::vector<std::string> corruptions = data::parse_corruption_list(args.shift);
  const std::vector<int> severities = data::parse_severity_list(args.severity);
  data::RawImages split = data::load_dataset_uint8(args.data_dir, args.split, args.layout);
  if (args.limit > 0 && args.limit < split.count) {
    split.count = args.limit;
    split.pixels.resize(static_cast<size_t>(args.limit * split.rows * split.cols));
    split.labels.resize(static_cast<size_t>(args.limit));
  }
  analysis::RobustnessResult r;
  nlohmann::json j;
  std::string what;
  if (!args.model.empty()) {
    runtime::Session session(runtime::load_model(args.model), session_options(static_cast<int>(args.threads)));
    r = analysis::evaluate_robustness(split, corruptions, severities, args.shift_seed,
                                      analysis::runtime_evaluator(session));
    j["model_file"] = args.model;
    j["isa"] = runtime::isa_name(session.isa());
    what = args.model + " on the integer runtime (" + runtime::isa_name(session.isa()) + ")";
  } else {
    lowbit::train::set_compute_threads(static_cast<int>(args.threads));
    const auto info = train::load_checkpoint(args.checkpoint);
    LOWBIT_CHECK(info.model_name != "gpt-tiny", "eval --shift: image corruptions need an image model; '" +
                                                    args.checkpoint + "' is gpt-tiny");
    models::Net net = train::load_net(info.path);
    r = analysis::evaluate_robustness(split, corruptions, severities, args.shift_seed,
                                      analysis::checkpoint_evaluator(net, args.batch_size));
    j["checkpoint"] = info.path;
    j["model"] = info.model_name;
    what = info.model_name + " (" + info.path + ")";
  }
  // "analysis" lets `lowbit report` recognise the file whatever its name.
  j["analysis"] = "robustness";
  j.update(r.to_json());
  j["split"] = args.split;
  j["seed"] = args.shift_seed;
  if (!args.out.empty()) write_file_atomically(args.out, j.dump(2) + "\n");
  if (args.json) {
    std::cout << j.dump() << "\n";
    return;
  }
  std::cout << what << ", " << args.split << " split (" << r.clean.count << " images), corruptions seed "
            << args.shift_seed << "\n"
            << r.table();
}

std::string crc_hex(uint32_t crc) {
  char hex[9];
  std::snprintf(hex, sizeof hex, "%08x", crc);
  return hex;
}

// A gpt-tiny checkpoint: loss, bits per byte and perplexity on the validation split of its text
// (or of --text: its last 10%), with the run's window count.
void run_language_model(const EvalArgs& args, const train::CheckpointInfo& info) {
  models::Net net = train::load_net(info.path);
  train::LmSettings lm = train::LmSettings::from_json(info.config.value("lm", nlohmann::json::object()));
  if (!args.text.empty()) lm.text = args.text;
  const data::TextCorpus corpus = data::load_text_corpus(lm.text, lm.model.context, lm.val_fraction);
  const train::LmEval r = train::evaluate_lm(net, train::lm_validation_windows(corpus, lm), args.batch_size);
  if (args.json) {
    nlohmann::json j = train::to_json(r);
    j["model"] = info.model_name;
    j["epoch"] = info.epoch;
    j["step"] = info.step;
    j["split"] = "validation";
    j["checkpoint"] = info.path;
    j["quantized"] = info.config.contains("qat");
    j["weights_crc32"] = crc_hex(train::weights_crc32(net));
    std::cout << j.dump() << "\n";
    return;
  }
  std::cout << info.model_name << " (step " << info.step << (info.config.contains("qat") ? ", QAT" : "") << ", "
            << info.path << ")\n"
            << "validation (" << r.bytes << " bytes): loss " << std::fixed << std::setprecision(4) << r.loss << ", "
            << std::setprecision(3) << r.bits_per_byte << " bits/byte, perplexity " << std::setprecision(2)
            << r.perplexity << ", next-byte accuracy " << 100.0 * r.accuracy << "%\n";
}

// `--model vit.lbq` (an encoder file): the runtime's accuracy; with `--checkpoint` too (the QAT
// run it was converted from), the LibTorch fake-quant accuracy and how many predictions agree.
void run_encoder_runtime(const EvalArgs& args) {
  runtime::EncoderOptions o;
  o.threads = static_cast<int>(args.threads);
  runtime::EncoderSession session = runtime::EncoderSession::load(args.model, o);
  const auto data = data::load_dataset(args.data_dir, args.split, args.layout);
  const int64_t n = data.size(), classes = session.model().classes;
  const torch::Tensor images = data.images.to(torch::kFloat32).contiguous();
  nlohmann::json j = {{"count", n}, {"split", args.split}, {"model_file", args.model},
                      {"isa", runtime::isa_name(session.isa())}};
  if (!args.checkpoint.empty()) {
    lowbit::train::set_compute_threads(static_cast<int>(args.threads));
    models::Net net = train::load_net(args.checkpoint);
    const convert::EncoderAgreement a =
        convert::compare_encoder_with_torch(session, net, images, data.labels, args.batch_size);
    j["accuracy"] = static_cast<double>(a.runtime_correct) / static_cast<double>(std::max<int64_t>(n, 1));
    j["checkpoint"] = args.checkpoint;
    j["fake_quant_accuracy"] = static_cast<double>(a.torch_correct) / static_cast<double>(std::max<int64_t>(n, 1));
    j["fake_quant_predictions_equal"] = a.predictions_equal;
    j["max_abs_logit_diff"] = a.max_abs_diff;
    j["mean_abs_logit_diff"] = a.mean_abs_diff;
  } else {
    int64_t correct = 0;
    for (int64_t b0 = 0; b0 < n; b0 += args.batch_size) {
      const int64_t len = std::min<int64_t>(args.batch_size, n - b0);
      const torch::Tensor x = images.narrow(0, b0, len).contiguous();
      const std::vector<float> logits = session.run(x.data_ptr<float>(), len);
      for (int64_t i = 0; i < len; ++i) {
        const float* li = logits.data() + i * classes;
        int64_t best = 0;
        for (int64_t c = 1; c < classes; ++c)
          if (li[c] > li[best]) best = c;
        correct += best == data.labels[b0 + i].item<int64_t>();
      }
    }
    j["accuracy"] = static_cast<double>(correct) / static_cast<double>(std::max<int64_t>(n, 1));
  }
  if (args.json) {
    std::cout << j.dump() << "\n";
    return;
  }
  std::cout << args.model << " on the integer runtime (encoder, " << runtime::isa_name(session.isa()) << ")\n"
            << args.split << ": accuracy " << std::fixed << std::setprecision(2) << 100.0 * j["accuracy"].get<double>()
            << "% of " << n << "\n";
  if (j.contains("checkpoint")) {
    std::cout << "predictions equal to its fake quantization (LibTorch): " << j["fake_quant_predictions_equal"] << "/"
              << n << " (fake-quant accuracy " << std::setprecision(2)
              << 100.0 * j["fake_quant_accuracy"].get<double>() << "%); logits differ by up to "
              << std::setprecision(4) << j["max_abs_logit_diff"].get<double>() << " (mean "
              << std::setprecision(6) << j["mean_abs_logit_diff"].get<double>() << ")\n";
  }
}

// `--model m.lbq`: the integer runtime's accuracy; with `--checkpoint` too, how it agrees with
// the checkpoint's integer simulation (must be bit-exact) and with its fake quantization.
void run_runtime(const EvalArgs& args) {
  if (runtime::is_encoder_model_file(args.model)) return run_encoder_runtime(args);
  runtime::Session session(runtime::load_model(args.model), session_options(static_cast<int>(args.threads)));
  const auto data = data::load_dataset(args.data_dir, args.split, args.layout);
  const convert::RuntimeEval r = convert::evaluate_runtime(session, data, 256);
  nlohmann::json j = {{"accuracy", r.accuracy}, {"loss", r.loss}, {"count", r.count}, {"split", args.split},
                      {"model_file", args.model}, {"isa", runtime::isa_name(session.isa())}};
  if (!args.checkpoint.empty()) {
    lowbit::train::set_compute_threads(static_cast<int>(args.threads));
    models::Net net = train::load_net(args.checkpoint);
    const auto fake = train::evaluate(net, data, args.batch_size);
    const convert::Agreement a = convert::compare_with_simulation(session.model(), r, data, fake.predictions);
    j["checkpoint"] = args.checkpoint;
    j["fake_quant_accuracy"] = fake.accuracy;
    j["simulation_int_logits_equal"] = a.int_logits_equal;
    j["simulation_predictions_equal"] = a.predictions_equal;
    j["fake_quant_predictions_equal"] = *a.fake_quant_predictions_equal;
  }
  if (args.json) {
    std::cout << j.dump() << "\n";
    return;
  }
  std::cout << args.model << " on the integer runtime (" << runtime::isa_name(session.isa()) << ")\n"
            << args.split << ": accuracy " << std::fixed << std::setprecision(2) << 100.0 * r.accuracy << "% of "
            << r.count << ", loss " << std::setprecision(4) << r.loss << "\n";
  if (j.contains("checkpoint")) {
    std::cout << "integer logits equal to the checkpoint's integer simulation: " << j["simulation_int_logits_equal"]
              << "/" << r.count << "\n"
              << "predictions equal to its fake quantization (training arithmetic): "
              << j["fake_quant_predictions_equal"] << "/" << r.count << " (fake-quant accuracy " << std::setprecision(2)
              << 100.0 * j["fake_quant_accuracy"].get<double>() << "%)\n";
  }
}

void run(const EvalArgs& args) {
  if (args.checkpoint.empty() && args.model.empty()) {
    throw CLI::RequiredError("eval needs --checkpoint (a training run) or --model (an integer model file, .lbq)");
  }
  check_normalisation_flags(args);
  if (!args.shift.empty()) return run_robustness(args);
  LOWBIT_CHECK(args.limit == 0, "eval: --limit goes with --shift");
  LOWBIT_CHECK(args.out.empty(), "eval: --out writes the robustness result; it goes with --shift (use --json for a plain evaluation)");
  if (!args.model.empty()) return run_runtime(args);
  lowbit::train::set_compute_threads(static_cast<int>(args.threads));
  const auto info = train::load_checkpoint(args.checkpoint);
  if (info.model_name == "gpt-tiny") return run_language_model(args, info);
  models::Net net = train::load_net(info.path);
  const auto data = data::load_dataset(args.data_dir, args.split, data::run_data_layout(args.layout, info.config));
  train::check_model_fits_data(net, data, args.data_dir);
  const auto r = train::evaluate(net, data, args.batch_size);
  if (args.json) {
    nlohmann::json j = {{"accuracy", r.accuracy}, {"loss", r.loss},       {"count", r.count},
                        {"model", info.model_name}, {"epoch", info.epoch}, {"split", args.split},
                        {"checkpoint", info.path}, {"weights_crc32", crc_hex(train::weights_crc32(net))}};
    std::cout << j.dump() << "\n";
  } else {
    const auto correct = static_cast<int64_t>(std::llround(r.accuracy * static_cast<double>(r.count)));
    std::cout << info.model_name << " (epoch " << info.epoch << ", " << info.path << ")\n"
              << args.split << ": accuracy " << std::fixed << std::setprecision(2) << 100.0 * r.accuracy << "% ("
              << correct << "/" << r.count << "), loss " << std::setprecision(4) << r.loss << "\n";
  }
}

}  // namespace

void add_eval_command(CLI::App& app) {
  auto args = std::make_shared<EvalArgs>();
  CLI::App* cmd = app.add_subcommand("eval", "Evaluate a checkpoint, or an integer model file on the runtime, on Fashion-MNIST or --data");
  cmd->add_option("--checkpoint", args->checkpoint, "checkpoint.pt, the run folder holding it, or an FP32 ONNX model (.onnx)");
  cmd->add_option("--model", args->model, "Integer model file (.lbq) to evaluate on the runtime (with --checkpoint: also compare)");
  cmd->add_option("--data", args->data_dir, data_flag_help());
  add_layout_flag(cmd, args->layout);
  add_normalisation_flags(cmd, args->mean, args->std_dev);
  cmd->add_option("--split", args->split, "test or train")->check(CLI::IsMember({"test", "train"}))->capture_default_str();
  cmd->add_option("--batch-size", args->batch_size, "Evaluation batch size")->check(CLI::PositiveNumber)->capture_default_str();
  cmd->add_option("--threads", args->threads, "CPU threads for torch")->check(CLI::PositiveNumber)->capture_default_str();
  cmd->add_option("--text", args->text, "gpt-tiny: evaluate on the last 10% of this text instead of the run's");
  cmd->add_option("--shift", args->shift,
                  "Robustness: evaluate on corrupted copies of the split: 'all' or a list of gaussian_noise, "
                  "shot_noise, impulse_noise, gaussian_blur, motion_blur, contrast, brightness, rotate, translate, "
                  "elastic (docs/robustness.md)");
  cmd->add_option("--severity", args->severity, "With --shift: severities, e.g. 3, 1,3,5 or 1-5")->capture_default_str();
  cmd->add_option("--shift-seed", args->shift_seed, "With --shift: seed of the corruptions")->capture_default_str();
  cmd->add_option("--limit", args->limit, "With --shift: only the first N images of the split")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--out", args->out, "With --shift: also write the result as JSON to this file (lowbit report plots it)");
  cmd->add_flag("--json", args->json, "Print one JSON object (accuracy, loss, count, ...) instead of a summary");
  cmd->callback([args] { run(*args); });
}

}  // namespace lowbit::cli
