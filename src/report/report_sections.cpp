#include "report/report_sections.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <iomanip>
#include <map>
#include <set>
#include <sstream>

#include "report/svg_plot.h"

namespace lowbit::report {
namespace {

std::string esc(const std::string& s) { return xml_escape(s); }

std::string fixed(double v, int digits) {
  if (!std::isfinite(v)) return "-";
  std::ostringstream s;
  s << std::fixed << std::setprecision(digits) << v;
  return s.str();
}

std::string percent(double v) { return std::isfinite(v) ? fixed(100.0 * v, 2) + "%" : "-"; }

std::string thousands(int64_t v) {
  std::string digits = std::to_string(v < 0 ? -v : v), out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ",";
    out += digits[i];
  }
  return (v < 0 ? "-" : "") + out;
}

// A JSON value as table text (strings without quotes).
std::string text(const nlohmann::json& j) {
  if (j.is_null()) return "-";
  if (j.is_string()) return j.get<std::string>();
  if (j.is_number_float()) {
    std::ostringstream s;
    s << std::setprecision(4) << j.get<double>();
    return s.str();
  }
  return j.dump();
}

std::string get_string(const nlohmann::json& j, const char* key, const std::string& fallback = "") {
  if (!j.is_object()) return fallback;
  const auto it = j.find(key);
  return it != j.end() ? text(*it) : fallback;
}

double get_number(const nlohmann::json& j, const char* key) {
  if (!j.is_object()) return std::nan("");
  const auto it = j.find(key);
  return it != j.end() && it->is_number() ? it->get<double>() : std::nan("");
}

// Builds an HTML table row by row.
class Table {
 public:
  explicit Table(const std::vector<std::string>& header) {
    s_ << "<table>\n<thead><tr>";
    for (const auto& h : header) s_ << "<th>" << esc(h) << "</th>";
    s_ << "</tr></thead>\n<tbody>\n";
  }
  // Cells are text (escaped here); `swatch` puts a colour mark before the first cell.
  void row(const std::vector<std::string>& cells, const std::string& swatch = "") {
    s_ << "<tr>";
    for (size_t i = 0; i < cells.size(); ++i) {
      // Figures right-aligned (so digits line up), words left-aligned.
      const bool number = i > 0 && !cells[i].empty() && (std::isdigit(static_cast<unsigned char>(cells[i][0])) || cells[i] == "-");
      s_ << (number ? "<td class=\"num\">" : "<td>");
      if (i == 0 && !swatch.empty()) s_ << "<span class=\"swatch\" style=\"background:" << swatch << "\"></span>";
      s_ << esc(cells[i]) << "</td>";
    }
    s_ << "</tr>\n";
  }
  std::string html() const { return s_.str() + "</tbody>\n</table>\n"; }

