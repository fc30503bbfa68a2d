#include "convert/agreement.h"

#include <cmath>

#include "base/error.h"
#include "convert/integer_simulation.h"
#include "data/load_dataset.h"

namespace lowbit::convert {

RuntimeEval evaluate_runtime(runtime::Session& session, const data::Dataset& data, int64_t batch) {
  const torch::Tensor images = data.images.contiguous().to(torch::kFloat32);
  const torch::Tensor labels = data.labels.contiguous().to(torch::kInt64);
  const int64_t n = data.size();
  const int64_t per_item = images.numel() / std::max<int64_t>(n, 1);
  const runtime::Model& m = session.model();
  LOWBIT_CHECK(n == 0 || per_item == int64_t{m.in_channels} * m.in_height * m.in_width,
               "the data's images have shape " + data::example_shape_string(data) + " but the integer model takes [" +
                   std::to_string(m.in_channels) + ", " + std::to_string(m.in_height) + ", " +
                   std::to_string(m.in_width) + "]");
  const float* x = images.data_ptr<float>();
  const int64_t* y = labels.data_ptr<int64_t>();
  RuntimeEval r;
  r.count = n;
  int64_t correct = 0;
  double loss_sum = 0.0;
  for (int64_t start = 0; start < n; start += batch) {
    const int64_t b = std::min(batch, n - start);
    const runtime::RunResult out = session.run(x + start * per_item, b);
    r.int_logits.insert(r.int_logits.end(), out.int_logits.begin(), out.int_logits.end());
    for (int64_t i = 0; i < b; ++i) {
      const int32_t pred = out.argmax[static_cast<size_t>(i)];
      r.predictions.push_back(pred);
      correct += pred == y[start + i];
      // cross-entropy of the float logits, with the usual max shift for stability
      const float* l = out.logits.data() + i * out.classes;
      double m = l[0];
      for (int32_t c = 1; c < out.classes; ++c) m = std::max(m, static_cast<double>(l[c]));
      double z = 0.0;
      for (int32_t c = 0; c < out.classes; ++c) z += std::exp(static_cast<double>(l[c]) - m);
      loss_sum += m + std::log(z) - l[y[start + i]];
    }
  }
  r.accuracy = n ? static_cast<double>(correct) / static_cast<double>(n) : 0.0;
  r.loss = n ? loss_sum / static_cast<double>(n) : 0.0;
  return r;
}

Agreement compare_with_simulation(const runtime::Model& model, const RuntimeEval& runtime_eval,
                                  const data::Dataset& data, const torch::Tensor& fake_quant_predictions) {
  LOWBIT_CHECK(runtime_eval.count == data.size(), "agreement: runtime results and data set differ in size");
  Agreement a;
  a.count = data.size();
  const int64_t classes = a.count ? static_cast<int64_t>(runtime_eval.int_logits.size()) / a.count : 0;
  const int64_t chunk = 1000;
  for (int64_t start = 0; start < a.count; start += chunk) {
    const int64_t b = std::min(chunk, a.count - start);
    const IntegerOutputs sim = simulate_integer(model, data.images.narrow(0, start, b));
    const torch::Tensor sim_logits = sim.int_logits.contiguous();
    const int64_t* s = sim_logits.data_ptr<int64_t>();
    const torch::Tensor sim_pred = sim.predictions.contiguous();
    for (int64_t i = 0; i < b; ++i) {
      bool equal = true;
      for (int64_t c = 0; c < classes; ++c)
        equal &= s[i * classes + c] == runtime_eval.int_logits[static_cast<size_t>((start + i) * classes + c)];
      a.int_logits_equal += equal;
      a.predictions_equal += sim_pred[i].item<int64_t>() == runtime_eval.predictions[static_cast<size_t>(start + i)];
    }
  }
  if (fake_quant_predictions.defined()) {
    const torch::Tensor p = fake_quant_predictions.contiguous().to(torch::kInt64);
    int64_t same = 0;
    for (int64_t i = 0; i < a.count; ++i) same += p[i].item<int64_t>() == runtime_eval.predictions[static_cast<size_t>(i)];
    a.fake_quant_predictions_equal = same;
  }
  return a;
}

}  // namespace lowbit::convert
