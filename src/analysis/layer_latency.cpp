#include "analysis/layer_latency.h"
#include "data/load_dataset.h"
#include "data/run_data_layout.h"

#include <ostream>

#include "base/error.h"
#include "convert/to_runtime.h"
#include "data/fashion_mnist.h"
#include "ptq/ptq_run.h"
#include "runtime/model_tools.h"
#include "runtime/session.h"
#include "train/checkpoint.h"

namespace lowbit::analysis {

LatencyTable measure_layer_latency(const std::string& checkpoint, const LatencyOptions& o) {
  LOWBIT_CHECK(!o.container_bits.empty(), "layer latency: no widths to measure");
  LOWBIT_CHECK(o.batch >= 1 && o.threads >= 1 && o.iterations >= 1, "layer latency: batch, threads and iterations must be >= 1");
  const train::CheckpointInfo info = train::load_checkpoint(checkpoint);
  const auto split = data::split_train_validation(data::load_dataset(data::resolve_data_dir(o.data_dir), "train",
                                                                      data::run_data_layout(o.layout, info.config)),
                                                   5000);
  LatencyTable t;
  t.batch = o.batch;
  t.threads = o.threads;
  for (int bits : o.container_bits) {
    LOWBIT_CHECK(bits == 8 || bits == 4 || bits == 2 || bits == 1,
                 "layer latency: container width " + std::to_string(bits) + " is not 8, 4, 2 or 1");
    qat::QatConfig config = ptq::ptq_config(bits == 1 ? 8 : bits, 8, o.calib_batches);
    if (bits == 1) config.defaults.weight_format = "binary";
    ptq::PtqOptions ptq_options;  // round-to-nearest
    models::Net net = ptq::quantize_checkpoint(info.path, config, split.train, o.calib_batches, o.calib_batch_size, ptq_options);
    std::vector<convert::ConvertedOp> record;
    runtime::Model model = convert::to_runtime_model(net, info.model_name + " latency probe", &record);
    runtime::SessionOptions so;
    so.threads = o.threads;
    so.isa = o.isa;
    so.profile = true;
    runtime::Session session(std::move(model), so);
    const runtime::ProfileResult p = runtime::profile_model(session, o.batch, o.iterations);
    t.isa = p.isa;
    double fixed = p.io_ms;
    for (size_t k = 0; k < p.ops.size(); ++k) {
      const runtime::Op& op = session.model().ops[k];
      const bool weight_layer = op.kind == runtime::OpKind::Conv2d || op.kind == runtime::OpKind::Linear;
      if (weight_layer && k < record.size())
        t.layer_ms[record[k].node][bits] = p.ops[k].median_ms;
      else
        fixed += p.ops[k].median_ms;
    }
    if (bits == 8 || t.fixed_ms == 0.0) t.fixed_ms = fixed;
    if (o.log) *o.log << "layer latency: " << bits << "-bit weights, " << p.total_ms << " ms per batch of " << o.batch << " (" << p.isa << ")\n";
  }
  return t;
}

}  // namespace lowbit::analysis
