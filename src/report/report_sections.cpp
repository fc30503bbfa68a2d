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

// A count read from JSON (a double): digits grouped, "-" when absent.
std::string whole(double v) { return std::isfinite(v) ? thousands(static_cast<int64_t>(std::llround(v))) : "-"; }

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
           data.empty() || data == "-" ? "default" : data,
           percent(last_finite(r.epochs, &EpochPoint::val_acc)) +
               (r.language_model() ? " (" + fixed(last_finite(r.epochs, &EpochPoint::val_bits_per_byte), 3) + " bits/byte)" : ""),
           r.test ? percent(r.test->accuracy) + " (" + thousands(r.test->count) + ")"
                  : (r.ptq.is_object() ? percent(get_number(r.ptq, "ptq_test_accuracy")) : "-"),
           seconds > 0 ? fixed(seconds, 1) + " s" : "-"},
          colors.color(r.name));
  }
  s << t.html();
  // How each run was made (config.json "provenance", written since lowbit recorded it).
  const bool any_provenance = std::any_of(runs.begin(), runs.end(), [](const TrainingRun& r) {
    return r.config.is_object() && r.config.contains("provenance") && r.config["provenance"].is_object();
  });
  if (any_provenance) {
    s << "<h3>Command and machine</h3>\n";
    Table m({"run", "command", "host", "CPU", "logical cores", "kernel level", "OS", "started (UTC)"});
    for (const auto& r : runs) {
      const nlohmann::json p = r.config.is_object() ? r.config.value("provenance", nlohmann::json()) : nlohmann::json();
      m.row({r.name, get_string(p, "command", "-"), get_string(p, "host", "-"), get_string(p, "cpu", "-"),
             get_string(p, "logical_cores", "-"), get_string(p, "isa", "-"), get_string(p, "os", "-"),
             get_string(p, "date_utc", "-")},
            colors.color(r.name));
    }
    s << m.html();
    s << "<p class=\"note\">The command as typed (shell-quoted, so it can be pasted to repeat the run) and the machine "
         "of the last start of each run; a resumed run records the resuming command. Runs written before lowbit "
         "recorded this show '-'.</p>\n";
  }
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
    if (r.epochs.empty() || r.language_model()) continue;  // per-byte losses: their own section
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


std::string language_model_section(const std::vector<TrainingRun>& runs, ColorMap& colors) {
  std::vector<PlotSeries> bpb, acc;
  auto has_data = [](const PlotSeries& p) {
    return std::any_of(p.y.begin(), p.y.end(), [](double v) { return std::isfinite(v); });
  };
  for (const auto& r : runs) {
    if (r.epochs.empty() || !r.language_model()) continue;
    PlotSeries tb, vb, va;
    for (const auto& e : r.epochs) {
      const double x = static_cast<double>(e.step);
      // Older gpt-tiny metrics without bits per byte: the loss in nats per byte / ln 2.
      const double t = std::isfinite(e.train_bits_per_byte) ? e.train_bits_per_byte : e.train_loss / std::log(2.0);
      const double v = std::isfinite(e.val_bits_per_byte) ? e.val_bits_per_byte : e.val_loss / std::log(2.0);
      tb.x.push_back(x), tb.y.push_back(t);
      vb.x.push_back(x), vb.y.push_back(v);
      va.x.push_back(x), va.y.push_back(100.0 * e.val_acc);
    }
    tb.color = vb.color = va.color = colors.color(r.name);
    tb.dashed = true;
    tb.label = r.name + " train";
    vb.label = va.label = r.name + " validation";
    for (auto* p : {&tb, &vb})
      if (has_data(*p)) bpb.push_back(*p);
    if (has_data(va)) acc.push_back(va);
  }
  if (bpb.empty() && acc.empty()) return "";
  std::ostringstream s;
  s << "<section id=\"language-models\">\n<h2>Language models (gpt-tiny)</h2>\n";
  PlotOptions o = page_plot();
  o.markers = true;
  o.x_label = "optimizer step (end of each evaluation interval)";
  if (!bpb.empty()) {
    o.title = "Bits per byte: training (dashed) and validation (solid)";
    o.y_label = "cross-entropy (bits per byte)";
    s << figure("fig-lm-bits-per-byte", line_plot_svg(bpb, o),
                "Loss of every language-model run in bits per byte of text (lower is better; 8 is a uniform guess "
                "over bytes). Training: mean over the interval's batches; validation: after the interval.");
  }
  if (!acc.empty()) {
    o.title = "Next-byte accuracy on the validation text";
    o.y_label = "top-1 next-byte accuracy (%)";
    s << figure("fig-lm-accuracy", line_plot_svg(acc, o), "Validation next-byte accuracy; same colours as above.");
  }
  s << "</section>\n";
  return s.str();
}

