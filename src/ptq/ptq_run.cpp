#include "ptq/ptq_run.h"

#include <filesystem>
#include <functional>
#include <ostream>

#include "base/atomic_file.h"
#include "report/run_provenance.h"
#include "base/error.h"
#include "data/load_dataset.h"
#include "data/run_data_layout.h"
#include "ptq/calibration.h"
#include "qat/qat_run.h"
#include "qat/quantized_transformer.h"
#include "train/checkpoint.h"
#include "train/compute_threads.h"
#include "train/data_fit.h"
#include "train/lm_trainer.h"
#include "train/train_config.h"
#include "train/trainer.h"

namespace lowbit::ptq {

models::Net quantize_checkpoint(const std::string& from, const qat::QatConfig& config,
                                const std::vector<torch::Tensor>& calibration, const PtqOptions& options,
                                PtqReport* report) {
  qat::register_checkpoint_hook();
  const train::CheckpointInfo info = train::load_checkpoint(from);
  LOWBIT_CHECK(!info.config.contains("qat"), "ptq: '" + info.path +
                                                 "' is already a quantized (QAT/PTQ) checkpoint; start from an FP32 checkpoint");
  models::Net net = train::load_net(info.path);
  PtqReport r = quantize_post_training(net, config, calibration, options);
  if (report) *report = r;
  return net;
}

models::Net quantize_checkpoint(const std::string& from, const qat::QatConfig& config, const data::Dataset& train,
                                int64_t calib_batches, int64_t calib_batch_size, const PtqOptions& options,
                                PtqReport* report) {
  train::load_checkpoint(from);  // a bad checkpoint is reported before the calibration set is cut
  return quantize_checkpoint(from, config, calibration_batches(train, calib_batches, calib_batch_size), options, report);
}

void save_ptq_checkpoint(const std::string& out_dir, models::Net& net, const std::string& from,
                         const qat::QatConfig& config, const nlohmann::json& ptq_section, bool overwrite) {
  const train::CheckpointInfo info = train::load_checkpoint(from);
  train::TrainConfig tc = train::config_from_json(info.config);
  tc.out_dir = out_dir;
  tc.extra["qat"] = config.to_json();
  tc.extra["ptq"] = ptq_section;
  const std::string path = out_dir + "/checkpoint.pt";
  LOWBIT_CHECK(overwrite || !std::filesystem::exists(path),
               "'" + path + "' already exists; pass --overwrite to replace it");
  std::filesystem::create_directories(out_dir);
  train::TrainingState state;
  state.epoch = info.epoch;
  state.step = info.step;
  state.config = train::to_json(tc);
  save_checkpoint(path, net, state);
  // The checkpoint keeps the settings only; config.json also says which command and machine made it.
  write_file_atomically(out_dir + "/config.json", with_provenance(state.config).dump(2) + "\n");
}

namespace {

// What run_ptq measures before and after: accuracy and loss on the test set (image models), or
// next-byte accuracy, loss and bits per byte on the run's validation windows (gpt-tiny).
struct Score {
  double accuracy = 0.0, loss = 0.0, bits_per_byte = 0.0;
};

}  // namespace

PtqRunResult run_ptq(const PtqRunOptions& o) {
  LOWBIT_CHECK(!o.from.empty(), "ptq: --from names the FP32 checkpoint to quantize (e.g. runs/cnn-fp32)");
  LOWBIT_CHECK(!o.out.empty(), "ptq: --out names the output folder");
  LOWBIT_CHECK(o.overwrite || !std::filesystem::exists(o.out + "/checkpoint.pt"),
               "'" + o.out + "/checkpoint.pt' already exists; pass --overwrite to replace it");
  lowbit::train::set_compute_threads(static_cast<int>(o.threads));
  qat::register_checkpoint_hook();
  const train::CheckpointInfo info = train::load_checkpoint(o.from);  // a bad --from is reported before the data is read

  PtqRunResult result;
  result.language_model = info.model_name == "gpt-tiny";
  LOWBIT_CHECK(o.calib_samples == 0 || !result.language_model,
               "ptq: --calib-samples counts images; gpt-tiny calibrates on --calib-batches x --calib-batch-size windows");
  LOWBIT_CHECK(o.calib_samples >= 0, "ptq: --calib-samples must be positive (0: --calib-batches x --calib-batch-size)");
  // --calib-samples N: ceil(N / batch size) batches, the last one holding the rest.
  const int64_t calib_batches =
      o.calib_samples > 0 ? (o.calib_samples + o.calib_batch_size - 1) / o.calib_batch_size : o.calib_batches;
  qat::QatConfig config = ptq_config(o.wbits, o.abits, calib_batches, o.observer, o.group_size);
  std::vector<torch::Tensor> calibration;
  std::function<Score(models::Net&)> score;
  torch::Tensor val_windows;
  data::Dataset test;
  if (result.language_model) {
    config = qat::with_language_model_defaults(config);  // embedding and head stay float
    const train::LmSettings lm = train::LmSettings::from_json(info.config.value("lm", nlohmann::json::object()));
    const data::TextCorpus corpus = data::load_text_corpus(lm.text, lm.model.context, lm.val_fraction);
    calibration = text_calibration_batches(corpus.train, o.calib_batches, o.calib_batch_size, lm.model.context, o.seed);
    val_windows = train::lm_validation_windows(corpus, lm);
    score = [&](models::Net& net) {
      const train::LmEval e = train::evaluate_lm(net, val_windows);
      return Score{e.accuracy, e.loss, e.bits_per_byte};
    };
  } else {
    const std::string layout = data::run_data_layout(o.layout, info.config);
    const data::Dataset train_data = data::load_dataset(o.data_dir, "train", layout);
    if (o.calib_samples > 0) {
      LOWBIT_CHECK(o.calib_samples <= train_data.size(),
                   "ptq: --calib-samples " + std::to_string(o.calib_samples) + " but the training split of data '" +
                       data::resolve_data_dir(o.data_dir) + "' has " + std::to_string(train_data.size()) + " images");
      for (int64_t start = 0; start < o.calib_samples; start += o.calib_batch_size)
        calibration.push_back(train_data.images.narrow(0, start, std::min(o.calib_batch_size, o.calib_samples - start)));
    } else {
      calibration = calibration_batches(train_data, o.calib_batches, o.calib_batch_size);
    }
    test = data::load_dataset(o.data_dir, "test", layout);
    models::Net probe = train::load_net(o.from);
    train::check_model_fits_data(probe, test, o.data_dir);
    score = [&](models::Net& net) {
      const train::EvalResult e = train::evaluate(net, test);
      return Score{e.accuracy, e.loss, 0.0};
    };
  }
  {
    models::Net fp = train::load_net(o.from);
    const Score s = score(fp);
    result.fp_accuracy = s.accuracy;
    result.fp_loss = s.loss;
    result.fp_bits_per_byte = s.bits_per_byte;
  }
  if (o.log) *o.log << "ptq: " << to_string(o.ptq.method) << " W" << o.wbits << "A" << o.abits
                    << (o.group_size > 0 ? " g" + std::to_string(o.group_size) : std::string()) << ", "
                    << (o.calib_samples > 0 ? std::to_string(o.calib_samples) + " calibration images in " : std::string())
                    << calib_batches << " calibration batches of " << o.calib_batch_size
                    << (result.language_model ? " windows" : " images") << "\n";
  models::Net net = quantize_checkpoint(o.from, config, calibration, o.ptq, &result.report);
  const Score after = score(net);
  result.ptq_accuracy = after.accuracy;
  result.ptq_loss = after.loss;
  result.ptq_bits_per_byte = after.bits_per_byte;

  nlohmann::json section = {{"method", to_string(o.ptq.method)},
                            {"from", train::checkpoint_path(o.from)},
                            {"weight_bits", o.wbits},
                            {"act_bits", o.abits},
                            {"group_size", o.group_size},
                            {"calib_batches", calib_batches},
                            {"calib_samples", o.calib_samples > 0 ? o.calib_samples : calib_batches * o.calib_batch_size},
                            {"calib_batch_size", o.calib_batch_size},
                            {"bn_reestimate", o.ptq.bn_reestimate},
                            {"bias_correction", o.ptq.bias_correction},
                            {"act_order", o.ptq.gptq.act_order},
                            {"percdamp", o.ptq.gptq.percdamp},
                            {"block_size", o.ptq.gptq.block_size}};
  if (result.language_model) section["calib_seed"] = o.seed;
  save_ptq_checkpoint(o.out, net, o.from, config, section, o.overwrite);
  result.checkpoint = o.out + "/checkpoint.pt";
  nlohmann::json summary = section;
  if (result.language_model) {
    summary["fp32_val_bits_per_byte"] = result.fp_bits_per_byte;
    summary["ptq_val_bits_per_byte"] = result.ptq_bits_per_byte;
    summary["fp32_val_loss"] = result.fp_loss;
    summary["ptq_val_loss"] = result.ptq_loss;
    summary["fp32_val_accuracy"] = result.fp_accuracy;
    summary["ptq_val_accuracy"] = result.ptq_accuracy;
  } else {
    summary["fp32_test_accuracy"] = result.fp_accuracy;
    summary["ptq_test_accuracy"] = result.ptq_accuracy;
    summary["fp32_test_loss"] = result.fp_loss;
    summary["ptq_test_loss"] = result.ptq_loss;
  }
  summary["layers"] = result.report.to_json();
  write_file_atomically(o.out + "/ptq.json", summary.dump(2) + "\n");
  return result;
}

}  // namespace lowbit::ptq
