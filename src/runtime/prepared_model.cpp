#include "runtime/prepared_model.h"

#include <algorithm>

#include "base/error.h"
#include "runtime/kernels/isa_kernels.h"
#include "runtime/model_file.h"
#include "runtime/ops/prepared_op.h"

namespace lowbit::runtime {

std::shared_ptr<const PreparedModel> PreparedModel::create(Model model, const PrepareOptions& options) {
  std::shared_ptr<PreparedModel> p(new PreparedModel());
  PreparedModel& s = *p;
  const std::string where = model.name.empty() ? "model" : "model '" + model.name + "'";
  s.shapes_ = validate_model(model, where);
  check_resource_limits(model, s.shapes_, options.limits, where);
  s.model_ = std::move(model);
  s.qparams_.push_back(&s.model_.input);
  for (const Op& op : s.model_.ops) s.qparams_.push_back(op.output_layer ? nullptr : &op.out);
  if (options.isa.empty()) {
    s.isa_ = select_isa();
  } else {
    s.isa_ = parse_isa(options.isa);
    require_isa(s.isa_);
  }
  s.kernels_ = &isa_kernels(s.isa_);
  const OpGraph graph{s.model_, s.shapes_, s.qparams_, s.isa_, *s.kernels_};
  const int32_t n_ops = static_cast<int32_t>(s.model_.ops.size());
  for (int32_t i = 0; i < n_ops; ++i) s.ops_.push_back(create_op(graph, i));
  // Graph rewrites the ops asked for: absorbed ops do not run, nor elidable ones nobody reads.
  s.absorbed_by_.assign(s.ops_.size(), -1);
  for (int32_t i = 0; i < n_ops; ++i)
    if (s.ops_[i]->absorbed_op() >= 0) s.absorbed_by_[s.ops_[i]->absorbed_op()] = i;
  s.runs_.assign(s.ops_.size(), true);
  for (int32_t i = 0; i < n_ops; ++i) {
    if (s.absorbed_by_[i] >= 0) {
      s.runs_[i] = false;
    } else if (s.ops_[i]->elidable()) {
      bool read = false;
      for (int32_t j = 0; j < n_ops; ++j) {
        const std::vector<int32_t> in = s.ops_[j]->reads();
        read |= s.absorbed_by_[j] < 0 && std::find(in.begin(), in.end(), i + 1) != in.end();
      }
      s.runs_[i] = read;
    }
  }
  for (const auto& op : s.ops_) s.per_thread_bytes_ = std::max(s.per_thread_bytes_, op->buffers(1).per_thread);
  return p;
}

std::shared_ptr<const PreparedModel> PreparedModel::load(const std::string& path, const PrepareOptions& options) {
  Model m = load_model(path);
  check_resource_limits(m, validate_model(m, path), options.limits, path);  // names the file, not the model
  return create(std::move(m), options);
}

PreparedModel::~PreparedModel() = default;

int64_t PreparedModel::workspace_bytes(int64_t items) const {
  int64_t bytes = 0;
  for (const auto& op : ops_) bytes = std::max(bytes, op->buffers(items).workspace);
  return bytes;
}

std::vector<std::string> PreparedModel::kernel_names() const {
  std::vector<std::string> names;
  for (size_t i = 0; i < ops_.size(); ++i) {
    const PreparedOp& op = *ops_[i];
    const std::string kernel = absorbed_by_[i] >= 0 ? ops_[absorbed_by_[i]]->absorbed_note()
                               : !runs_[i]          ? op.elided_note()
                                                    : op.kernel_name();
    names.push_back(std::string(op_kind_name(op.op().kind)) + ": " + kernel);
  }
  return names;
}

}  // namespace lowbit::runtime