namespace {

// Plots three to a row (small multiples).
PlotOptions small_plot() {
  PlotOptions o;
  o.width = 380;
  o.height = 280;
  o.markers = true;
  return o;
}

// An id fragment from free text (corruption names, labels): letters, digits and '-'.
std::string id_part(const std::string& s) {
  std::string out;
  for (char c : s) out += std::isalnum(static_cast<unsigned char>(c)) ? c : '-';
  return out;
}

// What a robustness result evaluated: the run folder of its checkpoint or its model file's name,
// so that it has the run's colour; the JSON file's own name otherwise.
std::string robustness_label(const StudyOutput& r) {
  const std::string ckpt = get_string(r.data, "checkpoint");
  if (!ckpt.empty()) {
    std::string p = ckpt;
    const size_t slash = p.rfind('/');
    if (slash != std::string::npos && p.substr(slash + 1) == "checkpoint.pt") p = p.substr(0, slash);
    const size_t s2 = p.rfind('/');
    return s2 == std::string::npos ? p : p.substr(s2 + 1);
  }
  const std::string model = get_string(r.data, "model_file");
  if (!model.empty()) {
    const size_t slash = model.rfind('/');
    return slash == std::string::npos ? model : model.substr(slash + 1);
  }
  return r.name;
}

// The cost a mixed-precision search was budgeted in (its front is a front in that unit): the
// point's key and the axis label.
std::pair<std::string, std::string> budget_axis(const std::string& kind) {
  if (kind == "bytes") return {"bytes", "weight bytes"};
  if (kind == "bops") return {"bops", "bit operations per image (BOPs)"};
  if (kind == "latency_ms") return {"latency_ms", "latency per batch (ms, measured on the search's machine)"};
  return {"bits_per_param", "weight bits per parameter"};
}

// A mixed-precision point's cost (`key`) and its predicted loss increase, as plotted.
void add_point(PlotSeries& s, const nlohmann::json& point, const std::string& key) {
  s.x.push_back(get_number(point, key.c_str()));
  s.y.push_back(get_number(point, "predicted_delta_loss"));
}

// A log axis when the positive values span more than two decades (loss increases from 8-bit to
// binary layers do); non-positive values are drawn at its floor, as the caption says.
void choose_log_axis(const std::vector<PlotSeries>& series, PlotOptions& o) {
  double lo = INFINITY, hi = 0;
  for (const auto& s : series)
    for (double v : s.y)
      if (std::isfinite(v) && v > 0) lo = std::min(lo, v), hi = std::max(hi, v);
  if (hi > 0 && hi / lo > 100) {
    o.log_y = true;
    o.y_floor = std::max(lo / 2, hi * 1e-6);
  }
}

std::string point_weights(const nlohmann::json& layer) {
  const std::string f = get_string(layer, "weight_format", "int");
  return f == "int" ? "int" + get_string(layer, "weight_bits") : f;
}

}  // namespace

