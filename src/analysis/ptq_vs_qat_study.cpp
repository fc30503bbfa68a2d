#include "analysis/ptq_vs_qat_study.h"
#include "data/load_dataset.h"

#include <chrono>
#include <filesystem>
#include <iomanip>
#include <ostream>
#include <sstream>

#include "base/atomic_file.h"
#include "base/error.h"
#include "data/fashion_mnist.h"
#include "ptq/ptq_run.h"
#include "qat/qat_run.h"
#include "qat/quantized_layers.h"
#include "train/checkpoint.h"
#include "train/compute_threads.h"
#include "train/trainer.h"

namespace lowbit::analysis {
namespace {

const std::vector<std::string> kMethods = {"rtn", "gptq", "qat-ste", "qat-lsq"};

data::Dataset head(const data::Dataset& d, int64_t n) {
  n = std::min(n, d.size());
  return {d.images.narrow(0, 0, n), d.labels.narrow(0, 0, n)};
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

struct StudyData {
  data::Dataset train, validation, test;
};

StudyData load_data(const StudyOptions& o) {
  const std::string dir = data::resolve_data_dir(o.data_dir);
  const auto split = data::split_train_validation(data::load_dataset(dir, "train", o.layout), 5000);
  StudyData d;
  d.test = data::load_dataset(dir, "test", o.layout);
  d.train = split.train;
  d.validation = head(split.validation, 1000);
  if (o.quick) {
    d.train = head(d.train, 512);
    d.validation = head(d.validation, 128);
    d.test = head(d.test, 500);
  }
  return d;
}

std::string train_fp32(const StudyOptions& o, const StudyData& d) {
  train::TrainConfig c;
  c.model = o.model;
  c.epochs = o.fp32_epochs;
  c.out_dir = o.out_dir + "/fp32";
  c.threads = o.threads;
  if (o.quick) {
    c.batch_size = 64;
    c.max_steps_per_epoch = 8;
  }
  c.validate();
  torch::manual_seed(c.seed);
  models::Net net = train::build_net(train::to_json(c));
  train::Trainer trainer(net, c);
  trainer.set_log(o.log);
  trainer.fit(d.train, d.validation);
  return train::checkpoint_path(c.out_dir);
}

}  // namespace

StudyResult run_ptq_vs_qat_study(const StudyOptions& o) {
  LOWBIT_CHECK(!o.weight_bits.empty(), "study: no weight bit widths given");
  LOWBIT_CHECK(o.qat_steps >= 1, "study: --qat-steps must be >= 1 (got " + std::to_string(o.qat_steps) + ")");
  lowbit::train::set_compute_threads(static_cast<int>(o.threads));
  qat::register_checkpoint_hook();
  const StudyData d = load_data(o);
  StudyResult r;
  r.act_bits = o.act_bits;
  r.test_images = d.test.size();
  std::string from = o.from;
  if (from.empty()) {
    if (o.log) *o.log << "study: training an FP32 " << o.model << " (" << o.fp32_epochs << " epoch(s)) into " << o.out_dir << "/fp32\n";
    from = train_fp32(o, d);
  }
  const train::CheckpointInfo info = train::load_checkpoint(from);
  LOWBIT_CHECK(!info.config.contains("qat"), "study: '" + info.path + "' is a quantized checkpoint; give an FP32 one");
  LOWBIT_CHECK(o.from.empty() || info.model_name == o.model,
               "study: '" + info.path + "' holds model '" + info.model_name + "', not --model '" + o.model + "'");
  r.model = info.model_name;
  r.fp32_checkpoint = info.path;
  {
    models::Net fp = train::load_net(info.path);
    const auto e = train::evaluate(fp, d.test);
    r.fp32_accuracy = e.accuracy;
    r.fp32_loss = e.loss;
  }
  const int64_t calib_batches = o.quick ? 2 : o.calib_batches;
  const int64_t calib_size = o.quick ? 64 : 128;
  const int64_t qat_steps = o.quick ? std::min<int64_t>(o.qat_steps, 4) : o.qat_steps;
  r.qat_steps = qat_steps;

  for (int bits : o.weight_bits) {
    for (const std::string& method : kMethods) {
      const auto t0 = std::chrono::steady_clock::now();
      models::Net net{nullptr};
      if (method == "rtn" || method == "gptq") {
        ptq::PtqOptions p;
        p.method = ptq::method_from_string(method);
        net = ptq::quantize_checkpoint(info.path, ptq::ptq_config(bits, o.act_bits, calib_batches), d.train, calib_batches,
                                       calib_size, p);
      } else {
        qat::QatFlags f;
        f.wbits = bits;
        f.abits = o.act_bits;
        f.quantizer = method == "qat-ste" ? "ste" : "lsq";
        const qat::QatConfig qc = qat::config_from_flags(f);
        train::TrainConfig c = train::config_from_json(info.config);
        c.epochs = 1;
        c.max_steps_per_epoch = qat_steps;
        c.lr = o.qat_lr;
        c.weight_decay = 0.0;
        c.warmup_steps = 0;
        c.warmup_fraction = 0.0;
        c.threads = o.threads;
        c.out_dir = o.out_dir + "/" + method + "-w" + std::to_string(bits);
        if (o.quick) c.batch_size = 64;
        c.extra["qat"] = qc.to_json();
        net = train::load_net(info.path);
        net->train();
        qat::prepare(net, qc);
        train::Trainer trainer(net, c);
        trainer.set_write_files(false);
        trainer.set_log(nullptr);
        trainer.fit(d.train, d.validation);
      }
      const auto e = train::evaluate(net, d.test);
      StudyCell cell{bits, method, e.accuracy, e.loss, seconds_since(t0)};
      if (o.log) {
        *o.log << "study: W" << bits << "A" << o.act_bits << " " << std::left << std::setw(8) << method << std::right
               << " accuracy " << std::fixed << std::setprecision(2) << 100.0 * cell.accuracy << "%  loss "
               << std::setprecision(4) << cell.loss << "  (" << std::setprecision(1) << cell.seconds << " s)\n";
      }
      r.cells.push_back(cell);
    }
  }
  return r;
}

nlohmann::json StudyResult::to_json() const {
  nlohmann::json cells_json = nlohmann::json::array();
  for (const auto& c : cells) {
    cells_json.push_back({{"weight_bits", c.weight_bits}, {"method", c.method}, {"accuracy", c.accuracy},
                          {"loss", c.loss}, {"seconds", c.seconds}});
  }
  return {{"study", "ptq-vs-qat"},      {"model", model},         {"fp32_checkpoint", fp32_checkpoint},
          {"fp32_accuracy", fp32_accuracy}, {"fp32_loss", fp32_loss}, {"act_bits", act_bits},
          {"qat_steps", qat_steps},      {"test_images", test_images}, {"cells", cells_json}};
}

std::string StudyResult::to_csv() const {
  std::ostringstream s;
  s << "model,weight_bits,act_bits,method,accuracy,loss,seconds\n";
  s << std::setprecision(6);
  s << model << ",32,32,fp32," << fp32_accuracy << "," << fp32_loss << ",0\n";
  for (const auto& c : cells) {
    s << model << "," << c.weight_bits << "," << act_bits << "," << c.method << "," << c.accuracy << "," << c.loss << ","
      << c.seconds << "\n";
  }
  return s.str();
}

std::string StudyResult::table() const {
  std::ostringstream s;
  s << std::fixed << std::setprecision(2);
  s << model << ", test accuracy % (" << test_images << " images), FP32 " << 100.0 * fp32_accuracy << "%, activations "
    << act_bits << "-bit, QAT " << qat_steps << " steps\n";
  s << "| W bits |";
  for (const auto& m : kMethods) s << " " << m << " |";
  s << "\n|---|";
  for (size_t i = 0; i < kMethods.size(); ++i) s << "---|";
  s << "\n";
  std::vector<int> bits;
  for (const auto& c : cells)
    if (std::find(bits.begin(), bits.end(), c.weight_bits) == bits.end()) bits.push_back(c.weight_bits);
  for (int b : bits) {
    s << "| " << b << " |";
    for (const auto& m : kMethods) {
      bool found = false;
      for (const auto& c : cells) {
        if (c.weight_bits == b && c.method == m) {
          s << " " << 100.0 * c.accuracy << " |";
          found = true;
        }
      }
      if (!found) s << " - |";
    }
    s << "\n";
  }
  return s.str();
}

void write_study_files(const StudyResult& result, const std::string& out_dir) {
  std::filesystem::create_directories(out_dir);
  write_file_atomically(out_dir + "/study.json", result.to_json().dump(2) + "\n");
  write_file_atomically(out_dir + "/study.csv", result.to_csv());
}

}  // namespace lowbit::analysis
