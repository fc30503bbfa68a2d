#include "analysis/robustness.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

#include "base/error.h"
#include "data/corruptions.h"

namespace lowbit::analysis {
namespace {

// Accumulates accuracy, cross-entropy and confidences from rows of float logits.
struct Tally {
  int64_t count = 0, correct = 0;
  double loss_sum = 0;
  std::vector<double> confidence;
  std::vector<uint8_t> hit;

  void add(const float* logits, int32_t classes, int64_t label) {
    int32_t best = 0;  // ties -> lowest index, as the runtime's argmax
    for (int32_t c = 1; c < classes; ++c)
      if (logits[c] > logits[best]) best = c;
    const double m = logits[best];
    double z = 0;
    for (int32_t c = 0; c < classes; ++c) z += std::exp(static_cast<double>(logits[c]) - m);
    loss_sum += m + std::log(z) - logits[label];
    confidence.push_back(1.0 / z);  // softmax of the top logit
    hit.push_back(best == label);
    correct += best == label;
    ++count;
  }
  ShiftResult result() const {
    ShiftResult r;
    r.count = count;
    r.accuracy = count ? double(correct) / double(count) : 0.0;
    r.loss = count ? loss_sum / double(count) : 0.0;
    r.ece = expected_calibration_error(confidence, hit);
    return r;
  }
};

}  // namespace

double expected_calibration_error(const std::vector<double>& confidence, const std::vector<uint8_t>& correct, int bins) {
  LOWBIT_CHECK(confidence.size() == correct.size(), "expected_calibration_error: sizes differ");
  LOWBIT_CHECK(bins >= 1, "expected_calibration_error: bins must be >= 1");
  if (confidence.empty()) return 0.0;
  std::vector<double> conf_sum(static_cast<size_t>(bins), 0.0), hits(static_cast<size_t>(bins), 0.0);
  std::vector<int64_t> n(static_cast<size_t>(bins), 0);
  for (size_t i = 0; i < confidence.size(); ++i) {
    const int b = std::min(bins - 1, static_cast<int>(confidence[i] * bins));
    conf_sum[b] += confidence[i];
    hits[b] += correct[i];
    ++n[b];
  }
  double ece = 0;
  for (int b = 0; b < bins; ++b)
    if (n[b] > 0) ece += std::abs(hits[b] - conf_sum[b]) / double(confidence.size());  // share * |acc - conf|
  return ece;
}

ShiftEvaluator checkpoint_evaluator(models::Net& net, int64_t batch_size) {
  return [&net, batch_size](const data::Dataset& d) {
    const bool was_training = net->is_training();
    net->eval();
    torch::NoGradGuard no_grad;
    Tally t;
    const int64_t n = d.size();
    for (int64_t start = 0; start < n; start += batch_size) {
      const int64_t b = std::min(batch_size, n - start);
      const torch::Tensor logits = net->forward(d.images.narrow(0, start, b)).to(torch::kFloat32).contiguous();
      const torch::Tensor labels = d.labels.narrow(0, start, b).contiguous();
      const int32_t classes = static_cast<int32_t>(logits.size(1));
      for (int64_t i = 0; i < b; ++i) t.add(logits.data_ptr<float>() + i * classes, classes, labels[i].item<int64_t>());
    }
    net->train(was_training);
    return t.result();
  };
}

ShiftEvaluator runtime_evaluator(runtime::Session& session, int64_t batch_size) {
  return [&session, batch_size](const data::Dataset& d) {
    const torch::Tensor images = d.images.contiguous().to(torch::kFloat32);
    const torch::Tensor labels = d.labels.contiguous().to(torch::kInt64);
    const int64_t n = d.size(), per_item = n ? images.numel() / n : 0;
    Tally t;
    for (int64_t start = 0; start < n; start += batch_size) {
      const int64_t b = std::min(batch_size, n - start);
      const runtime::RunResult out = session.run(images.data_ptr<float>() + start * per_item, b);
      for (int64_t i = 0; i < b; ++i)
        t.add(out.logits.data() + i * out.classes, out.classes, labels.data_ptr<int64_t>()[start + i]);
    }
    return t.result();
  };
}

RobustnessResult evaluate_robustness(const data::RawImages& split, const std::vector<std::string>& corruptions,
                                     const std::vector<int>& severities, uint64_t seed, const ShiftEvaluator& eval) {
  RobustnessResult r;
  r.clean = eval(data::to_dataset(split));
  r.clean.corruption = "clean";
  for (const std::string& name : corruptions)
    for (int s : severities) {
      data::RawImages shifted = split;
      data::corrupt_images(shifted.pixels.data(), shifted.count, 1, static_cast<int32_t>(shifted.rows),
                           static_cast<int32_t>(shifted.cols), name, s, seed);
      ShiftResult one = eval(data::to_dataset(shifted));
      one.corruption = name;
      one.severity = s;
      r.mean_corruption_accuracy += one.accuracy;
      r.mean_corruption_ece += one.ece;
      r.shifted.push_back(one);
    }
  if (!r.shifted.empty()) {
    r.mean_corruption_accuracy /= double(r.shifted.size());
    r.mean_corruption_ece /= double(r.shifted.size());
  }
  return r;
}

nlohmann::json RobustnessResult::to_json() const {
  auto one = [](const ShiftResult& s) {
    return nlohmann::json{{"corruption", s.corruption}, {"severity", s.severity}, {"count", s.count},
                          {"accuracy", s.accuracy}, {"loss", s.loss}, {"ece", s.ece}};
  };
  nlohmann::json j = {{"clean", one(clean)},
                      {"mean_corruption_accuracy", mean_corruption_accuracy},
                      {"mean_corruption_ece", mean_corruption_ece},
                      {"shifted", nlohmann::json::array()}};
  for (const ShiftResult& s : shifted) j["shifted"].push_back(one(s));
  return j;
}

std::string RobustnessResult::table() const {
  std::ostringstream out;
  std::vector<int> severities;
  for (const ShiftResult& s : shifted)
    if (std::find(severities.begin(), severities.end(), s.severity) == severities.end()) severities.push_back(s.severity);
  char cell[64];
  std::snprintf(cell, sizeof cell, "%-16s", "accuracy %");
  out << cell;
  for (int s : severities) {
    std::snprintf(cell, sizeof cell, " %7s", ("sev " + std::to_string(s)).c_str());
    out << cell;
  }
  out << "     mean  mean ECE\n";
  std::snprintf(cell, sizeof cell, "%-16s %7.2f  (ECE %.4f, loss %.4f)\n", "clean", 100 * clean.accuracy, clean.ece,
                clean.loss);
  out << cell;
  for (size_t i = 0; i < shifted.size();) {
    const std::string& name = shifted[i].corruption;
    std::snprintf(cell, sizeof cell, "%-16s", name.c_str());
    out << cell;
    double acc = 0, ece = 0;
    size_t k = 0;
    for (; i < shifted.size() && shifted[i].corruption == name; ++i, ++k) {
      std::snprintf(cell, sizeof cell, " %7.2f", 100 * shifted[i].accuracy);
      out << cell;
      acc += shifted[i].accuracy;
      ece += shifted[i].ece;
    }
    std::snprintf(cell, sizeof cell, "  %7.2f  %.4f\n", 100 * acc / double(k), ece / double(k));
    out << cell;
  }
  std::snprintf(cell, sizeof cell, "mean corruption accuracy %.2f%%, mean ECE %.4f\n", 100 * mean_corruption_accuracy,
                mean_corruption_ece);
  out << cell;
  return out.str();
}

}  // namespace lowbit::analysis
