// Precompiled header for the LibTorch side. Narrow on purpose: tensors, autograd,
// nn modules and optimizers; no torch/torch.h umbrella (data loaders, jit, serialization
// internals), which costs several seconds more per translation unit.
#pragma once
#include <ATen/ATen.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/functional.h>
#include <torch/optim/adamw.h>
#include <torch/optim/sgd.h>
#include <torch/autograd.h>
#include <torch/serialize.h>
