#include "ptq/calibration.h"

#include "base/error.h"
#include "qat/fake_quantize_module.h"

namespace lowbit::ptq {

std::vector<torch::Tensor> calibration_batches(const data::Dataset& data, int64_t batches, int64_t batch_size) {
  LOWBIT_CHECK(batches >= 1 && batch_size >= 1, "calibration needs at least one batch of at least one image (got " +
                                                     std::to_string(batches) + " x " + std::to_string(batch_size) + ")");
  LOWBIT_CHECK(data.size() >= batches * batch_size,
               "calibration: " + std::to_string(batches) + " batches of " + std::to_string(batch_size) + " need " +
                   std::to_string(batches * batch_size) + " images, the data has " + std::to_string(data.size()));
  std::vector<torch::Tensor> out;
  for (int64_t b = 0; b < batches; ++b) out.push_back(data.images.narrow(0, b * batch_size, batch_size));
  return out;
}

std::vector<torch::Tensor> text_calibration_batches(const torch::Tensor& train_bytes, int64_t batches,
                                                    int64_t batch_size, int64_t context, uint64_t seed) {
  LOWBIT_CHECK(batches >= 1 && batch_size >= 1, "calibration needs at least one batch of at least one window (got " +
                                                     std::to_string(batches) + " x " + std::to_string(batch_size) + ")");
  at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(seed);
  std::vector<torch::Tensor> out;
  for (int64_t b = 0; b < batches; ++b) out.push_back(data::random_windows(train_bytes, batch_size, context, generator));
  return out;
}

namespace {
bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}
}  // namespace

void calibrate_activations(models::Net& net, const std::vector<torch::Tensor>& batches) {
  torch::NoGradGuard no_grad;
  net->eval();
  std::vector<std::shared_ptr<qat::FakeQuantizeImpl>> outputs;
  for (const auto& item : net->named_modules()) {
    auto fq = std::dynamic_pointer_cast<qat::FakeQuantizeImpl>(item.value());
    if (!fq) continue;
    if (ends_with(item.key(), "weight_quantizer")) {
      fq->set_enabled(false);
      fq->set_observing(false);
    } else if (ends_with(item.key(), "output_quantizer")) {
      fq->train();  // observers update only in training mode; the layers stay in eval
      outputs.push_back(fq);
    }
  }
  for (const auto& b : batches) net->forward(b);
  for (const auto& fq : outputs) {
    fq->eval();
    fq->observer().freeze();
    fq->set_observing(false);
  }
}

}  // namespace lowbit::ptq
