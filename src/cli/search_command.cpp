// `lowbit search mixed`: a width per layer under a budget, from a sensitivity table
// (analysis/bit_allocation.h, docs/mixed_precision.md).
#include <filesystem>
#include <iostream>
#include <memory>

#include "analysis/bit_allocation.h"
#include "analysis/layer_latency.h"
#include "base/atomic_file.h"
#include "base/error.h"
#include "cli/commands.h"
#include "cli/data_flags.h"
#include "qat/qat_run.h"
#include "report/report.h"
#include "train/checkpoint.h"
#include "train/compute_threads.h"

namespace lowbit::cli {
namespace {

namespace fs = std::filesystem;

struct SearchArgs {
  std::string from, out, base_config, data_dir, latency_table, layout = "auto";
  std::optional<double> budget_bits, budget_bytes, budget_bops, budget_latency_ms;
  analysis::MixedSearchOptions search;
  std::vector<std::string> pins;
  analysis::SensitivityOptions sensitivity;  // when --from is an FP32 run
  analysis::LatencyOptions latency;
  int pareto = 0;
  int64_t qat_epochs = 1, qat_max_steps = 0, threads = 2;
  double qat_lr = 5e-4;
  bool overwrite = false;
};

// --from: a sensitivity.json, a folder holding one, or an FP32 checkpoint / run folder (the
// table is then measured first and written into --out).
analysis::SensitivityReport sensitivity_table(SearchArgs& a) {
  const fs::path from(a.from);
  if (fs::is_regular_file(from) && from.extension() == ".json") return analysis::SensitivityReport::from_file(a.from);
  if (fs::is_directory(from) && fs::is_regular_file(from / "sensitivity.json"))
    return analysis::SensitivityReport::from_file((from / "sensitivity.json").string());
  LOWBIT_CHECK(fs::exists(from), "--from '" + a.from + "' does not exist: give a sensitivity.json (lowbit analyze "
                                 "sensitivity), a folder holding one, or an FP32 run folder");
  std::cerr << "search: no sensitivity.json in '" << a.from << "'; measuring it (lowbit analyze sensitivity defaults)\n";
  a.sensitivity.checkpoint = a.from;
  a.sensitivity.data_dir = a.data_dir;
  a.sensitivity.layout = a.layout;
  a.sensitivity.log = &std::cerr;
  if (!a.search.weight_widths.empty()) a.sensitivity.weight_widths = a.search.weight_widths;
  bool has8 = false;
  for (const auto& w : a.sensitivity.weight_widths) has8 = has8 || w == "8";
  if (!has8) a.sensitivity.weight_widths.insert(a.sensitivity.weight_widths.begin(), "8");
  for (int b : a.search.act_bits)
    if (b != 8) a.sensitivity.act_bits.push_back(b);
  analysis::SensitivityReport t = analysis::analyze_sensitivity(a.sensitivity);
  analysis::write_sensitivity_files(t, a.out);
  std::cout << t.table();
  return t;
}

void run_search(SearchArgs& a) {
  lowbit::train::set_compute_threads(static_cast<int>(a.threads));
  int given = 0;
  for (auto* b : {&a.budget_bits, &a.budget_bytes, &a.budget_bops, &a.budget_latency_ms})
    if (b->has_value()) ++given;
  LOWBIT_CHECK(given == 1, "give exactly one budget: --budget-bits, --budget-bytes, --budget-bops or --budget-latency-ms");
  if (a.budget_bits) a.search.kind = analysis::BudgetKind::Bits, a.search.budget = *a.budget_bits;
  if (a.budget_bytes) a.search.kind = analysis::BudgetKind::Bytes, a.search.budget = *a.budget_bytes;
  if (a.budget_bops) a.search.kind = analysis::BudgetKind::Bops, a.search.budget = *a.budget_bops;
  if (a.budget_latency_ms) a.search.kind = analysis::BudgetKind::LatencyMs, a.search.budget = *a.budget_latency_ms;
  LOWBIT_CHECK(a.search.budget > 0, "the budget must be > 0 (got " + std::to_string(a.search.budget) + ")");
  for (const auto& p : a.pins) a.search.pin_8bit.push_back(p);
  const qat::QatConfig base =
      a.base_config.empty() ? qat::config_from_flags(qat::QatFlags{}) : qat::QatConfig::from_file(a.base_config);

  fs::create_directories(a.out);
  const analysis::SensitivityReport table = sensitivity_table(a);
  analysis::LatencyTable latency;
  if (a.search.kind == analysis::BudgetKind::LatencyMs) {
    a.latency.data_dir = a.data_dir;
    a.latency.layout = a.layout;
    a.latency.log = &std::cerr;
    latency = a.latency_table.empty() ? analysis::measure_layer_latency(table.checkpoint, a.latency)
                                      : analysis::LatencyTable::from_file(a.latency_table);
    write_file_atomically(a.out + "/latency.json", latency.to_json().dump(2) + "\n");
    a.search.latency = &latency;
  }
  analysis::MixedSearchResult r = analysis::search_mixed_precision(table, a.search);
  std::cout << r.table();
  if (r.choice) {
    write_file_atomically(a.out + "/qat_config.json", analysis::mixed_qat_config(*r.choice, base).to_json().dump(2) + "\n");
  }

  // --pareto K: short QAT of K points spread over the front, from the FP32 checkpoint.
  if (a.pareto > 0 && !r.front.empty()) {
    const size_t k = std::min(static_cast<size_t>(a.pareto), r.front.size());
    for (size_t i = 0; i < k; ++i) {
      const size_t idx = k == 1 ? r.front.size() - 1 : i * (r.front.size() - 1) / (k - 1);
      train::TrainConfig c;
      c.epochs = a.qat_epochs;
      c.lr = a.qat_lr;
      c.weight_decay = 0.0;
      c.threads = a.threads;
      c.data_dir = a.data_dir;
      c.max_steps_per_epoch = a.qat_max_steps;
      c.out_dir = a.out + "/pareto_" + std::to_string(idx);
      qat::QatRunOptions ro;
      ro.from = table.checkpoint;
      ro.overwrite = a.overwrite;
      ro.log = &std::cerr;
      std::cerr << "search: QAT of front point " << idx << " (" << r.front[idx].bits_per_param << " bits/weight) into "
                << c.out_dir << "\n";
      const train::TrainResult tr = qat::run_qat(c, analysis::mixed_qat_config(r.front[idx], base), ro);
      analysis::ParetoQatPoint p;
      p.point = idx;
      p.run = c.out_dir;
      if (tr.test) {
        p.accuracy = tr.test->accuracy;
        p.loss = tr.test->loss;
      }
      r.pareto_qat.push_back(p);
      std::cout << "front point " << idx << ": " << r.front[idx].bits_per_param << " bits/weight, predicted loss +"
                << r.front[idx].predicted_delta_loss << ", QAT test accuracy " << 100.0 * p.accuracy << "%\n";
    }
  }
  write_file_atomically(a.out + "/mixed_search.json", r.to_json().dump(2) + "\n");
  std::vector<std::string> report_inputs{a.out};
  for (const auto& q : r.pareto_qat) report_inputs.push_back(q.run);  // their training curves
  report::write_report(report_inputs, a.out + "/report.html");
  std::cout << "wrote " << a.out << "/mixed_search.json" << (r.choice ? ", qat_config.json" : "")
            << (a.search.latency ? ", latency.json" : "") << ", report.html\n";
  LOWBIT_CHECK(r.choice.has_value(), "no width assignment fits the budget " + std::to_string(a.search.budget) + " (" +
                                         analysis::to_string(a.search.kind) + "); the cheapest costs " +
                                         (r.front.empty() ? std::string("?") : std::to_string(r.front.front().cost(a.search.kind))));
}

}  // namespace

void add_search_command(CLI::App& app) {
  CLI::App* search = app.add_subcommand("search", "Searches: mixed precision under a budget");
  search->require_subcommand(1);
  auto a = std::make_shared<SearchArgs>();
  CLI::App* mixed = search->add_subcommand(
      "mixed", "A weight (and activation) width per layer that minimises the predicted loss increase under a budget; "
               "writes the QAT config (docs/mixed_precision.md)");
  mixed->add_option("--from", a->from, "sensitivity.json, a folder holding one, or an FP32 run (then measured first)")->required();
  mixed->add_option("--out", a->out, "Output folder: mixed_search.json, qat_config.json (+ sensitivity.json, latency.json)")->required();
  mixed->add_option("--budget-bits", a->budget_bits, "Average weight bits per weight (nominal: ternary counts log2 3)");
  mixed->add_option("--budget-bytes", a->budget_bytes, "Weight bytes: packed codes in runtime containers + 8 per output channel");
  mixed->add_option("--budget-bops", a->budget_bops, "Bit operations per image: MACs x weight bits x activation bits");
  mixed->add_option("--budget-latency-ms", a->budget_latency_ms,
                    "Runtime latency per batch, from per-layer times measured on this machine (see --latency-*)");
  mixed->add_option("--wbits", a->search.weight_widths, "Candidate weight widths (default: all in the table), e.g. 8,4,3,2,ternary")
      ->delimiter(',');
  mixed->add_option("--abits", a->search.act_bits, "Candidate activation widths (non-8 widths need activation entries)")
      ->delimiter(',')->capture_default_str();
  mixed->add_option("--objective", a->search.objective, "loss (measured loss increase) or hawq (trace / n x ||Q(W)-W||^2)")
      ->check(CLI::IsMember({"loss", "hawq"}))->capture_default_str();
  mixed->add_option("--pin", a->pins, "Layers (globs) kept at W8A8, e.g. conv1,fc")->delimiter(',');
  mixed->add_option("--base-config", a->base_config, "QAT config JSON whose other settings the written config keeps");
  mixed->add_option("--front-points", a->search.front_points, "Points of the Pareto front kept in the output")->capture_default_str();
  mixed->add_option("--latency-table", a->latency_table,
                    "Latency budget: a latency.json measured before (same machine), instead of measuring again");
  mixed->add_option("--latency-batch", a->latency.batch, "Latency budget: batch size measured")->capture_default_str();
  mixed->add_option("--latency-threads", a->latency.threads, "Latency budget: runtime threads")->capture_default_str();
  mixed->add_option("--latency-iterations", a->latency.iterations, "Latency budget: timed runs per width")->capture_default_str();
  mixed->add_option("--isa", a->latency.isa, "Latency budget: kernel level (default: LOWBIT_ISA or the best the CPU has)");
  mixed->add_option("--pareto", a->pareto, "Short QAT of this many points spread over the front (0: none)")->capture_default_str();
  mixed->add_option("--qat-epochs", a->qat_epochs, "--pareto: QAT epochs per point")->capture_default_str();
  mixed->add_option("--qat-max-steps", a->qat_max_steps, "--pareto: steps per epoch (0: whole epoch)")->capture_default_str();
  mixed->add_option("--qat-lr", a->qat_lr, "--pareto: QAT learning rate")->capture_default_str();
  mixed->add_flag("--overwrite", a->overwrite, "--pareto: replace existing QAT runs in --out");
  add_data_and_layout_flags(mixed, a->data_dir, a->layout);
  mixed->add_option("--threads", a->threads, "CPU threads for torch")->capture_default_str();
  mixed->callback([a] { run_search(*a); });
}

}  // namespace lowbit::cli
