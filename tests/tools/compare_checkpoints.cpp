// compare_checkpoints A B TOL: loads two checkpoints of the same model and compares every
// parameter and buffer by name. A tensor passes when max |a - b| <= TOL * max(1, max |a|);
// integer and bool buffers must be equal. Prints the largest difference; exit 0 if all pass, 1
// otherwise. Used by tests/cli/distributed_test.sh (1 process vs 2 processes).
#include <cstdlib>
#include <iostream>
#include <map>

#include "qat/qat_run.h"
#include "train/checkpoint.h"

int main(int argc, char** argv) {
  if (argc != 4) {
    std::cerr << "usage: compare_checkpoints A B TOL\n";
    return 2;
  }
  try {
    lowbit::qat::register_checkpoint_hook();  // QAT checkpoints rebuild their quantizers
    auto a = lowbit::train::load_net(argv[1]);
    auto b = lowbit::train::load_net(argv[2]);
    const double tol = std::atof(argv[3]);
    std::map<std::string, torch::Tensor> ta, tb;
    for (const auto& kv : a->named_parameters()) ta[kv.key()] = kv.value();
    for (const auto& kv : a->named_buffers()) ta[kv.key()] = kv.value();
    for (const auto& kv : b->named_parameters()) tb[kv.key()] = kv.value();
    for (const auto& kv : b->named_buffers()) tb[kv.key()] = kv.value();
    if (ta.size() != tb.size()) {
      std::cerr << "different tensor counts: " << ta.size() << " vs " << tb.size() << "\n";
      return 1;
    }
    bool ok = true;
    double worst = 0.0;
    std::string worst_name;
    for (const auto& [name, x] : ta) {
      auto it = tb.find(name);
      if (it == tb.end() || !x.sizes().equals(it->second.sizes())) {
        std::cerr << name << ": missing or shape differs\n";
        ok = false;
        continue;
      }
      const auto& y = it->second;
      if (!x.is_floating_point()) {
        if (!x.equal(y)) {
          std::cerr << name << ": integer values differ\n";
          ok = false;
        }
        continue;
      }
      if (x.numel() == 0) continue;
      const double diff = (x.to(torch::kFloat64) - y.to(torch::kFloat64)).abs().max().item<double>();
      const double ref = std::max(1.0, x.abs().max().item<double>());
      if (diff / ref > worst) {
        worst = diff / ref;
        worst_name = name;
      }
      if (diff > tol * ref) {
        std::cerr << name << ": max |a - b| = " << diff << " > " << tol << " * " << ref << "\n";
        ok = false;
      }
    }
    std::cout << "tensors " << ta.size() << ", largest relative difference " << worst << " (" << worst_name << ")\n";
    return ok ? 0 : 1;
  } catch (const std::exception& e) {
    std::cerr << "compare_checkpoints: " << e.what() << "\n";
    return 1;
  }
}