std::string robustness_section(const std::vector<StudyOutput>& results, ColorMap& colors) {
  if (results.empty()) return "";
  std::vector<std::string> labels;
  for (const auto& r : results) {
    std::string l = robustness_label(r);
    // Two results of the same model (other seeds or splits) stay apart: the file name is added.
    if (std::find(labels.begin(), labels.end(), l) != labels.end()) l += " (" + r.name + ")";
    labels.push_back(l);
  }
  std::ostringstream s;
  s << "<section id=\"robustness\">\n<h2>Robustness under corruptions</h2>\n";
  Table t({"model", "evaluated", "split, images, seed", "clean accuracy", "clean ECE", "mean corruption accuracy",
           "mean corruption ECE", "worst corruption (mean over severities)"});
  std::vector<std::string> corruption_order;
  // corruption -> label -> severity -> accuracy (%)
  std::map<std::string, std::map<std::string, std::map<int, double>>> acc;
  std::map<std::string, std::map<int, std::pair<double, int>>> mean_by_severity;  // label -> severity -> (sum, n)
  for (size_t i = 0; i < results.size(); ++i) {
    const auto& j = results[i].data;
    const nlohmann::json clean = j.value("clean", nlohmann::json::object());
    std::map<std::string, std::pair<double, int>> per_corruption;
    for (const auto& sh : j.value("shifted", nlohmann::json::array())) {
      const std::string c = get_string(sh, "corruption");
      const int sev = sh.value("severity", 0);
      const double a = get_number(sh, "accuracy");
      if (std::find(corruption_order.begin(), corruption_order.end(), c) == corruption_order.end())
        corruption_order.push_back(c);
      acc[c][labels[i]][sev] = 100.0 * a;
      per_corruption[c].first += a, per_corruption[c].second += 1;
      mean_by_severity[labels[i]][sev].first += 100.0 * a, mean_by_severity[labels[i]][sev].second += 1;
    }
    std::string worst = "-";
    double worst_acc = INFINITY;
    for (const auto& [c, sum] : per_corruption)
      if (sum.first / sum.second < worst_acc) worst_acc = sum.first / sum.second, worst = c + " " + percent(worst_acc);
    const std::string engine = j.contains("model_file") ? "integer runtime (" + get_string(j, "isa", "?") + ")" : "checkpoint";
    t.row({labels[i], engine,
           get_string(j, "split", "?") + ", " + whole(get_number(clean, "count")) + ", " +
               get_string(j, "seed", "?"),
           percent(get_number(clean, "accuracy")), fixed(get_number(clean, "ece"), 4),
           percent(get_number(j, "mean_corruption_accuracy")), fixed(get_number(j, "mean_corruption_ece"), 4), worst},
          colors.color(labels[i]));
  }
  s << t.html();
  s << "<p class=\"note\">ECE: expected calibration error over 15 confidence bins (0 is perfectly calibrated). The mean "
       "corruption figures average every (corruption, severity) pair. Severity 0 in the plots is the clean split.</p>\n";
  // Severity 0 of every curve is the model's clean accuracy.
  auto with_clean = [&](PlotSeries& p, size_t i) {
    const double a = get_number(results[i].data.value("clean", nlohmann::json::object()), "accuracy");
    if (std::isfinite(a)) p.x.insert(p.x.begin(), 0.0), p.y.insert(p.y.begin(), 100.0 * a);
  };
  std::vector<PlotSeries> mean;
  for (size_t i = 0; i < results.size(); ++i) {
    PlotSeries p;
    p.label = labels[i];
    p.color = colors.color(labels[i]);
    for (const auto& [sev, sum] : mean_by_severity[labels[i]]) p.x.push_back(sev), p.y.push_back(sum.first / sum.second);
    with_clean(p, i);
    if (!p.x.empty()) mean.push_back(p);
  }
  if (!mean.empty()) {
    PlotOptions o = page_plot();
    o.markers = true;
    o.title = "Accuracy against severity, mean over corruptions";
    o.x_label = "severity (0 = clean)";
    o.integer_x = true;
    o.y_label = "top-1 accuracy (%)";
    s << figure("fig-robustness-mean", line_plot_svg(mean, o),
                "Accuracy of each model at each severity, averaged over the corruptions; one colour per model, the "
                "same as in the runs table.");
  }
  for (const auto& c : corruption_order) {
    std::vector<PlotSeries> series;
    for (size_t i = 0; i < results.size(); ++i) {
      const auto it = acc[c].find(labels[i]);
      if (it == acc[c].end()) continue;
      PlotSeries p;
      p.label = labels[i];
      p.color = colors.color(labels[i]);
      for (const auto& [sev, a] : it->second) p.x.push_back(sev), p.y.push_back(a);
      with_clean(p, i);
      series.push_back(p);
    }
    PlotOptions o = small_plot();
    o.title = c;
    o.x_label = "severity (0 = clean)";
    o.integer_x = true;
    o.y_label = "accuracy (%)";
    s << figure("fig-robustness-" + id_part(c), line_plot_svg(series, o), c + ": accuracy against severity.");
  }
  s << "</section>\n";
  return s.str();
}