 private:
  std::ostringstream s_;
};

// What a run is, from its config.json: FP32 training, QAT or PTQ and its quantizers.
std::string run_kind(const TrainingRun& r) {
  if (r.ptq.is_object() || (r.config.is_object() && r.config.contains("ptq"))) {
    const auto& p = r.ptq.is_object() ? r.ptq : r.config["ptq"];
    return "PTQ " + get_string(p, "method") + " W" + get_string(p, "weight_bits");
  }
  const nlohmann::json q = r.config.is_object() ? r.config.value("qat", nlohmann::json()) : nlohmann::json();
  if (!q.is_object() || !q.value("quantize", false)) return "FP32";
  return "QAT";
}

std::string weight_quantizer(const TrainingRun& r) {
  const nlohmann::json q = r.config.is_object() ? r.config.value("qat", nlohmann::json()) : nlohmann::json();
  if (!q.is_object() || !q.value("quantize", false)) return r.ptq.is_object() ? "W" + get_string(r.ptq, "weight_bits") : "fp32";
  std::string s = get_string(q, "weight_format", "int");
  s = s == "int" ? "int" + get_string(q, "weight_bits") : s;
  s += ", " + get_string(q, "weight_granularity") + ", " + get_string(q, "weight_estimator");
  return s;
}

std::string act_quantizer(const TrainingRun& r) {
  const nlohmann::json q = r.config.is_object() ? r.config.value("qat", nlohmann::json()) : nlohmann::json();
  if (!q.is_object() || !q.value("quantize", false)) return r.ptq.is_object() ? "A" + get_string(r.ptq, "act_bits") : "fp32";
  return "A" + get_string(q, "act_bits") + ", " + get_string(q, "act_estimator");
}

// Model and its size settings (vit/gpt widths live in their own config sections).
std::string model_text(const nlohmann::json& c) {
  std::string s = get_string(c, "model", "?");
  for (const char* section : {"vit", "lm"}) {
    if (!c.is_object() || !c.contains(section) || !c[section].is_object()) continue;
    for (const char* key : {"layers", "width", "dim", "heads", "context"})
      if (c[section].contains(key)) s += " " + std::string(key) + "=" + text(c[section][key]);
  }
  return s;
}

// Plots sized so that two sit side by side on the page (max-width 1180 px).
PlotOptions page_plot() {
  PlotOptions o;
  o.width = 570;
  o.height = 380;
  return o;
}

double last_finite(const std::vector<EpochPoint>& e, double EpochPoint::*field) {
  for (auto it = e.rbegin(); it != e.rend(); ++it)
    if (std::isfinite((*it).*field)) return (*it).*field;
  return std::nan("");
}

}  // namespace

const std::string& ColorMap::color(const std::string& key) {
  auto it = colors_.find(key);
  if (it == colors_.end()) it = colors_.emplace(key, plot_color(colors_.size())).first;
  return it->second;
}

std::string figure(const std::string& id, const std::string& svg, const std::string& caption) {
  return "<figure id=\"" + esc(id) + "\">\n" + svg + "<figcaption>" + esc(caption) + "</figcaption>\n</figure>\n";
}

std::string runs_summary_section(const std::vector<TrainingRun>& runs, ColorMap& colors) {
  if (runs.empty()) return "";
  std::ostringstream s;
  s << "<section id=\"runs\">\n<h2>Runs</h2>\n";
  Table t({"run", "kind", "model", "weights", "activations", "epochs", "steps", "optimizer, lr, batch", "data",
           "final val acc", "test acc", "train time"});
  for (const auto& r : runs) {
    double seconds = 0;
    for (const auto& e : r.epochs)
      if (std::isfinite(e.seconds)) seconds += e.seconds;
    const std::string data = get_string(r.config, "data_dir");
    t.row({r.name, run_kind(r), model_text(r.config), weight_quantizer(r), act_quantizer(r),
           r.epochs.empty() ? "-" : std::to_string(r.epochs.back().epoch),
           r.epochs.empty() ? "-" : std::to_string(r.epochs.back().step),
           get_string(r.config, "optimizer", "-") + ", " + get_string(r.config, "lr", "-") + ", " +
               get_string(r.config, "batch_size", "-"),
           data.empty() || data == "-" ? "default" : data, percent(last_finite(r.epochs, &EpochPoint::val_acc)),
           r.test ? percent(r.test->accuracy) + " (" + thousands(r.test->count) + ")"
                  : (r.ptq.is_object() ? percent(get_number(r.ptq, "ptq_test_accuracy")) : "-"),
           seconds > 0 ? fixed(seconds, 1) + " s" : "-"},
          colors.color(r.name));
  }
  s << t.html();
  // The whole config of every run, folded (a <details> element needs no script).
  for (const auto& r : runs) {
    if (!r.config.is_object()) continue;
    s << "<details><summary>" << esc(r.name) << ": config.json (" << esc(r.path) << ")</summary>\n<pre>"
      << esc(r.config.dump(2)) << "</pre>\n</details>\n";
  }
  s << "</section>\n";
  return s.str();
}

