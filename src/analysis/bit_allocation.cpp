#include "analysis/bit_allocation.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <stdexcept>
#include <iomanip>
#include <sstream>

#include "base/error.h"

namespace lowbit::analysis {

// ---- Exact solver ------------------------------------------------------------------------------

namespace {
// One partial assignment of the front after some layer: its totals and how it was reached.
struct FrontEntry {
  double cost, penalty;
  int32_t parent;  // index into the previous layer's front
  int32_t option;  // this layer's option
};
}  // namespace

std::vector<Allocation> pareto_front(const std::vector<std::vector<AllocationOption>>& layers, double max_cost) {
  std::vector<std::vector<FrontEntry>> fronts;
  std::vector<FrontEntry> front{{0.0, 0.0, -1, -1}};
  for (size_t l = 0; l < layers.size(); ++l) {
    LOWBIT_CHECK(!layers[l].empty(), "bit allocation: layer " + std::to_string(l) + " has no option");
    std::vector<FrontEntry> next;
    next.reserve(front.size() * layers[l].size());
    for (size_t s = 0; s < front.size(); ++s)
      for (size_t o = 0; o < layers[l].size(); ++o) {
        const double c = front[s].cost + layers[l][o].cost;
        if (c > max_cost) continue;
        next.push_back({c, front[s].penalty + layers[l][o].penalty, static_cast<int32_t>(s), static_cast<int32_t>(o)});
      }
    // Keep the non-dominated entries: by ascending cost (ties: ascending penalty), each one whose
    // penalty is below every cheaper entry's.
    std::sort(next.begin(), next.end(), [](const FrontEntry& a, const FrontEntry& b) {
      return a.cost != b.cost ? a.cost < b.cost : a.penalty < b.penalty;
    });
    std::vector<FrontEntry> kept;
    double best = std::numeric_limits<double>::infinity();
    for (const auto& e : next)
      if (e.penalty < best) {
        kept.push_back(e);
        best = e.penalty;
      }
    fronts.push_back(std::move(front));
    front = std::move(kept);
    if (front.empty()) return {};
  }
  fronts.push_back(front);
  std::vector<Allocation> out;
  for (size_t i = 0; i < front.size(); ++i) {
    Allocation a;
    a.cost = front[i].cost;
    a.penalty = front[i].penalty;
    a.choice.assign(layers.size(), -1);
    int32_t idx = static_cast<int32_t>(i);
    for (size_t l = layers.size(); l-- > 0;) {
      const FrontEntry& e = fronts[l + 1][static_cast<size_t>(idx)];
      a.choice[l] = e.option;
      idx = e.parent;
    }
    out.push_back(std::move(a));
  }
  return out;
}

std::optional<Allocation> best_allocation(const std::vector<std::vector<AllocationOption>>& layers, double budget) {
  const std::vector<Allocation> front = pareto_front(layers, budget);
  if (front.empty()) return std::nullopt;
  return front.back();  // the front's penalty falls with cost: its last point is the least penalty
}

// ---- Search over a sensitivity table -----------------------------------------------------------

BudgetKind budget_kind_from_string(const std::string& name) {
  if (name == "bits") return BudgetKind::Bits;
  if (name == "bytes") return BudgetKind::Bytes;
  if (name == "bops") return BudgetKind::Bops;
  if (name == "latency_ms") return BudgetKind::LatencyMs;
  throw Error("unknown budget kind '" + name + "'; use bits, bytes, bops or latency_ms");
}

std::string to_string(BudgetKind kind) {
  switch (kind) {
    case BudgetKind::Bits: return "bits";
    case BudgetKind::Bytes: return "bytes";
    case BudgetKind::Bops: return "bops";
    case BudgetKind::LatencyMs: return "latency_ms";
  }
  return "?";
}

nlohmann::json LatencyTable::to_json() const {
  nlohmann::json layers = nlohmann::json::object();
  for (const auto& [name, per_bits] : layer_ms) {
    nlohmann::json j = nlohmann::json::object();
    for (const auto& [bits, ms] : per_bits) j[std::to_string(bits)] = ms;
    layers[name] = j;
  }
  return {{"batch", batch}, {"threads", threads}, {"isa", isa}, {"fixed_ms", fixed_ms}, {"layer_ms", layers}};
}

LatencyTable LatencyTable::from_file(const std::string& path) {
  std::ifstream in(path);
  LOWBIT_CHECK(in.good(), "cannot read latency table '" + path + "': give a latency.json written by 'lowbit search mixed'");
  LatencyTable t;
  try {
    nlohmann::json j;
    in >> j;
    t.batch = j.at("batch").get<int64_t>();
    t.threads = j.at("threads").get<int>();
    t.isa = j.value("isa", std::string());
    t.fixed_ms = j.at("fixed_ms").get<double>();
    for (const auto& [name, per_bits] : j.at("layer_ms").items())
      for (const auto& [bits, ms] : per_bits.items()) t.layer_ms[name][std::stoi(bits)] = ms.get<double>();
  } catch (const nlohmann::json::exception& e) {
    throw Error("latency table '" + path + "': " + e.what() + " (expected batch, threads, fixed_ms and layer_ms)");
  } catch (const std::invalid_argument&) {
    throw Error("latency table '" + path + "': a key of layer_ms's entries is not a bit width");
  }
  return t;
}

double MixedPoint::cost(BudgetKind kind) const {
  switch (kind) {
    case BudgetKind::Bits: return bits_per_param;
    case BudgetKind::Bytes: return bytes;
    case BudgetKind::Bops: return bops;
    case BudgetKind::LatencyMs: return latency_ms;
  }
  return 0.0;
}

nlohmann::json MixedPoint::to_json() const {
  nlohmann::json ls = nlohmann::json::array();
  for (const auto& l : layers)
    ls.push_back({{"name", l.name}, {"weight_format", l.weight.format}, {"weight_bits", l.weight.bits},
                  {"act_bits", l.act_bits}});
  return {{"label", label},
          {"bytes", bytes},
          {"bits_per_param", bits_per_param},
          {"bops", bops},
          {"latency_ms", std::isnan(latency_ms) ? nlohmann::json(nullptr) : nlohmann::json(latency_ms)},
          {"predicted_delta_loss", predicted_delta_loss},
          {"layers", ls}};
}

namespace {

// A candidate of one layer and what it costs in every unit.
struct Candidate {
  LayerChoice choice;
  double penalty = 0.0;
  double weight_bits = 0.0;  // weights x nominal bits
  double bytes = 0.0;
  double bops = 0.0;
  double latency_ms = std::numeric_limits<double>::quiet_NaN();
};

const WidthSensitivity* find_weight_entry(const LayerSensitivity& l, const WeightWidth& w) {
  for (const auto& e : l.weights_at)
    if (e.format == w.format && e.bits == w.bits) return &e;
  return nullptr;
}
const WidthSensitivity* find_act_entry(const LayerSensitivity& l, int bits) {
  for (const auto& e : l.activations_at)
    if (e.bits == bits) return &e;
  return nullptr;
}

Candidate make_candidate(const LayerSensitivity& l, const WeightWidth& w, int a, const MixedSearchOptions& o,
                         const std::string& where) {
  Candidate c;
  c.choice = {l.name, w, a};
  const WidthSensitivity* we = find_weight_entry(l, w);
  LOWBIT_CHECK(we, where + ": layer '" + l.name + "' has no entry for weight width " + w.label() +
                       "; measure it (lowbit analyze sensitivity --bits ...) or drop it from --wbits");
  // Loss increases below zero are measurement noise on a small validation subset; they would
  // reward quantization for nothing, so the objective counts them as zero.
  c.penalty = std::max(0.0, o.objective == "hawq" ? we->hawq : we->delta_loss);
  if (a != 8 && !l.last) {
    const WidthSensitivity* ae = find_act_entry(l, a);
    LOWBIT_CHECK(ae, where + ": layer '" + l.name + "' has no entry for activation width " + std::to_string(a) +
                         "; measure it (lowbit analyze sensitivity --abits " + std::to_string(a) + ")");
    const WidthSensitivity* w8 = find_weight_entry(l, {"int", 8});
    c.penalty += std::max(0.0, ae->delta_loss - (w8 ? w8->delta_loss : 0.0));
  }
  const double n = static_cast<double>(l.weights);
  c.weight_bits = n * w.nominal_bits();
  c.bytes = std::ceil(n * w.container_bits() / 8.0) + 8.0 * static_cast<double>(l.out_channels);
  c.bops = static_cast<double>(l.macs) * w.container_bits() * (l.last ? 8 : a);
  if (o.latency) {
    const auto it = o.latency->layer_ms.find(l.name);
    LOWBIT_CHECK(it != o.latency->layer_ms.end(), where + ": the latency table has no layer '" + l.name + "'");
    const auto jt = it->second.find(w.container_bits());
    LOWBIT_CHECK(jt != it->second.end(), where + ": the latency table has no " + std::to_string(w.container_bits()) +
                                             "-bit time for layer '" + l.name + "'");
    c.latency_ms = jt->second;
  }
  return c;
}

double total_weights(const SensitivityReport& t) {
  double n = 0.0;
  for (const auto& l : t.layers) n += static_cast<double>(l.weights);
  return n;
}

MixedPoint make_point(const std::string& label, const std::vector<const Candidate*>& picks, const SensitivityReport& t,
                      const MixedSearchOptions& o) {
  MixedPoint p;
  p.label = label;
  double wbits = 0.0, lat = o.latency ? o.latency->fixed_ms : 0.0;
  for (const Candidate* c : picks) {
    p.layers.push_back(c->choice);
    wbits += c->weight_bits;
    p.bytes += c->bytes;
    p.bops += c->bops;
    p.predicted_delta_loss += c->penalty;
    if (o.latency) lat += c->latency_ms;
  }
  p.bits_per_param = wbits / total_weights(t);
  if (o.latency) p.latency_ms = lat;
  return p;
}

double candidate_cost(const Candidate& c, BudgetKind kind, double weights_total) {
  switch (kind) {
    case BudgetKind::Bits: return c.weight_bits / weights_total;  // sums to the average bits
    case BudgetKind::Bytes: return c.bytes;
    case BudgetKind::Bops: return c.bops;
    case BudgetKind::LatencyMs: return c.latency_ms;
  }
  return 0.0;
}

}  // namespace

MixedSearchResult search_mixed_precision(const SensitivityReport& t, const MixedSearchOptions& o) {
  const auto t0 = std::chrono::steady_clock::now();
  const std::string where = "mixed-precision search (" + t.model + ")";
  LOWBIT_CHECK(o.objective == "loss" || o.objective == "hawq", "--objective must be loss or hawq (got '" + o.objective + "')");
  LOWBIT_CHECK(o.kind != BudgetKind::LatencyMs || o.latency, where + ": a latency budget needs a latency table");
  LOWBIT_CHECK(!o.act_bits.empty(), where + ": give at least one activation width");
  if (o.objective == "hawq")
    for (const auto& l : t.layers)
      LOWBIT_CHECK(l.has_trace, where + ": --objective hawq needs Hessian traces; layer '" + l.name +
                                    "' has none (run the sensitivity analysis with --hessian-probes > 0)");

  // Candidate widths: the given ones, else every weight width the first layer was measured at.
  std::vector<WeightWidth> widths;
  if (o.weight_widths.empty()) {
    for (const auto& e : t.layers.front().weights_at) widths.push_back({e.format, e.bits});
  } else {
    for (const auto& s : o.weight_widths) widths.push_back(parse_weight_width(s));
  }
  const double weights_total = total_weights(t);

  std::vector<std::vector<Candidate>> cands(t.layers.size());
  for (size_t i = 0; i < t.layers.size(); ++i) {
    const LayerSensitivity& l = t.layers[i];
    bool pinned = false;
    for (const auto& g : o.pin_8bit) pinned = pinned || qat::glob_match(g, l.name);
    if (pinned) {
      cands[i].push_back(make_candidate(l, {"int", 8}, 8, o, where));
      continue;
    }
    for (const auto& w : widths)
      for (int a : o.act_bits) {
        if (l.last && a != 8) continue;  // the output layer's activations are its int32 logits
        cands[i].push_back(make_candidate(l, w, a, o, where));
      }
  }
  std::vector<std::vector<AllocationOption>> problem(cands.size());
  for (size_t i = 0; i < cands.size(); ++i)
    for (const auto& c : cands[i]) problem[i].push_back({candidate_cost(c, o.kind, weights_total), c.penalty});

  MixedSearchResult r;
  r.from = t.checkpoint;
  r.model = t.model;
  r.options = o;
  r.options.latency = nullptr;
  for (const auto& l : t.layers) r.layers.push_back({{"name", l.name}, {"params", l.weights}, {"macs", l.macs}});
  const double fixed = o.kind == BudgetKind::LatencyMs ? o.latency->fixed_ms : 0.0;
  auto point_of = [&](const Allocation& a, const std::string& label) {
    std::vector<const Candidate*> picks;
    for (size_t i = 0; i < cands.size(); ++i) picks.push_back(&cands[i][static_cast<size_t>(a.choice[i])]);
    return make_point(label, picks, t, o);
  };
  // A small relative slack so that a budget equal to a uniform point's cost admits that point
  // despite the different order of the floating-point sums.
  const double budget = o.budget - fixed;
  if (auto best = best_allocation(problem, budget + 1e-9 * std::abs(budget))) r.choice = point_of(*best, "mixed");

  const std::vector<Allocation> front = pareto_front(problem);
  r.front_size = front.size();
  const size_t keep = std::min(front.size(), std::max<size_t>(o.front_points, 2));
  for (size_t k = 0; k < keep; ++k) {
    const size_t idx = keep == 1 ? 0 : k * (front.size() - 1) / (keep - 1);
    r.front.push_back(point_of(front[idx], "front " + std::to_string(k)));
  }

  // Uniform points: every layer at one weight width and one activation width (pinned layers stay 8-bit).
  for (int a : o.act_bits)
    for (const auto& w : widths) {
      std::vector<const Candidate*> picks;
      for (size_t i = 0; i < cands.size(); ++i) {
        const Candidate* found = nullptr;
        for (const auto& c : cands[i])
          if (c.choice.weight == w && (c.choice.act_bits == a || t.layers[i].last)) found = &c;
        if (!found) found = &cands[i].front();  // a pinned layer
        picks.push_back(found);
      }
      r.uniform.push_back(make_point("W" + w.label() + "A" + std::to_string(a), picks, t, o));
    }
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

nlohmann::json MixedSearchResult::to_json() const {
  nlohmann::json uni = nlohmann::json::array(), fr = nlohmann::json::array();
  for (const auto& p : uniform) uni.push_back(p.to_json());
  for (const auto& p : front) fr.push_back(p.to_json());
  nlohmann::json widths = options.weight_widths;
  nlohmann::json trained = nlohmann::json::array();
  for (const auto& q : pareto_qat)
    trained.push_back({{"point", q.point}, {"run", q.run}, {"accuracy", q.accuracy}, {"loss", q.loss}});
  return {{"analysis", "mixed-precision"},
          {"from", from},
          {"model", model},
          {"budget", {{"kind", to_string(options.kind)}, {"value", options.budget}}},
          {"objective", options.objective},
          {"weight_widths", widths},
          {"act_bits", options.act_bits},
          {"pin_8bit", options.pin_8bit},
          {"layers", layers},
          {"choice", choice ? choice->to_json() : nlohmann::json(nullptr)},
          {"uniform", uni},
          {"front", fr},
          {"front_size", front_size},
          {"pareto_qat", trained},
          {"seconds", seconds}};
}

std::string MixedSearchResult::table() const {
  std::ostringstream s;
  auto row = [&](const MixedPoint& p) {
    s << std::left << std::setw(10) << p.label << std::right << std::fixed << std::setw(8) << std::setprecision(3)
      << p.bits_per_param << std::setw(11) << std::setprecision(0) << p.bytes << std::setw(14) << std::setprecision(0)
      << p.bops;
    if (std::isnan(p.latency_ms))
      s << std::setw(11) << "-";
    else
      s << std::setw(11) << std::setprecision(4) << p.latency_ms;
    s << std::setw(11) << std::setprecision(4) << p.predicted_delta_loss << "\n";
  };
  s << model << ": budget " << to_string(options.kind) << " <= " << options.budget << ", objective " << options.objective
    << " (front of " << front_size << " Pareto-optimal assignments, " << std::setprecision(3) << seconds * 1e3
    << " ms)\n";
  s << std::left << std::setw(10) << "point" << std::right << std::setw(8) << "bits/w" << std::setw(11) << "bytes"
    << std::setw(14) << "BOPs/image" << std::setw(11) << "ms" << std::setw(11) << "pred.dloss" << "\n";
  for (const auto& p : uniform) row(p);
  if (choice) {
    row(*choice);
    s << "per layer:";
    for (const auto& l : choice->layers) s << " " << l.name << "=W" << l.weight.label() << "A" << l.act_bits;
    s << "\n";
  } else {
    s << "no assignment fits the budget (the cheapest is the first point of the front)\n";
  }
  return s.str();
}

qat::QatConfig mixed_qat_config(const MixedPoint& point, const qat::QatConfig& base) {
  qat::QatConfig c = base;
  c.defaults.weight_bits = 8;
  c.defaults.weight_format = "int";
  c.defaults.act_bits = 8;
  // The base's own overrides stay (e.g. a node left in float); the per-layer widths come after
  // them and so win.
  for (const auto& l : point.layers) {
    qat::LayerOverride o;
    o.pattern = l.name;
    o.settings = {{"weight_format", l.weight.format}, {"weight_bits", l.weight.bits}, {"act_bits", l.act_bits}};
    c.overrides.push_back(o);
  }
  return c;
}

}  // namespace lowbit::analysis
