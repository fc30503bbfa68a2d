#include "train/checkpoint.h"

#include <sys/stat.h>
#include <zlib.h>

#include <cstring>
#include <mutex>
#include <sstream>

#include "base/atomic_file.h"
#include "base/error.h"
#include "data/input_normalisation.h"
#include "import/onnx_reader.h"
#include "models/gpt.h"
#include "models/imported_net.h"
#include "models/vit.h"

namespace lowbit::train {
namespace {

std::mutex& hook_mutex() {
  static std::mutex m;
  return m;
}
QatRebuildHook& qat_hook() {
  static QatRebuildHook hook;
  return hook;
}

std::string first_line(const std::string& s) { return s.substr(0, s.find('\n')); }

bool is_directory(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

// Reads and validates the archive; every failure becomes "<path> is not a lowbit checkpoint".
void open_archive(const std::string& path, torch::serialize::InputArchive& archive, CheckpointInfo& info) {
  const std::string bytes = verified_checkpoint_archive(path, read_whole_file(path));
  const std::string not_ours = "'" + path + "' is not a lowbit checkpoint: ";
  try {
    std::istringstream in(bytes);
    archive.load_from(in);
  } catch (const c10::Error& e) {
    throw Error(not_ours + "not a readable torch archive (" + first_line(e.what_without_backtrace()) +
                "); pass the checkpoint.pt written by 'lowbit train' or its folder");
  }
  try {
    c10::IValue v;
    if (!archive.try_read("format", v) || !v.isString()) throw Error(not_ours + "it has no lowbit format tag");
    const std::string format = v.toStringRef();
    if (format != kCheckpointFormat) {
      throw Error(not_ours + "format '" + format + "', expected '" + kCheckpointFormat +
                  "' (written by another lowbit version?)");
    }
    archive.read("model_name", v);
    info.model_name = v.toStringRef();
    archive.read("config", v);
    info.config = nlohmann::json::parse(v.toStringRef());
    archive.read("epoch", v);
    info.epoch = v.toInt();
    archive.read("step", v);
    info.step = v.toInt();
  } catch (const c10::Error& e) {
    throw Error(not_ours + first_line(e.what_without_backtrace()));
  } catch (const nlohmann::json::exception& e) {
    throw Error(not_ours + "its config is not valid JSON (" + e.what() + ")");
  }
  LOWBIT_CHECK(info.config.is_object() && info.config.value("model", "") == info.model_name,
               not_ours + "its config does not name model '" + info.model_name + "'");
}

}  // namespace

std::string checkpoint_path(const std::string& path_or_dir) {
  return is_directory(path_or_dir) ? path_or_dir + "/checkpoint.pt" : path_or_dir;
}

CheckpointInfo load_checkpoint(const std::string& path_or_dir) {
  CheckpointInfo info;
  if (import::is_onnx_path(path_or_dir) && !is_directory(path_or_dir)) {
    // An FP32 ONNX model stands in for an FP32 run: its structure becomes the config's "onnx"
    // section, so runs that start from it rebuild without the file.
    const import::ImportedModel m = import::read_onnx_model(path_or_dir);
    info.path = path_or_dir;
    info.model_name = models::kImportedModelName;
    info.config = {{"model", models::kImportedModelName}, {"onnx", import::structure_to_json(m)}};
    return info;
  }
  info.path = checkpoint_path(path_or_dir);
  torch::serialize::InputArchive archive;
  open_archive(info.path, archive, info);
  return info;
}

void save_checkpoint(const std::string& path, models::Net& net, const TrainingState& state) {
  // Serialise fully in memory first: a failure here never touches the file on disk.
  std::ostringstream bytes;
  {
    torch::serialize::OutputArchive archive;
    archive.write("format", c10::IValue(std::string(kCheckpointFormat)));
    archive.write("model_name", c10::IValue(net->model_name()));
    archive.write("config", c10::IValue(state.config.dump()));
    archive.write("epoch", c10::IValue(state.epoch));
    archive.write("step", c10::IValue(state.step));
    torch::serialize::OutputArchive model_archive;
    net->save(model_archive);
    archive.write("model", model_archive);
    if (state.optimizer != nullptr) {
      torch::serialize::OutputArchive optimizer_archive;
      state.optimizer->save(optimizer_archive);
      archive.write("optimizer", optimizer_archive);
    }
    at::Generator default_gen = at::detail::getDefaultCPUGenerator();
    archive.write("torch_rng", default_gen.get_state(), /*is_buffer=*/true);
    if (state.shuffle_generator != nullptr) {
      archive.write("shuffle_rng", state.shuffle_generator->get_state(), /*is_buffer=*/true);
    }
    archive.save_to(bytes);
  }
  write_file_atomically(path, with_checksum_trailer(bytes.str()));
}

uint32_t weights_crc32(models::Net& net) {
  uLong c = ::crc32(0L, Z_NULL, 0);
  auto add = [&](const std::string& name, const torch::Tensor& t) {
    const torch::Tensor flat = t.detach().contiguous().cpu();
    std::string header = name;
    for (const int64_t d : flat.sizes()) header += ":" + std::to_string(d);
    c = ::crc32(c, reinterpret_cast<const Bytef*>(header.data()), static_cast<uInt>(header.size()));
    const size_t n = flat.numel() * flat.element_size();
    const char* p = static_cast<const char*>(flat.data_ptr());
    for (size_t done = 0; done < n;) {
      const uInt piece = static_cast<uInt>(std::min<size_t>(n - done, size_t{1} << 30));
      c = ::crc32(c, reinterpret_cast<const Bytef*>(p + done), piece);
      done += piece;
    }
  };
  for (const auto& p : net->named_parameters()) add(p.key(), p.value());
  for (const auto& b : net->named_buffers()) add(b.key(), b.value());
  return static_cast<uint32_t>(c);
}

void restore_checkpoint(const std::string& path_or_dir, models::Net& net, TrainingState& state) {
  CheckpointInfo info;
  info.path = checkpoint_path(path_or_dir);
  torch::serialize::InputArchive archive;
  open_archive(info.path, archive, info);
  LOWBIT_CHECK(info.model_name == net->model_name(),
               "'" + info.path + "' holds model '" + info.model_name + "', not '" + net->model_name() +
                   "' (use --model " + info.model_name + " or another output folder)");
  const std::string mismatch = "'" + info.path + "' does not match model '" + net->model_name() + "': ";
  try {
    torch::serialize::InputArchive model_archive;
    archive.read("model", model_archive);
    net->load(model_archive);
    if (state.optimizer != nullptr) {
      torch::serialize::InputArchive optimizer_archive;
      LOWBIT_CHECK(archive.try_read("optimizer", optimizer_archive),
                   "'" + info.path + "' has no optimizer state, so the run cannot be resumed");
      state.optimizer->load(optimizer_archive);
    }
    torch::Tensor rng;
    archive.read("torch_rng", rng, /*is_buffer=*/true);
    at::Generator default_gen = at::detail::getDefaultCPUGenerator();
    {
      std::lock_guard<std::mutex> lock(default_gen.mutex());
      default_gen.set_state(rng);
    }
    if (state.shuffle_generator != nullptr) {
      torch::Tensor shuffle;
      archive.read("shuffle_rng", shuffle, /*is_buffer=*/true);
      state.shuffle_generator->set_state(shuffle);
    }
  } catch (const c10::Error& e) {
    throw Error(mismatch + first_line(e.what_without_backtrace()) +
                " (was it written with another model definition or QAT configuration?)");
  }
  state.epoch = info.epoch;
  state.step = info.step;
  state.config = info.config;
}

void set_qat_rebuild_hook(QatRebuildHook hook) {
  std::lock_guard<std::mutex> lock(hook_mutex());
  qat_hook() = std::move(hook);
}

models::Net build_net(const nlohmann::json& config) {
  LOWBIT_CHECK(config.is_object() && config.contains("model") && config["model"].is_string(),
               "model config has no string key 'model': " + config.dump().substr(0, 120));
  const std::string name = config["model"].get<std::string>();
  if (name == models::kImportedModelName)
    LOWBIT_CHECK(config.contains("onnx"), "model config names model 'onnx' but has no \"onnx\" section (the imported structure)");
  models::Net net = name == "gpt-tiny"   ? models::make_gpt(models::GptOptions::from_json(config.value("lm", nlohmann::json::object())))
                    : name == "vit-tiny" ? models::make_vit(models::VitOptions::from_json(config.value("vit", nlohmann::json::object())))
                    : name == models::kImportedModelName ? models::make_imported_net(import::structure_from_json(config["onnx"]))
                                         : models::make_model(name);
  {
    const data::InputNormalisation n = data::InputNormalisation::from_run_config(config);  // "data": mean, std
    if (n.active()) net->set_input_normalisation(n.mean, n.std);
  }
  if (config.contains("qat")) {
    QatRebuildHook hook;
    {
      std::lock_guard<std::mutex> lock(hook_mutex());
      hook = qat_hook();
    }
    LOWBIT_CHECK(static_cast<bool>(hook),
                 "the config has a 'qat' section but no QAT rebuild hook is registered "
                 "(call lowbit::train::set_qat_rebuild_hook from the qat module before loading)");
    hook(net, config["qat"]);
  }
  return net;
}

models::Net load_net(const std::string& path_or_dir) {
  if (import::is_onnx_path(path_or_dir) && !is_directory(path_or_dir)) {
    const import::ImportedModel m = import::read_onnx_model(path_or_dir);
    models::Net net = models::make_imported_net(m);
    models::load_imported_weights(net, m);
    net->eval();
    return net;
  }
  const CheckpointInfo info = load_checkpoint(path_or_dir);
  models::Net net = build_net(info.config);
  TrainingState state;  // weights only: optimizer and shuffle state are not needed
  // Keep the caller's RNG untouched: restore_checkpoint also restores the default generator.
  at::Generator default_gen = at::detail::getDefaultCPUGenerator();
  torch::Tensor saved_rng = default_gen.get_state();
  restore_checkpoint(info.path, net, state);
  {
    std::lock_guard<std::mutex> lock(default_gen.mutex());
    default_gen.set_state(saved_rng);
  }
  net->eval();
  return net;
}

}  // namespace lowbit::train