std::string training_curves_section(const std::vector<TrainingRun>& runs, ColorMap& colors) {
  std::vector<PlotSeries> loss, acc;
  for (const auto& r : runs) {
    if (r.epochs.empty()) continue;
    PlotSeries tl, vl, ta, va;
    for (const auto& e : r.epochs) {
      const double x = static_cast<double>(e.step);
      tl.x.push_back(x), tl.y.push_back(e.train_loss);
      vl.x.push_back(x), vl.y.push_back(e.val_loss);
      ta.x.push_back(x), ta.y.push_back(100.0 * e.train_acc);
      va.x.push_back(x), va.y.push_back(100.0 * e.val_acc);
    }
    tl.color = vl.color = ta.color = va.color = colors.color(r.name);
    tl.dashed = ta.dashed = true;
    tl.label = ta.label = r.name + " train";
    vl.label = va.label = r.name + " validation";
    // Only curves with data: a run with --val-size 0 has no validation series.
    auto has_data = [](const PlotSeries& p) {
      return std::any_of(p.y.begin(), p.y.end(), [](double v) { return std::isfinite(v); });
    };
    for (auto* p : {&tl, &vl})
      if (has_data(*p)) loss.push_back(*p);
    for (auto* p : {&ta, &va})
      if (has_data(*p)) acc.push_back(*p);
  }
  if (loss.empty() && acc.empty()) return "";
  std::ostringstream s;
  s << "<section id=\"training\">\n<h2>Training</h2>\n";
  PlotOptions o = page_plot();
  o.markers = true;
  o.x_label = "optimizer step (end of each epoch)";
  if (!loss.empty()) {
    o.title = "Loss: training (dashed, mean over the epoch) and validation (solid)";
    o.y_label = "cross-entropy (nats)";
    s << figure("fig-loss", line_plot_svg(loss, o),
                "Loss per epoch of every run; one colour per run. Training loss is the mean over the epoch's "
                "batches (fake-quantized forward for QAT), validation loss is measured after the epoch.");
  }
  if (!acc.empty()) {
    o.title = "Accuracy: training (dashed) and validation (solid)";
    o.y_label = "top-1 accuracy (%)";
    s << figure("fig-accuracy", line_plot_svg(acc, o), "Top-1 accuracy per epoch of every run; same colours as above.");
  }
  s << "</section>\n";
  return s.str();
}

std::string deployment_section(const std::vector<ModelFile>& models) {
  if (models.empty()) return "";
  std::ostringstream s;
  s << "<section id=\"deployment\">\n<h2>Deployment: integer model files</h2>\n";
  Table t({"model file", "stored name", "file size", "parameters", "bits per parameter", "FP32 size", "smaller by",
           "MACs per image", "BOPs per image", "energy per image (estimate)", "FP32 energy"});
  for (const auto& m : models) {
    if (m.decoder) {
      t.row({m.name, "decoder (gpt-tiny)", thousands(m.file_bytes) + " B", "-", "-", "-", "-", "-", "-", "-", "-"});
      continue;
    }
    const double fp32 = 4.0 * static_cast<double>(m.parameters);
    t.row({m.name, m.model_name, thousands(m.file_bytes) + " B", thousands(m.parameters), fixed(m.bits_per_parameter, 3),
           thousands(static_cast<int64_t>(fp32)) + " B", fixed(fp32 / std::max<double>(1.0, m.file_bytes), 2) + "x",
           thousands(m.macs_per_item), thousands(m.bops_per_item), fixed(m.energy_nj / 1e3, 3) + " µJ",
           fixed(m.fp32_energy_nj / 1e3, 3) + " µJ"});
  }
  s << t.html();
  s << "<p class=\"note\">Bits per parameter count weights at their stored width and 32-bit biases; the file size "
       "also holds scales, requantization multipliers and headers. FP32 size is 4 bytes per parameter. Energy is an "
       "estimate from per-operation energies (Horowitz, ISSCC 2014, 45 nm) and memory traffic, not a measurement "
       "(docs/metrics.md).</p>\n";
  s << "</section>\n";
  return s.str();
}

