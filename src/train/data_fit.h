// Checks that a data set suits a model before any training or evaluation starts: the zoo models
// have fixed input shapes and output counts, and a mismatch deep inside a forward pass would
// otherwise surface as LibTorch's shape noise.
#pragma once
#include <string>

#include "data/fashion_mnist.h"
#include "models/net.h"

namespace lowbit::train {

// Runs the model on the first examples of `data` (eval mode, no gradients, mode restored) and
// throws lowbit::Error "data '<spec>' has examples of shape [3, 32, 32] but model 'cnn' ..."
// when it rejects them, or when a label is not below the model's number of outputs.
void check_model_fits_data(models::Net& net, const data::Dataset& data, const std::string& spec);

}  // namespace lowbit::train
