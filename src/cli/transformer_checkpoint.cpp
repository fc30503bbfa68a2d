#include "cli/transformer_checkpoint.h"

#include "convert/to_decoder.h"
#include "convert/to_encoder.h"
#include "models/gpt.h"
#include "models/vit.h"
#include "ptq/ptq.h"
#include "qat/qat_config.h"
#include "qat/quantized_layers.h"
#include "qat/quantized_transformer.h"
#include "train/checkpoint.h"

namespace lowbit::cli {

runtime::DecoderModel decoder_of_checkpoint(const std::string& path, bool& fp32) {
  const train::CheckpointInfo info = train::load_checkpoint(path);
  models::Net net = train::load_net(info.path);
  const models::GptOptions options = models::GptOptions::from_json(info.config.value("lm", nlohmann::json::object()));
  fp32 = !info.config.contains("qat");
  std::string how = "QAT";
  if (fp32) {
    // As convert_command.cpp's FP32 path with --wbits 8 --group-size 0.
    qat::QatFlags f;
    f.wbits = 8;
    f.group_size = 0;
    f.granularity = "channel";
    qat::prepare(net, qat::with_language_model_defaults(qat::config_from_flags(f)));
    how = "FP32 checkpoint; integer columns: round-to-nearest int8 per-channel stand-in";
  }
  // The description `lowbit convert` stores for a QAT run, so that file bytes match its file.
  return convert::to_decoder_model(net, options, net->model_name() + " (" + how + ") from " + path);
}

runtime::EncoderModel encoder_of_checkpoint(const std::string& path, bool& fp32) {
  const train::CheckpointInfo info = train::load_checkpoint(path);
  models::Net net = train::load_net(info.path);
  const models::VitOptions options = models::VitOptions::from_json(info.config.value("vit", nlohmann::json::object()));
  fp32 = !info.config.contains("qat") && !info.config.contains("ptq");
  if (fp32) {
    torch::manual_seed(0);
    ptq::quantize_post_training(net, ptq::ptq_config(8, 8, 1), {models::random_inputs(net, 16)}, ptq::PtqOptions{});
  }
  const std::string how = fp32 ? " (FP32 checkpoint; integer columns: W8A8 stand-in)"
                               : info.config.contains("ptq") ? " (PTQ)" : " (QAT)";
  return convert::to_encoder_model(net, options, net->model_name() + how + " from " + path);
}

}  // namespace lowbit::cli