std::string ptq_vs_qat_section(const std::vector<StudyOutput>& studies, ColorMap& colors) {
  if (studies.empty()) return "";
  std::ostringstream s;
  s << "<section id=\"ptq-vs-qat\">\n<h2>PTQ vs QAT</h2>\n";
  for (size_t i = 0; i < studies.size(); ++i) {
    const auto& j = studies[i].data;
    std::vector<std::string> methods;
    std::set<int> bits_set;
    std::map<std::pair<int, std::string>, double> acc;
    for (const auto& c : j.value("cells", nlohmann::json::array())) {
      const std::string m = c.value("method", "");
      const int b = c.value("weight_bits", 0);
      if (std::find(methods.begin(), methods.end(), m) == methods.end()) methods.push_back(m);
      bits_set.insert(b);
      acc[{b, m}] = get_number(c, "accuracy");
    }
    if (methods.empty()) continue;
    const double fp32 = get_number(j, "fp32_accuracy");
    s << "<h3>" << esc(studies[i].name) << ": " << esc(get_string(j, "model")) << ", A" << esc(get_string(j, "act_bits"))
      << ", " << esc(get_string(j, "qat_steps")) << " QAT steps, " << esc(get_string(j, "test_images"))
      << " test images, FP32 " << percent(fp32) << "</h3>\n";
    std::vector<std::string> header = {"weight bits"};
    header.insert(header.end(), methods.begin(), methods.end());
    Table t(header);
    std::vector<PlotSeries> series;
    for (const auto& m : methods) {
      PlotSeries p;
      p.label = m;
      p.color = colors.color(m);
      p.dashed = m.rfind("qat", 0) != 0;  // PTQ dashed, QAT solid
      series.push_back(p);
    }
    for (auto it = bits_set.rbegin(); it != bits_set.rend(); ++it) {
      std::vector<std::string> row = {"W" + std::to_string(*it)};
      for (size_t k = 0; k < methods.size(); ++k) {
        const auto f = acc.find({*it, methods[k]});
        const double a = f == acc.end() ? std::nan("") : f->second;
        row.push_back(percent(a));
      }
      t.row(row);
    }
    for (int b : bits_set)
      for (size_t k = 0; k < methods.size(); ++k) {
        const auto f = acc.find({b, methods[k]});
        if (f == acc.end()) continue;
        series[k].x.push_back(b);
        series[k].y.push_back(100.0 * f->second);
      }
    s << t.html();
    PlotOptions o = page_plot();
    o.title = "Test accuracy against weight bits (" + get_string(j, "model") + ")";
    o.x_label = "weight bits";
    o.y_label = "top-1 test accuracy (%)";
    o.markers = true;
    if (std::isfinite(fp32)) o.reference_lines.push_back({100.0 * fp32, "FP32 " + percent(fp32)});
    s << figure("fig-ptq-vs-qat-" + std::to_string(i), line_plot_svg(series, o),
                "Accuracy of each method at each weight width; PTQ methods dashed, QAT solid; dotted line: FP32.");
  }
  s << "</section>\n";
  return s.str();
}

