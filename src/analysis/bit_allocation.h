// Mixed precision under a budget (`lowbit search mixed`, docs/mixed_precision.md).
//
// The problem, as HAWQ-v3 poses it: choose one option (weight width, activation width) per layer
// to minimise the predicted loss increase sum_L penalty(L, option) subject to
// sum_L cost(L, option) <= budget, where the penalty comes from the per-layer sensitivity table
// (analysis/sensitivity.h) and the cost is model bytes, weight bits, BOPs or measured latency.
// That is a multiple-choice knapsack; it is solved exactly by merging Pareto fronts layer by
// layer: after layer k the set holds every (cost, penalty) of the first k layers that no other
// assignment beats in both (dominated partial assignments can never complete to an optimum,
// since the remaining layers add the same amounts to either). The final front is the whole
// accuracy-vs-budget trade-off; the answer is its cheapest point of least penalty under the budget.
#pragma once
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "analysis/sensitivity.h"
#include "qat/qat_config.h"

namespace lowbit::analysis {

// ---- The exact solver (no knowledge of what costs and penalties mean) ----------------------
struct AllocationOption {
  double cost = 0.0;
  double penalty = 0.0;
};
struct Allocation {
  std::vector<int> choice;  // option index per layer
  double cost = 0.0, penalty = 0.0;
};
// Every Pareto-optimal assignment with cost <= max_cost, by ascending cost (and strictly
// descending penalty). Throws if a layer has no option.
std::vector<Allocation> pareto_front(const std::vector<std::vector<AllocationOption>>& layers,
                                     double max_cost = std::numeric_limits<double>::infinity());
// The assignment of least penalty with cost <= budget (the cheapest such), or nullopt if none fits.
std::optional<Allocation> best_allocation(const std::vector<std::vector<AllocationOption>>& layers, double budget);

// ---- The search over a sensitivity table ----------------------------------------------------
enum class BudgetKind { Bits, Bytes, Bops, LatencyMs };
BudgetKind budget_kind_from_string(const std::string& name);  // "bits" | "bytes" | "bops" | "latency_ms"
std::string to_string(BudgetKind kind);

// Per-layer latency of the integer runtime by container width, measured (sensitivity.h's
// measure_layer_latency) on one machine.
struct LatencyTable {
  std::map<std::string, std::map<int, double>> layer_ms;  // node -> container bits -> ms per batch
  double fixed_ms = 0.0;  // everything else (pools, adds, input and output stages), at 8 bits
  int64_t batch = 1;
  int threads = 1;
  std::string isa;
  nlohmann::json to_json() const;
  static LatencyTable from_file(const std::string& path);  // a latency.json; errors name the file and key
};

struct MixedSearchOptions {
  BudgetKind kind = BudgetKind::Bits;
  double budget = 0.0;  // bits: average weight bits per weight; bytes; BOPs per image; ms per batch
  std::vector<std::string> weight_widths;  // candidates (subset of the table's); empty: all measured
  std::vector<int> act_bits{8};            // candidates; widths other than 8 need the table's activation entries
  std::string objective = "loss";          // "loss": measured loss increase; "hawq": trace / n * ||Q(W) - W||^2
  std::vector<std::string> pin_8bit;       // globs of layers kept at W8A8 (e.g. the first and last)
  const LatencyTable* latency = nullptr;   // required for BudgetKind::LatencyMs
  size_t front_points = 60;                // at most this many points of the front are kept in the result
};

struct LayerChoice {
  std::string name;
  WeightWidth weight;
  int act_bits = 8;
};

struct MixedPoint {
  std::string label;
  std::vector<LayerChoice> layers;
  double bits_per_param = 0.0;  // nominal weight bits per weight (ternary log2 3)
  double bytes = 0.0;           // packed weight codes in runtime containers + 8 bytes per output channel
  double bops = 0.0;            // per image: sum MACs x container weight bits x activation bits
  double latency_ms = std::numeric_limits<double>::quiet_NaN();  // with a latency table
  double predicted_delta_loss = 0.0;                             // the objective's sum
  double cost(BudgetKind kind) const;
  nlohmann::json to_json() const;
};

// A point of the front trained by short QAT (`lowbit search mixed --pareto K`).
struct ParetoQatPoint {
  size_t point = 0;          // index into MixedSearchResult::front
  std::string run;           // the QAT run folder
  double accuracy = 0.0;     // test accuracy after QAT (fake-quantized evaluation)
  double loss = 0.0;         // test loss
};

struct MixedSearchResult {
  std::string from;  // the sensitivity table's checkpoint
  std::string model;
  MixedSearchOptions options;
  std::optional<MixedPoint> choice;  // absent when no assignment fits the budget
  std::vector<MixedPoint> uniform;   // every candidate weight width (and activation width) for all layers
  std::vector<MixedPoint> front;     // thinned to options.front_points
  size_t front_size = 0;             // before thinning
  std::vector<ParetoQatPoint> pareto_qat;
  nlohmann::json layers = nlohmann::json::array();  // per table layer: name, params (weights), macs
  double seconds = 0.0;
  nlohmann::json to_json() const;    // the mixed_search.json schema
  std::string table() const;
};

MixedSearchResult search_mixed_precision(const SensitivityReport& table, const MixedSearchOptions& options);

// The QAT config of a point: `base`'s defaults (the widths of its defaults are replaced by 8-bit
// weights and activations) plus one override per layer with its widths, exact node names as
// patterns. `lowbit qat --config` takes it as it is.
qat::QatConfig mixed_qat_config(const MixedPoint& point, const qat::QatConfig& base);

}  // namespace lowbit::analysis
