#include "train/data_fit.h"

#include <algorithm>

#include "base/error.h"
#include "data/idx_file.h"
#include "data/load_dataset.h"

namespace lowbit::train {

void check_model_fits_data(models::Net& net, const data::Dataset& data, const std::string& spec) {
  if (data.size() == 0) return;
  const std::string name = spec.empty() ? data::default_data_dir() : spec;
  const std::string shape = data::example_shape_string(data);
  torch::Tensor out;
  {
    const bool was_training = net->is_training();
    torch::NoGradGuard no_grad;
    net->eval();
    try {
      out = net->forward(data.images.narrow(0, 0, std::min<int64_t>(2, data.size())));
    } catch (const std::exception& e) {
      if (was_training) net->train();
      std::string why = e.what();
      why = why.substr(0, why.find('\n'));  // LibTorch appends a stack trace
      throw Error("data '" + name + "' has examples of shape " + shape + " but model '" + net->model_name() +
                  "' does not accept them (the zoo models take [1, 28, 28] images; resize the data or choose "
                  "another model): " + why);
    }
    if (was_training) net->train();
  }
  LOWBIT_CHECK(out.dim() == 2, "model '" + net->model_name() + "' gives outputs of " + std::to_string(out.dim()) +
                                   " dimensions on data '" + name + "'; expected [batch, classes]");
  const int64_t outputs = out.size(1);
  const int64_t classes = data::num_classes(data);
  LOWBIT_CHECK(classes <= outputs, "data '" + name + "' has label " + std::to_string(classes - 1) + " but model '" +
                                       net->model_name() + "' has " + std::to_string(outputs) +
                                       " outputs (classes 0.." + std::to_string(outputs - 1) +
                                       "); use a data set with at most " + std::to_string(outputs) + " classes");
}

}  // namespace lowbit::train