std::string basin_section(const std::vector<StudyOutput>& basins, ColorMap& colors) {
  if (basins.empty()) return "";
  std::ostringstream s;
  s << "<section id=\"basin\">\n<h2>Loss basin: FP32 to PTQ, and QAT re-entry</h2>\n";
  for (size_t i = 0; i < basins.size(); ++i) {
    const auto& j = basins[i].data;
    const double fp32_loss = get_number(j, "fp32_loss");
    const nlohmann::json opts = j.value("options", nlohmann::json::object());
    std::vector<PlotSeries> seg;
    for (const auto& m : j.value("methods", nlohmann::json::array())) {
      PlotSeries p;
      p.label = m.value("method", "?");
      p.color = colors.color(p.label);
      for (const auto& pt : m.value("segment", nlohmann::json::array())) {
        p.x.push_back(get_number(pt, "alpha"));
        p.y.push_back(get_number(pt, "loss"));
      }
      if (!p.x.empty()) seg.push_back(p);
    }
    const std::string wbits = get_string(opts, "weight_bits");
    if (!seg.empty()) {
      PlotOptions o = page_plot();
      o.title = "Loss along the segment FP32 -> PTQ (W" + wbits + ")";
      o.x_label = "alpha (0 = FP32 weights, 1 = PTQ weights)";
      o.y_label = "validation cross-entropy (nats)";
      o.markers = true;
      if (std::isfinite(fp32_loss)) o.reference_lines.push_back({fp32_loss, "FP32 loss " + fixed(fp32_loss, 4)});
      s << figure("fig-basin-segment-" + std::to_string(i), line_plot_svg(seg, o),
                  basins[i].name + ": loss at points on the straight line from the FP32 weights to each PTQ "
                                   "method's weights.");
    }
    PlotSeries q;
    q.label = "STE-QAT deployed loss";
    q.color = colors.color("qat-ste");
    const nlohmann::json qat = j.value("qat", nlohmann::json::object());
    for (const auto& st : qat.value("steps", nlohmann::json::array())) {
      const double l = get_number(st, "deployed_loss");
      if (!std::isfinite(l)) continue;
      q.x.push_back(get_number(st, "step"));
      q.y.push_back(l);
    }
    if (!q.x.empty()) {
      const double eps = get_number(opts, "epsilon");
      PlotOptions o = page_plot();
      o.title = "STE-QAT from the FP32 weights: deployed loss (W" + wbits + ")";
      o.x_label = "QAT optimizer step";
      o.y_label = "deployed (quantized) loss (nats)";
      o.markers = true;
      if (std::isfinite(fp32_loss)) o.reference_lines.push_back({fp32_loss, "FP32 loss"});
      if (std::isfinite(fp32_loss) && std::isfinite(eps) && eps > 0)
        o.reference_lines.push_back({(1 + eps) * fp32_loss, "re-entry threshold (1 + " + fixed(eps, 3) + ") x FP32", "#D55E00"});
      const auto first = qat.find("first_step_within");
      const std::string when = first != qat.end() && first->is_number() ? "re-enters at step " + text(*first)
                                                                         : "does not re-enter within the run";
      s << figure("fig-basin-qat-" + std::to_string(i), line_plot_svg({q}, o), basins[i].name + ": QAT " + when + ".");
    }
  }
  s << "</section>\n";
  return s.str();
}

namespace {

// The WinQ study's smoothing: a debiased EMA of the per-step training loss, alpha = 2 / (w + 1).
std::vector<double> smoothed(const std::vector<double>& v, int window) {
  const double a = 2.0 / (std::max(1, window) + 1.0);
  std::vector<double> out;
  double m = 0, w = 0;
  for (double x : v) {
    m = (1 - a) * m + a * x;
    w = (1 - a) * w + a;
    out.push_back(m / w);
  }
  return out;
}

}  // namespace