std::string sensitivity_section(const std::vector<StudyOutput>& results, ColorMap& colors) {
  if (results.empty()) return "";
  std::ostringstream s;
  s << "<section id=\"sensitivity\">\n<h2>Per-layer sensitivity</h2>\n";
  for (size_t i = 0; i < results.size(); ++i) {
    const auto& j = results[i].data;
    const nlohmann::json layers = j.value("layers", nlohmann::json::array());
    // One series per weight setting (int4, ternary, ...) and per activation width, in file order.
    std::vector<std::string> order;
    std::map<std::string, PlotSeries> series;
    std::map<std::string, std::map<size_t, double>> delta;  // setting -> layer -> delta loss
    auto add = [&](const std::string& key, size_t layer, double d, bool dashed) {
      if (!series.count(key)) {
        order.push_back(key);
        PlotSeries p;
        p.label = key;
        p.color = colors.color(key);
        p.dashed = dashed;
        series[key] = p;
      }
      series[key].x.push_back(static_cast<double>(layer + 1));
      series[key].y.push_back(d);
      delta[key][layer] = d;
    };
    PlotSeries trace;
    trace.label = "Hessian trace";
    trace.color = colors.color("Hessian trace");
    trace.bars = true;
    for (size_t k = 0; k < layers.size(); ++k) {
      for (const auto& w : layers[k].value("weights", nlohmann::json::array())) {
        const std::string f = get_string(w, "format", "int");
        add("W " + (f == "int" ? "int" + get_string(w, "bits") : f), k, get_number(w, "delta_loss"), false);
      }
      for (const auto& a : layers[k].value("activations", nlohmann::json::array()))
        add("A" + get_string(a, "bits"), k, get_number(a, "delta_loss"), true);
      const double tr = get_number(layers[k], "hessian_trace");
      if (std::isfinite(tr)) trace.x.push_back(static_cast<double>(k + 1)), trace.y.push_back(tr);
    }
    s << "<h3>" << esc(results[i].name) << ": " << esc(get_string(j, "model", "?")) << ", "
      << esc(get_string(j, "method", "?")) << " quantization of one layer at a time, FP loss "
      << fixed(get_number(j, "fp_loss"), 4) << ", FP accuracy " << percent(get_number(j, "fp_accuracy")) << "</h3>\n";
    std::vector<std::string> header = {"#", "layer", "parameters", "MACs", "Hessian trace"};
    for (const auto& k : order) header.push_back("Δloss " + k);
    Table t(header);
    for (size_t k = 0; k < layers.size(); ++k) {
      std::vector<std::string> row = {std::to_string(k + 1), get_string(layers[k], "name"),
                                      whole(get_number(layers[k], "params")),
                                      whole(get_number(layers[k], "macs")),
                                      text(layers[k].value("hessian_trace", nlohmann::json()))};
      for (const auto& key : order) {
        const auto it = delta[key].find(k);
        row.push_back(it == delta[key].end() ? "-" : fixed(it->second, 5));
      }
      t.row(row);
    }
    s << t.html();
    std::vector<PlotSeries> plotted;
    for (const auto& k : order) plotted.push_back(series[k]);
    if (!plotted.empty()) {
      PlotOptions o = page_plot();
      o.markers = true;
      o.title = "Loss increase when one layer is quantized";
      o.x_label = "layer (# in the table)";
      o.integer_x = true;
      o.y_label = "loss increase (nats)";
      choose_log_axis(plotted, o);
      s << figure("fig-sensitivity-loss-" + std::to_string(i), line_plot_svg(plotted, o),
                  results[i].name + ": validation loss increase over FP when only that layer's weights (solid) or "
                                    "input activations (dashed) are quantized" +
                      (o.log_y ? "; log axis, increases of zero or below are drawn at its floor." : "."));
    }
    if (!trace.x.empty()) {
      PlotOptions o = page_plot();
      o.title = "Hessian trace per layer";
      o.x_label = "layer (# in the table)";
      o.y_label = "trace of the layer's Hessian block";
      choose_log_axis({trace}, o);
      s << figure("fig-sensitivity-hessian-" + std::to_string(i), line_plot_svg({trace}, o),
                  results[i].name + ": Hutchinson estimate of the trace of each layer's Hessian block (curvature "
                                    "the layer's quantization noise meets).");
    }
  }
  s << "</section>\n";
  return s.str();
}

