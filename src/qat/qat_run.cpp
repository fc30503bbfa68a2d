#include "qat/qat_run.h"

#include <filesystem>
#include <memory>

#include "base/error.h"
#include "data/input_normalisation.h"
#include "data/run_data_layout.h"
#include "qat/quantized_layers.h"
#include "qat/winq.h"
#include "qat/quantized_transformer.h"
#include "train/checkpoint.h"
#include "train/device.h"
#include "train/distributed.h"

namespace lowbit::qat {

void register_checkpoint_hook() {
  train::set_qat_rebuild_hook(
      [](models::Net& net, const nlohmann::json& section) { prepare(net, QatConfig::from_json(section)); });
}

namespace {
// Observers combine their batch ranges across ranks (min of minima, max of maxima).
void combine_ranges_across_ranks() {
  train::DistributedContext& dist = train::distributed();
  if (!dist.active()) return;
  set_range_combiner([&dist](torch::Tensor& lo, torch::Tensor& hi) {
    // One all-reduce: max of (-lo, hi) is (-min lo, max hi).
    std::vector<torch::Tensor> both{torch::cat({-lo.to(torch::kFloat32).reshape({-1}), hi.to(torch::kFloat32).reshape({-1})})};
    dist.allreduce_max(both);
    const int64_t p = lo.numel();
    lo = (-both[0].narrow(0, 0, p)).view(lo.sizes()).to(lo.scalar_type());
    hi = both[0].narrow(0, p, p).view(hi.sizes()).to(hi.scalar_type());
  });
}
}  // namespace

train::TrainResult run_qat(train::TrainConfig config, const QatConfig& qat_in, const QatRunOptions& options) {
  register_checkpoint_hook();
  // Before the process group is made (next line): a CUDA run may all-reduce over NCCL.
  train::set_process_training_device(train::usable_training_device(config.device));
  combine_ranges_across_ranks();
  QatConfig qat = qat_in;
  if (!options.resume && !options.from.empty() && train::load_checkpoint(options.from).model_name == "gpt-tiny") {
    qat = with_language_model_defaults(qat);  // embedding and head stay float unless the config says otherwise
  }
  config.extra["qat"] = qat.to_json();
  // WinQ: its hooks reset and seed the noise from the trainer's step, so a resumed run continues
  // as the uninterrupted one would.
  train::TrainHooks hooks;
  std::unique_ptr<Winq> winq;
  if (qat.winq.enabled) {
    winq = std::make_unique<Winq>(qat.winq, config.seed);
    winq->install(hooks);
  }
  train::RunOptions run;
  run.resume = options.resume;
  run.overwrite = options.overwrite;
  run.log = options.log;
  if (options.resume) {
    const train::DistillConfig distill = train::DistillConfig::from_run_config(config.extra);
    if (distill.enabled()) train::install_distillation(hooks, distill, config.extra, train::usable_training_device(config.device));
    return train::run_training(config, run, hooks);
  }

  LOWBIT_CHECK(!options.from.empty(), "qat: --from names the checkpoint to start from (e.g. runs/cnn-fp32)");
  const train::CheckpointInfo source = train::load_checkpoint(options.from);
  config.model = source.model_name;
  for (const char* sizes : {"lm", "vit", "onnx"}) {  // the model's sizes (gpt-tiny, vit-tiny) or imported structure
    if (source.config.contains(sizes) && !config.extra.contains(sizes)) config.extra[sizes] = source.config[sizes];
  }
  // The data layout the FP32 run was trained with, unless --layout says otherwise.
  const std::string layout = data::run_data_layout("auto", source.config);
  if (layout != "auto" && !config.extra.value("data", nlohmann::json::object()).contains("layout")) {
    config.extra["data"]["layout"] = layout;
  }
  // The input normalisation the FP32 run was trained with; --mean/--std may only repeat it (or
  // give one to a source without any, e.g. an imported ONNX model).
  const data::InputNormalisation source_norm = data::InputNormalisation::from_run_config(source.config);
  data::InputNormalisation norm = data::InputNormalisation::from_run_config(config.extra);
  LOWBIT_CHECK(!norm.active() || !source_norm.active() || norm == source_norm,
               "qat: --mean/--std (" + norm.describe() + ") contradict the input normalisation '" + source.path +
                   "' was trained with (" + source_norm.describe() + "); drop them");
  if (!norm.active()) norm = source_norm;
  norm.write_to(config.extra);
  config.validate();
  models::Net net = train::load_net(source.path);
  if (norm.active()) net->set_input_normalisation(norm.mean, norm.std);
  LOWBIT_CHECK(!source.config.contains("qat"),
               "qat: '" + source.path + "' is already a QAT checkpoint; start from an FP32 checkpoint, or use "
               "--resume to continue a QAT run");
  net->train();
  prepare(net, qat);
  run.initial_net = net;
  if (options.distill.enabled()) {
    LOWBIT_CHECK(config.model != "gpt-tiny", "qat --distill: distillation covers image models so far; '" + source.path +
                                                 "' is gpt-tiny (drop --distill / --teacher)");
    train::DistillConfig distill = options.distill;
    // Absolute, so that a resumed run finds the teacher from any working directory.
    distill.teacher = std::filesystem::absolute(distill.teacher).lexically_normal().string();
    config.extra["distill"] = distill.to_json();
    train::install_distillation(hooks, distill, config.extra, train::usable_training_device(config.device));
  }
  return train::run_training(config, run, hooks);
}

}  // namespace lowbit::qat
