// The mixed-precision search (analysis/bit_allocation.h): the Pareto-merge solver against
// exhaustive enumeration on random instances, and the search over a synthetic sensitivity table
// (costs in every unit, pinned layers, the additive activation term, the QAT config it writes).
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "analysis/bit_allocation.h"
#include "base/error.h"

namespace lowbit::analysis {
namespace {

using Problem = std::vector<std::vector<AllocationOption>>;

Problem random_problem(std::mt19937& rng, size_t layers, size_t options, bool integer_costs) {
  std::uniform_real_distribution<double> u(0.0, 10.0);
  std::uniform_int_distribution<int> ui(1, 6);
  Problem p(layers);
  for (auto& l : p)
    for (size_t o = 0; o < options; ++o)
      l.push_back({integer_costs ? static_cast<double>(ui(rng)) : u(rng), integer_costs ? static_cast<double>(ui(rng)) : u(rng)});
  return p;
}

// Least penalty (then least cost) under the budget by trying every assignment.
std::optional<std::pair<double, double>> brute_force(const Problem& p, double budget) {
  std::vector<size_t> idx(p.size(), 0);
  std::optional<std::pair<double, double>> best;  // (penalty, cost)
  while (true) {
    double c = 0, pen = 0;
    for (size_t l = 0; l < p.size(); ++l) c += p[l][idx[l]].cost, pen += p[l][idx[l]].penalty;
    if (c <= budget && (!best || pen < best->first || (pen == best->first && c < best->second))) best = {{pen, c}};
    size_t l = 0;
    while (l < p.size() && ++idx[l] == p[l].size()) idx[l++] = 0;
    if (l == p.size()) break;
  }
  return best;
}

TEST(BitAllocation, SolverMatchesExhaustiveSearch) {
  std::mt19937 rng(7);
  for (int trial = 0; trial < 60; ++trial) {
    const bool integer = trial % 2 == 0;  // integer costs and penalties: many ties
    const Problem p = random_problem(rng, 2 + trial % 5, 2 + trial % 4, integer);
    double max_cost = 0;
    for (const auto& l : p) {
      double m = 0;
      for (const auto& o : l) m = std::max(m, o.cost);
      max_cost += m;
    }
    for (double frac : {0.2, 0.45, 0.7, 1.0}) {
      const double budget = std::round(frac * max_cost * 4) / 4;
      const auto want = brute_force(p, budget);
      const auto got = best_allocation(p, budget);
      ASSERT_EQ(want.has_value(), got.has_value()) << "trial " << trial << " budget " << budget;
      if (!want) continue;
      // Sums in a different order differ in the last bits.
      EXPECT_NEAR(got->penalty, want->first, 1e-9) << "trial " << trial << " budget " << budget;
      EXPECT_NEAR(got->cost, want->second, 1e-9) << "trial " << trial << " budget " << budget;
      EXPECT_LE(got->cost, budget);
      // The choice reproduces its totals.
      double c = 0, pen = 0;
      for (size_t l = 0; l < p.size(); ++l) {
        ASSERT_GE(got->choice[l], 0);
        c += p[l][static_cast<size_t>(got->choice[l])].cost;
        pen += p[l][static_cast<size_t>(got->choice[l])].penalty;
      }
      EXPECT_NEAR(c, got->cost, 1e-9);
      EXPECT_NEAR(pen, got->penalty, 1e-9);
    }
  }
}

TEST(BitAllocation, FrontIsParetoOptimalAndComplete) {
  std::mt19937 rng(11);
  const Problem p = random_problem(rng, 5, 4, false);
  const auto front = pareto_front(p);
  ASSERT_FALSE(front.empty());
  for (size_t i = 1; i < front.size(); ++i) {
    EXPECT_GT(front[i].cost, front[i - 1].cost);
    EXPECT_LT(front[i].penalty, front[i - 1].penalty);
  }
  // Every front point is the optimum at its own cost (a budget just at it).
  for (const auto& a : front) {
    const auto want = brute_force(p, a.cost);
    ASSERT_TRUE(want);
    EXPECT_NEAR(a.penalty, want->first, 1e-9);
  }
  EXPECT_FALSE(best_allocation(p, front.front().cost * 0.5).has_value());  // nothing is that cheap
  EXPECT_THROW(pareto_front({{}}), Error);
}

// Three layers: a sensitive first conv, a large insensitive middle conv, a small output linear.
SensitivityReport synthetic_table() {
  SensitivityReport t;
  t.model = "synthetic";
  t.checkpoint = "runs/synthetic";
  t.fp_loss = 0.3;
  auto layer = [](std::string name, int64_t n, int64_t out, int64_t macs, std::vector<double> deltas, double a4, bool last) {
    LayerSensitivity l;
    l.name = std::move(name);
    l.kind = last ? "linear" : "conv";
    l.weights = n;
    l.out_channels = out;
    l.macs = macs;
    l.last = last;
    l.has_trace = true;
    l.hessian_trace = 2.0;
    const int bits[] = {8, 4, 2};
    for (size_t k = 0; k < deltas.size(); ++k) {
      WidthSensitivity s;
      s.bits = bits[k];
      s.delta_loss = deltas[k];
      s.loss = 0.3 + deltas[k];
      s.weight_error = deltas[k] * 10;
      s.hawq = l.hessian_trace / static_cast<double>(n) * s.weight_error;
      l.weights_at.push_back(s);
    }
    if (!last) {
      WidthSensitivity s;
      s.bits = 4;
      s.delta_loss = a4;
      l.activations_at.push_back(s);
    }
    return l;
  };
  t.layers.push_back(layer("conv1", 288, 32, 225792, {0.001, 0.05, 0.9}, 0.02, false));
  t.layers.push_back(layer("conv2", 18432, 64, 3612672, {-0.002, 0.004, 0.03}, 0.01, false));
  t.layers.push_back(layer("fc", 640, 10, 640, {0.0, 0.02, 0.2}, 0.0, true));
  return t;
}

TEST(BitAllocation, SearchUnderAverageBits) {
  const SensitivityReport t = synthetic_table();
  MixedSearchOptions o;
  o.kind = BudgetKind::Bits;
  o.budget = 3.0;
  const MixedSearchResult r = search_mixed_precision(t, o);
  ASSERT_TRUE(r.choice);
  EXPECT_LE(r.choice->bits_per_param, 3.0);
  // Uniform 4 bits does not fit 3 bits; the search puts the big insensitive conv2 at 2 bits and
  // keeps the sensitive conv1 wide.
  ASSERT_EQ(r.choice->layers.size(), 3u);
  EXPECT_EQ(r.choice->layers[1].weight.bits, 2);
  EXPECT_GE(r.choice->layers[0].weight.bits, 4);
  // Its predicted loss beats uniform 2 bits, the only uniform point under 3 bits.
  const MixedPoint* w2 = nullptr;
  for (const auto& u : r.uniform)
    if (u.label == "W2A8") w2 = &u;
  ASSERT_TRUE(w2);
  EXPECT_NEAR(w2->bits_per_param, 2.0, 1e-12);
  EXPECT_NEAR(w2->predicted_delta_loss, 0.9 + 0.03 + 0.2, 1e-12);
  EXPECT_LT(r.choice->predicted_delta_loss, w2->predicted_delta_loss);
  // Bits per weight are weighted by the weight counts.
  double wb = 0;
  for (size_t i = 0; i < 3; ++i) wb += t.layers[i].weights * static_cast<double>(r.choice->layers[i].weight.bits);
  EXPECT_NEAR(r.choice->bits_per_param, wb / (288 + 18432 + 640), 1e-12);
  // Negative measured deltas (noise) count as zero.
  const auto w8 = std::find_if(r.uniform.begin(), r.uniform.end(), [](const MixedPoint& p) { return p.label == "W8A8"; });
  ASSERT_NE(w8, r.uniform.end());
  EXPECT_NEAR(w8->predicted_delta_loss, 0.001, 1e-12);
  // The front is sorted by cost with falling predicted loss, and its cheapest point is all 2-bit.
  ASSERT_GE(r.front.size(), 2u);
  EXPECT_NEAR(r.front.front().bits_per_param, 2.0, 1e-12);
  for (size_t i = 1; i < r.front.size(); ++i) EXPECT_LT(r.front[i].predicted_delta_loss, r.front[i - 1].predicted_delta_loss);
  // Too small a budget: no choice, and the JSON says so.
  o.budget = 1.5;
  const MixedSearchResult none = search_mixed_precision(t, o);
  EXPECT_FALSE(none.choice);
  EXPECT_TRUE(none.to_json()["choice"].is_null());
}

TEST(BitAllocation, CostsInBytesBopsAndLatency) {
  const SensitivityReport t = synthetic_table();
  LatencyTable lat;
  lat.fixed_ms = 0.05;
  lat.layer_ms["conv1"] = {{8, 0.10}, {4, 0.09}, {2, 0.08}};
  lat.layer_ms["conv2"] = {{8, 1.00}, {4, 0.60}, {2, 0.50}};
  lat.layer_ms["fc"] = {{8, 0.01}, {4, 0.01}, {2, 0.01}};
  MixedSearchOptions o;
  o.latency = &lat;
  o.act_bits = {8, 4};
  o.kind = BudgetKind::Bytes;
  o.budget = 1e9;
  const MixedSearchResult r = search_mixed_precision(t, o);
  ASSERT_TRUE(r.choice);
  // An unlimited budget buys the least predicted loss: W8A8 everywhere (conv2's -0.002 is 0).
  for (const auto& l : r.choice->layers) {
    EXPECT_EQ(l.weight.bits, 8) << l.name;
    EXPECT_EQ(l.act_bits, 8) << l.name;
  }
  // Bytes: ceil(n * container / 8) + 8 per output channel; BOPs: MACs x w x a (the output layer's a is 8).
  EXPECT_NEAR(r.choice->bytes, 288 + 18432 + 640 + 8 * (32 + 64 + 10), 1e-9);
  EXPECT_NEAR(r.choice->bops, (225792.0 + 3612672.0 + 640.0) * 64, 1e-3);
  EXPECT_NEAR(r.choice->latency_ms, 0.05 + 0.10 + 1.00 + 0.01, 1e-12);
  const auto w4a4 = std::find_if(r.uniform.begin(), r.uniform.end(), [](const MixedPoint& p) { return p.label == "W4A4"; });
  ASSERT_NE(w4a4, r.uniform.end());
  EXPECT_NEAR(w4a4->bops, (225792.0 + 3612672.0) * 16 + 640.0 * 32, 1e-3);
  // The activation term: a4 adds (a4 entry - w8 entry), clamped at 0, for non-output layers.
  EXPECT_NEAR(w4a4->predicted_delta_loss, (0.05 + (0.02 - 0.001)) + (0.004 + (0.01 + 0.002)) + 0.02, 1e-12);
  EXPECT_EQ(w4a4->layers[2].act_bits, 8);  // the output layer keeps int32 logits

  // A latency budget below W8 everywhere forces the slow conv2 narrower.
  o.kind = BudgetKind::LatencyMs;
  o.budget = 0.9;
  const MixedSearchResult rl = search_mixed_precision(t, o);
  ASSERT_TRUE(rl.choice);
  EXPECT_LE(rl.choice->latency_ms, 0.9 + 1e-12);
  EXPECT_LT(rl.choice->layers[1].weight.bits, 8);
  // Missing table entries are named.
  LatencyTable partial = lat;
  partial.layer_ms.erase("fc");
  o.latency = &partial;
  try {
    search_mixed_precision(t, o);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'fc'"), std::string::npos) << e.what();
  }
}

TEST(BitAllocation, PinsObjectivesAndErrors) {
  SensitivityReport t = synthetic_table();
  MixedSearchOptions o;
  o.kind = BudgetKind::Bits;
  o.budget = 2.4;
  o.pin_8bit = {"conv1", "f?"};
  const MixedSearchResult r = search_mixed_precision(t, o);
  ASSERT_TRUE(r.choice);
  EXPECT_EQ(r.choice->layers[0].weight.bits, 8);
  EXPECT_EQ(r.choice->layers[2].weight.bits, 8);
  EXPECT_EQ(r.choice->layers[1].weight.bits, 2);
  // The HAWQ objective ranks by trace / n * ||Q(W) - W||^2.
  o.pin_8bit.clear();
  o.objective = "hawq";
  o.budget = 8.0;
  const MixedSearchResult h = search_mixed_precision(t, o);
  ASSERT_TRUE(h.choice);
  EXPECT_NEAR(h.choice->predicted_delta_loss, 2.0 / 288 * 0.01 + 0.0 + 0.0, 1e-12);
  t.layers[1].has_trace = false;
  EXPECT_THROW(search_mixed_precision(t, o), Error);
  o.objective = "loss";
  o.weight_widths = {"3"};
  try {
    search_mixed_precision(t, o);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("weight width 3"), std::string::npos) << e.what();
  }
  EXPECT_THROW(parse_weight_width("9"), Error);
  EXPECT_THROW(parse_weight_width("four"), Error);
  EXPECT_EQ(parse_weight_width("ternary").container_bits(), 2);
  EXPECT_NEAR(parse_weight_width("ternary").nominal_bits(), std::log2(3.0), 1e-12);
  EXPECT_EQ(parse_weight_width("3").container_bits(), 4);
}

TEST(BitAllocation, QatConfigOfAPointAndTableRoundTrip) {
  const SensitivityReport t = synthetic_table();
  MixedSearchOptions o;
  o.kind = BudgetKind::Bits;
  o.budget = 3.0;
  o.act_bits = {8, 4};
  const MixedSearchResult r = search_mixed_precision(t, o);
  ASSERT_TRUE(r.choice);
  qat::QatConfig base;
  base.defaults.weight_observer = "mse";
  base.overrides.push_back({"fc", {{"quantize", true}}});
  const qat::QatConfig c = qat::QatConfig::from_json(mixed_qat_config(*r.choice, base).to_json());
  for (const auto& l : r.choice->layers) {
    const qat::QuantSettings s = c.settings_for(l.name);
    EXPECT_EQ(s.weight_bits, l.weight.bits) << l.name;
    EXPECT_EQ(s.weight_format, l.weight.format) << l.name;
    EXPECT_EQ(s.act_bits, l.act_bits) << l.name;
    EXPECT_EQ(s.weight_observer, "mse") << l.name;  // the base's other settings stay
  }
  EXPECT_EQ(c.settings_for("pool").weight_bits, 8);  // nodes outside the table: 8-bit defaults
  // The table survives JSON.
  const SensitivityReport back = SensitivityReport::from_json(t.to_json(), "test");
  ASSERT_EQ(back.layers.size(), t.layers.size());
  EXPECT_EQ(back.layers[1].weights_at[2].delta_loss, t.layers[1].weights_at[2].delta_loss);
  EXPECT_EQ(back.layers[0].activations_at[0].bits, 4);
  EXPECT_THROW(SensitivityReport::from_json({{"analysis", "basin"}}, "x.json"), Error);
  nlohmann::json broken = t.to_json();
  broken["layers"][0].erase("macs");
  try {
    SensitivityReport::from_json(broken, "'s.json'");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'s.json'"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace lowbit::analysis
