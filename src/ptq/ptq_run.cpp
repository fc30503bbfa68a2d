#include "ptq/ptq_run.h"

#include <filesystem>
#include <ostream>

#include "base/atomic_file.h"
#include "base/error.h"
#include "ptq/calibration.h"
#include "qat/qat_run.h"
#include "train/checkpoint.h"
#include "train/train_config.h"
#include "train/trainer.h"

namespace lowbit::ptq {

models::Net quantize_checkpoint(const std::string& from, const qat::QatConfig& config, const data::Dataset& train,
                                int64_t calib_batches, int64_t calib_batch_size, const PtqOptions& options,
                                PtqReport* report) {
  qat::register_checkpoint_hook();
  const train::CheckpointInfo info = train::load_checkpoint(from);
  LOWBIT_CHECK(!info.config.contains("qat"), "ptq: '" + info.path +
                                                 "' is already a quantized (QAT/PTQ) checkpoint; start from an FP32 checkpoint");
  models::Net net = train::load_net(info.path);
  const auto calibration = calibration_batches(train, calib_batches, calib_batch_size);
  PtqReport r = quantize_post_training(net, config, calibration, options);
  if (report) *report = r;
  return net;
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
  write_file_atomically(out_dir + "/config.json", state.config.dump(2) + "\n");
}

PtqRunResult run_ptq(const PtqRunOptions& o) {
  LOWBIT_CHECK(!o.from.empty(), "ptq: --from names the FP32 checkpoint to quantize (e.g. runs/cnn-fp32)");
  LOWBIT_CHECK(!o.out.empty(), "ptq: --out names the output folder");
  LOWBIT_CHECK(o.overwrite || !std::filesystem::exists(o.out + "/checkpoint.pt"),
               "'" + o.out + "/checkpoint.pt' already exists; pass --overwrite to replace it");
  torch::set_num_threads(static_cast<int>(o.threads));
  qat::register_checkpoint_hook();
  train::load_checkpoint(o.from);  // a bad --from is reported before the data is read
  const std::string dir = data::resolve_data_dir(o.data_dir);
  const data::Dataset train = data::load_fashion_mnist(dir, "train");
  const data::Dataset test = data::load_fashion_mnist(dir, "test");

  PtqRunResult result;
  {
    models::Net fp = train::load_net(o.from);
    const auto e = train::evaluate(fp, test);
    result.fp_accuracy = e.accuracy;
    result.fp_loss = e.loss;
  }
  const qat::QatConfig config = ptq_config(o.wbits, o.abits, o.calib_batches, o.observer);
  if (o.log) *o.log << "ptq: " << to_string(o.ptq.method) << " W" << o.wbits << "A" << o.abits << ", "
                    << o.calib_batches << " calibration batches of " << o.calib_batch_size << "\n";
  models::Net net = quantize_checkpoint(o.from, config, train, o.calib_batches, o.calib_batch_size, o.ptq, &result.report);
  const auto e = train::evaluate(net, test);
  result.ptq_accuracy = e.accuracy;
  result.ptq_loss = e.loss;

  nlohmann::json section = {{"method", to_string(o.ptq.method)},
                            {"from", train::checkpoint_path(o.from)},
                            {"weight_bits", o.wbits},
                            {"act_bits", o.abits},
                            {"calib_batches", o.calib_batches},
                            {"calib_batch_size", o.calib_batch_size},
                            {"bn_reestimate", o.ptq.bn_reestimate},
                            {"bias_correction", o.ptq.bias_correction},
                            {"act_order", o.ptq.gptq.act_order},
                            {"percdamp", o.ptq.gptq.percdamp},
                            {"block_size", o.ptq.gptq.block_size}};
  save_ptq_checkpoint(o.out, net, o.from, config, section, o.overwrite);
  result.checkpoint = o.out + "/checkpoint.pt";
  nlohmann::json summary = section;
  summary["fp32_test_accuracy"] = result.fp_accuracy;
  summary["ptq_test_accuracy"] = result.ptq_accuracy;
  summary["fp32_test_loss"] = result.fp_loss;
  summary["ptq_test_loss"] = result.ptq_loss;
  summary["layers"] = result.report.to_json();
  write_file_atomically(o.out + "/ptq.json", summary.dump(2) + "\n");
  return result;
}

}  // namespace lowbit::ptq