std::string mixed_precision_section(const std::vector<StudyOutput>& results, ColorMap& colors) {
  if (results.empty()) return "";
  std::ostringstream s;
  s << "<section id=\"mixed-precision\">\n<h2>Mixed precision</h2>\n";
  for (size_t i = 0; i < results.size(); ++i) {
    const auto& j = results[i].data;
    const nlohmann::json budget = j.value("budget", nlohmann::json::object());
    const bool has_choice = j.contains("choice") && j["choice"].is_object();
    const nlohmann::json choice = has_choice ? j["choice"] : nlohmann::json::object();
    const nlohmann::json front = j.value("front", nlohmann::json::array());
    const nlohmann::json uniform = j.value("uniform", nlohmann::json::array());
    s << "<h3>" << esc(results[i].name) << ": from " << esc(get_string(j, "from", "?")) << ", budget "
      << esc(get_string(budget, "value", "?")) << " " << esc(get_string(budget, "kind", "?")) << "</h3>\n";
    // Points: the choice, then the uniform settings it competes with.
    Table t({"configuration", "bytes", "bits per parameter", "BOPs", "latency", "predicted loss increase"});
    auto point_row = [&](const nlohmann::json& p, const std::string& what, const std::string& swatch) {
      const double lat = get_number(p, "latency_ms");
      t.row({what, whole(get_number(p, "bytes")), fixed(get_number(p, "bits_per_param"), 3),
             whole(get_number(p, "bops")), std::isfinite(lat) ? fixed(lat, 3) + " ms" : "-",
             fixed(get_number(p, "predicted_delta_loss"), 5)},
            swatch);
    };
    if (has_choice)
      point_row(choice, "choice: " + get_string(choice, "label", "-"), colors.color("choice"));
    else
      t.row({"choice: none fits the budget", "-", "-", "-", "-", "-"}, colors.color("choice"));
    for (const auto& u : uniform) point_row(u, "uniform " + get_string(u, "label", "-"), colors.color("uniform"));
    s << t.html();

    PlotSeries f, u, c;
    f.label = "front (" + std::to_string(front.size()) + " points)";
    f.color = colors.color("front");
    f.marker_radius = 2;
    u.label = "uniform";
    u.color = colors.color("uniform");
    u.line = false;
    u.marker_radius = 4;
    c.label = "choice";
    c.color = colors.color("choice");
    c.line = false;
    c.marker_radius = 7;
    const auto [x_key, x_label] = budget_axis(get_string(budget, "kind", "bits"));
    std::vector<std::pair<double, double>> fp;
    for (const auto& p : front) fp.push_back({get_number(p, x_key.c_str()), get_number(p, "predicted_delta_loss")});
    std::sort(fp.begin(), fp.end());
    for (const auto& [x, y] : fp) f.x.push_back(x), f.y.push_back(y);
    for (const auto& p : uniform) add_point(u, p, x_key);
    if (has_choice) add_point(c, choice, x_key);
    std::vector<PlotSeries> plotted;
    for (auto* p : {&f, &u, &c})
      if (!p->x.empty()) plotted.push_back(*p);
    PlotOptions o = page_plot();
    o.title = x_key == "bits_per_param" ? "Predicted loss increase against size" : "Predicted loss increase against the budget's cost";
    o.x_label = x_label;
    o.y_label = "predicted loss increase (nats)";
    choose_log_axis(plotted, o);
    s << figure("fig-mixed-front-" + std::to_string(i), line_plot_svg(plotted, o),
                results[i].name + ": the searched front (line), the uniform settings (dots, named in the table) and "
                                  "the chosen allocation (large dot); the predicted increase is the sum of per-layer "
                                  "sensitivities." + (o.log_y ? " Log axis." : ""));
    // Measured accuracy after QAT of some front points, if the search ran it.
    const nlohmann::json qat = j.value("pareto_qat", nlohmann::json::array());
    if (!qat.empty()) {
      PlotSeries q;
      q.label = "QAT of front points";
      q.color = colors.color("front");
      std::vector<std::pair<double, double>> qp;
      for (const auto& m : qat) {
        const int64_t k = m.value("point", int64_t{0});
        qp.push_back({get_number(front[static_cast<size_t>(k)], x_key.c_str()), 100.0 * get_number(m, "accuracy")});
      }
      std::sort(qp.begin(), qp.end());
      for (const auto& [x, y] : qp) q.x.push_back(x), q.y.push_back(y);
      PlotOptions oq = page_plot();
      oq.markers = true;
      oq.title = "Measured accuracy of front points after QAT";
      oq.x_label = x_label;
      oq.y_label = "top-1 accuracy (%)";
      s << figure("fig-mixed-qat-" + std::to_string(i), line_plot_svg({q}, oq),
                  results[i].name + ": accuracy measured after quantization-aware training of " +
                      std::to_string(qat.size()) + " front points.");
    }
    // The chosen allocation, layer by layer.
    const nlohmann::json layers = j.value("layers", nlohmann::json::array());
    const nlohmann::json alloc = choice.value("layers", nlohmann::json::array());
    Table a({"#", "layer", "parameters", "MACs", "weights", "activation bits"});
    PlotSeries wb, ab;
    wb.label = "weight bits";
    wb.color = colors.color("weight bits");
    wb.bars = true;
    ab.label = "activation bits";
    ab.color = colors.color("activation bits");
    ab.bars = true;
    for (size_t k = 0; k < alloc.size(); ++k) {
      const std::string name = get_string(alloc[k], "name");
      nlohmann::json info;
      for (const auto& l : layers)
        if (get_string(l, "name") == name) info = l;
      a.row({std::to_string(k + 1), name, whole(get_number(info, "params")),
             whole(get_number(info, "macs")), point_weights(alloc[k]),
             get_string(alloc[k], "act_bits")});
      wb.x.push_back(static_cast<double>(k + 1)), wb.y.push_back(get_number(alloc[k], "weight_bits"));
      ab.x.push_back(static_cast<double>(k + 1)), ab.y.push_back(get_number(alloc[k], "act_bits"));
    }
    if (!alloc.empty()) {
      PlotOptions ob = page_plot();
      ob.title = "Bit allocation of the choice";
      ob.x_label = "layer (# in the table)";
      ob.y_label = "bits";
      s << figure("fig-mixed-bits-" + std::to_string(i), line_plot_svg({wb, ab}, ob),
                  results[i].name + ": weight and activation bits of each layer in the chosen configuration.");
      s << "<details><summary>" << esc(results[i].name) << ": allocation per layer</summary>\n" << a.html()
        << "</details>\n";
    }
  }
  s << "</section>\n";
  return s.str();
}