std::string winq_section(const std::vector<StudyOutput>& studies, ColorMap& colors) {
  if (studies.empty()) return "";
  std::ostringstream s;
  s << "<section id=\"winq\">\n<h2>WinQ study</h2>\n";
  for (size_t i = 0; i < studies.size(); ++i) {
    const auto& j = studies[i].data;
    const nlohmann::json settings = j.value("settings", nlohmann::json::object());
    const int window = settings.value("smoothing_window", 50);
    // Mean (over seeds) smoothed training-loss curve per (bits, variant), in file order.
    std::vector<std::string> bits_order, variant_order;
    std::map<std::pair<std::string, std::string>, std::vector<std::vector<double>>> curves;
    for (const auto& run : j.value("runs", nlohmann::json::array())) {
      const std::string b = get_string(run, "bits"), v = get_string(run, "variant");
      if (std::find(bits_order.begin(), bits_order.end(), b) == bits_order.end()) bits_order.push_back(b);
      if (std::find(variant_order.begin(), variant_order.end(), v) == variant_order.end()) variant_order.push_back(v);
      std::vector<double> losses;
      for (const auto& l : run.value("train_losses", nlohmann::json::array()))
        losses.push_back(l.is_number() ? l.get<double>() : std::nan(""));
      if (!losses.empty()) curves[{b, v}].push_back(smoothed(losses, window));
    }
    Table t({"W bits", "variant", "mean val acc", "mean val loss", "speed-up"});
    for (const auto& row : j.value("summary", nlohmann::json::array()))
      t.row({get_string(row, "bits"), get_string(row, "variant"), percent(get_number(row, "mean_val_acc")),
             fixed(get_number(row, "mean_val_loss"), 4),
             row.contains("speedup_on_mean_curves") && row["speedup_on_mean_curves"].is_number()
                 ? fixed(row["speedup_on_mean_curves"].get<double>(), 2) + "x"
                 : "-"},
            colors.color(get_string(row, "variant")));
    s << "<h3>" << esc(studies[i].name) << ": " << esc(get_string(j, "model")) << ", "
      << esc(get_string(settings, "steps")) << " steps, " << esc(get_string(settings, "seeds")) << " seed(s)</h3>\n";
    s << t.html();
    for (const auto& b : bits_order) {
      std::vector<PlotSeries> series;
      for (const auto& v : variant_order) {
        const auto it = curves.find({b, v});
        if (it == curves.end()) continue;
        size_t n = SIZE_MAX;
        for (const auto& c : it->second) n = std::min(n, c.size());
        PlotSeries p;
        p.label = v;
        p.color = colors.color(v);
        p.dashed = v == "baseline";
        for (size_t k = 0; k < n; ++k) {
          double m = 0;
          for (const auto& c : it->second) m += c[k];
          p.x.push_back(static_cast<double>(k + 1));
          p.y.push_back(m / static_cast<double>(it->second.size()));
        }
        series.push_back(p);
      }
      if (series.empty()) continue;
      PlotOptions o = page_plot();
      o.title = get_string(j, "model") + ", " + b + "-bit weights: training loss, mean of seeds";
      o.x_label = "optimizer step";
      o.y_label = "training cross-entropy (EMA span " + std::to_string(window) + ", nats)";
      std::string tag = b;
      std::replace(tag.begin(), tag.end(), '.', 'p');
      s << figure("fig-winq-w" + tag + "-" + std::to_string(i), line_plot_svg(series, o),
                  "Smoothed training loss of each variant (baseline dashed) at " + b + "-bit weights.");
    }
  }
  s << "</section>\n";
  return s.str();
}

std::string hessian_section(const std::vector<HessianOutput>& analyses, ColorMap& colors) {
  if (analyses.empty()) return "";
  std::ostringstream s;
  s << "<section id=\"hessian\">\n<h2>Hessian spectra</h2>\n";
  for (size_t i = 0; i < analyses.size(); ++i) {
    const auto& h = analyses[i];
    if (h.eigenvalue.empty()) continue;
    PlotSeries p;
    p.label = h.name;
    p.color = colors.color(h.name);
    p.x = h.eigenvalue;
    p.y = h.density;
    double peak = 0;
    for (double d : h.density)
      if (std::isfinite(d)) peak = std::max(peak, d);
    PlotOptions o = page_plot();
    o.title = get_string(h.summary, "model", "model") + ": Hessian spectral density (SLQ)";
    o.x_label = "eigenvalue lambda (of the mean cross-entropy loss)";
    o.y_label = "density (log scale)";
    o.log_y = true;
    o.y_floor = peak > 0 ? peak * 1e-6 : 1e-8;
    const std::string caption = h.name + ": top eigenvalue " + fixed(get_number(h.summary, "top_eigenvalue"), 4) +
                                ", trace " + fixed(get_number(h.summary, "trace"), 3) + ", near-zero fraction " +
                                percent(get_number(h.summary, "near_zero_fraction")) + ", " +
                                get_string(h.summary, "parameter_count") + " weights.";
    s << figure("fig-hessian-" + std::to_string(i), line_plot_svg({p}, o), caption);
  }
  s << "</section>\n";
  return s.str();
}

}  // namespace lowbit::report
