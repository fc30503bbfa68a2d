// A model prepared once for one instruction set: validated against its resource limits, kernels
// chosen, weights packed, graph rewrites applied. A PreparedModel never changes after creation, so
// one of them can be shared by any number of Sessions on any threads: an inference server loads a
// model once and gives each worker thread its own Session (which holds only activation buffers and
// its thread pool). Sessions keep their PreparedModel alive (shared_ptr).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "runtime/cpu_features.h"
#include "runtime/model.h"

namespace lowbit::runtime {

class PreparedOp;
struct IsaKernels;

struct PrepareOptions {
  std::string isa;  // "", "ref", "avx2", "avx512vnni", "neon" or "neondot"; "" = LOWBIT_ISA or the best the CPU has
  // Per-item activation bytes and MACs the model may ask for (model.h; defaults from
  // LOWBIT_MAX_ACTIVATION_MB / LOWBIT_MAX_GMACS).
  ResourceLimits limits = default_resource_limits();
};

class PreparedModel {
 public:
  // Validates `model` and prepares its ops; errors name the model.
  static std::shared_ptr<const PreparedModel> create(Model model, const PrepareOptions& options = {});
  // Loads a .lbq file and prepares it; errors name the file.
  static std::shared_ptr<const PreparedModel> load(const std::string& path, const PrepareOptions& options = {});
  ~PreparedModel();
  PreparedModel(const PreparedModel&) = delete;  // prepared ops point into model_: never moved
  PreparedModel& operator=(const PreparedModel&) = delete;

  const Model& model() const { return model_; }
  Isa isa() const { return isa_; }
  const IsaKernels& kernels() const { return *kernels_; }
  // Per value: the input (0) and each op's output (op i writes value i + 1).
  const std::vector<ValueShape>& shapes() const { return shapes_; }
  // Values per item of the output layer (logits per item).
  int64_t classes() const { return shapes_.back().size(); }
  const std::vector<std::unique_ptr<PreparedOp>>& ops() const { return ops_; }
  // Whether op i runs (false when another op does its work or nobody reads its output).
  bool runs(size_t op) const { return runs_[op]; }
  // Buffer bytes a run needs: per workspace for `items` items, and per pool thread.
  int64_t workspace_bytes(int64_t items) const;
  int64_t per_thread_bytes() const { return per_thread_bytes_; }
  // One line per op, as Session::kernel_names() documents.
  std::vector<std::string> kernel_names() const;

 private:
  PreparedModel() = default;
  Model model_;
  std::vector<ValueShape> shapes_;
  std::vector<const ActQParams*> qparams_;  // per value (nullptr for the output layer's value)
  Isa isa_ = Isa::Ref;
  const IsaKernels* kernels_ = nullptr;
  std::vector<std::unique_ptr<PreparedOp>> ops_;
  std::vector<int32_t> absorbed_by_;  // per op: the op that does its work (a conv with a fused max pool), or -1
  std::vector<bool> runs_;
  int64_t per_thread_bytes_ = 0;
};

}  // namespace lowbit::runtime