std::string profile_section(const std::vector<StudyOutput>& results, ColorMap& colors) {
  if (results.empty()) return "";
  std::ostringstream s;
  s << "<section id=\"latency\">\n<h2>Latency per layer (integer runtime)</h2>\n";
  for (size_t i = 0; i < results.size(); ++i) {
    const auto& j = results[i].data;
    const nlohmann::json batches = j.value("profile", nlohmann::json::array());
    s << "<h3>" << esc(results[i].name) << ": " << esc(get_string(j, "model", "?")) << ", "
      << esc(get_string(j, "threads", "?")) << " thread(s), kernels " << esc(get_string(j, "isa", "?")) << "</h3>\n";
    // Rows: the ops of the first batch size (the graph is the same for each); columns: batch sizes.
    std::vector<std::string> header = {"#", "node", "kind", "kernel"};
    std::vector<PlotSeries> bars;
    for (const auto& b : batches) {
      header.push_back("ms, batch " + get_string(b, "batch"));
      PlotSeries p;
      p.label = "batch " + get_string(b, "batch");
      p.color = colors.color(p.label);
      p.bars = true;
      const nlohmann::json ops = b.value("ops", nlohmann::json::array());
      for (size_t k = 0; k < ops.size(); ++k) p.x.push_back(static_cast<double>(k + 1)), p.y.push_back(get_number(ops[k], "ms"));
      bars.push_back(p);
    }
    Table t(header);
    const nlohmann::json first = batches.empty() ? nlohmann::json::array() : batches[0].value("ops", nlohmann::json::array());
    for (size_t k = 0; k < first.size(); ++k) {
      std::vector<std::string> row = {std::to_string(k + 1), get_string(first[k], "node"), get_string(first[k], "kind"),
                                      get_string(first[k], "kernel")};
      for (const auto& b : batches) {
        const nlohmann::json ops = b.value("ops", nlohmann::json::array());
        row.push_back(k < ops.size() ? fixed(get_number(ops[k], "ms"), 4) : "-");
      }
      t.row(row);
    }
    std::vector<std::string> total = {"", "total", "", ""};
    for (const auto& b : batches) total.push_back(fixed(get_number(b, "total_ms"), 4));
    t.row(total);
    s << t.html();
    bars.erase(std::remove_if(bars.begin(), bars.end(), [](const PlotSeries& p) { return p.x.empty(); }), bars.end());
    if (!bars.empty()) {
      PlotOptions o = page_plot();
      o.title = "Time per layer";
      o.x_label = "layer (# in the table)";
      o.y_label = "time per call (ms)";
      s << figure("fig-latency-" + std::to_string(i), line_plot_svg(bars, o),
                  results[i].name + ": time of each op of the integer graph per call, one bar per batch size.");
    }
  }
  s << "</section>\n";
  return s.str();
}

}  // namespace lowbit::report
