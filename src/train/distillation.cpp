#include "train/distillation.h"

#include <cmath>
#include <filesystem>
#include <memory>
#include <sstream>

#include <torch/nn/functional/activation.h>
#include <torch/nn/functional/loss.h>

#include "base/error.h"
#include "data/input_normalisation.h"
#include "train/checkpoint.h"

namespace lowbit::train {
namespace {
std::string shape_string(c10::IntArrayRef sizes) {
  std::ostringstream o;
  o << sizes;  // [2, 10]
  return o.str();
}
}  // namespace

void DistillConfig::validate() const {
  LOWBIT_CHECK(std::isfinite(weight) && weight >= 0.0 && weight <= 1.0,
               "--distill-weight must be in [0, 1] (got " + std::to_string(weight) + ")");
  LOWBIT_CHECK(std::isfinite(temperature) && temperature > 0.0,
               "--distill-temperature must be > 0 (got " + std::to_string(temperature) + ")");
}

nlohmann::json DistillConfig::to_json() const {
  return {{"teacher", teacher}, {"weight", weight}, {"temperature", temperature}};
}

DistillConfig DistillConfig::from_run_config(const nlohmann::json& run_config) {
  DistillConfig c;
  if (!run_config.contains("distill")) return c;
  const nlohmann::json& s = run_config["distill"];
  LOWBIT_CHECK(s.is_object() && s.contains("teacher") && s["teacher"].is_string() && s.value("weight", -1.0) >= 0.0 &&
                   s.contains("temperature") && s["temperature"].is_number(),
               "the run config's \"distill\" section needs a string \"teacher\" and numbers \"weight\" and "
               "\"temperature\": " + s.dump().substr(0, 160));
  c.teacher = s["teacher"].get<std::string>();
  c.weight = s["weight"].get<double>();
  c.temperature = s["temperature"].get<double>();
  c.validate();
  return c;
}

torch::Tensor distillation_loss(const torch::Tensor& student_logits, const torch::Tensor& teacher_logits,
                                const torch::Tensor& labels, double weight, double temperature) {
  namespace F = torch::nn::functional;
  LOWBIT_CHECK(student_logits.sizes() == teacher_logits.sizes(),
               "distillation: the teacher's logits have shape " + shape_string(teacher_logits.sizes()) +
                   " but the student's " + shape_string(student_logits.sizes()) +
                   "; the teacher must predict the same classes as the student");
  const int64_t classes = student_logits.size(-1);
  const auto s = student_logits.reshape({-1, classes});
  torch::Tensor loss;
  if (weight > 0.0) {
    const auto t = teacher_logits.detach().reshape({-1, classes}).to(s.scalar_type());
    const auto log_p_student = F::log_softmax(s / temperature, F::LogSoftmaxFuncOptions(1));
    const auto log_p_teacher = F::log_softmax(t / temperature, F::LogSoftmaxFuncOptions(1));
    // KL(teacher || student) per row, then the mean over rows ("batchmean").
    const auto kl = (log_p_teacher.exp() * (log_p_teacher - log_p_student)).sum(1).mean();
    loss = kl * (weight * temperature * temperature);
  }
  if (weight < 1.0) {
    const auto ce = F::cross_entropy(s, labels.reshape({-1})) * (1.0 - weight);
    loss = loss.defined() ? loss + ce : ce;
  }
  return loss;
}

void install_distillation(TrainHooks& hooks, const DistillConfig& config, const nlohmann::json& run_config,
                          const torch::Device& device) {
  config.validate();
  LOWBIT_CHECK(std::filesystem::exists(config.teacher),
               "distillation: the teacher '" + config.teacher +
                   "' does not exist (a resumed run looks for the teacher recorded in its config.json); "
                   "give an FP32 checkpoint (file or run folder) or an FP32 .onnx model");
  const CheckpointInfo info = load_checkpoint(config.teacher);
  LOWBIT_CHECK(!info.config.contains("qat"), "distillation: the teacher '" + info.path +
                                                 "' is a QAT checkpoint; give an FP32 one (usually the --from run)");
  LOWBIT_CHECK(info.model_name != "gpt-tiny",
               "distillation: '" + info.path + "' is a language model; distillation covers image models so far");
  auto teacher = std::make_shared<models::Net>(load_net(info.path));
  // The student's input normalisation (a --mean/--std given to QAT applies to both).
  const data::InputNormalisation norm = data::InputNormalisation::from_run_config(run_config);
  if (norm.active()) (*teacher)->set_input_normalisation(norm.mean, norm.std);
  (*teacher)->eval();
  for (auto& p : (*teacher)->parameters()) p.set_requires_grad(false);
  (*teacher)->to(device);
  const double weight = config.weight, temperature = config.temperature;
  hooks.loss = [teacher, weight, temperature](const torch::Tensor& x, const torch::Tensor& logits,
                                              const torch::Tensor& labels) {
    torch::Tensor teacher_logits;
    {
      torch::NoGradGuard no_grad;
      teacher_logits = (*teacher)->forward(x);
    }
    return distillation_loss(logits, teacher_logits, labels, weight, temperature);
  };
}

}  // namespace lowbit::train
