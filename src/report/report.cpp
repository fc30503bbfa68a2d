#include "report/report.h"

#include <sstream>

#include "base/atomic_file.h"
#include "base/error.h"
#include "report/report_sections.h"
#include "report/svg_plot.h"

namespace lowbit::report {
namespace {

// Inline CSS: the page must read well with no network and no script.
const char* kStyle = R"(
body { font-family: sans-serif; margin: 24px auto; max-width: 1180px; color: #222; }
h1 { font-size: 22px; } h2 { font-size: 18px; border-bottom: 1px solid #ccc; padding-bottom: 4px; margin-top: 32px; }
h3 { font-size: 15px; }
table { border-collapse: collapse; font-size: 13px; margin: 8px 0; }
th, td { border: 1px solid #ddd; padding: 3px 8px; text-align: left; }
th { background: #f3f3f3; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
.swatch { display: inline-block; width: 10px; height: 10px; margin-right: 6px; border-radius: 2px; }
figure { display: inline-block; margin: 8px 12px 16px 0; vertical-align: top; }
figure svg { max-width: 100%; height: auto; }
figcaption { font-size: 12px; color: #555; max-width: 570px; }
pre { font-size: 12px; background: #f7f7f7; padding: 8px; }
.note, .sources { font-size: 12px; color: #555; }
)";

}  // namespace

std::string render_report_html(const ReportInputs& in, const ReportOptions& o) {
  // Runs and methods have separate colour maps: with one shared palette of 8 colours, a page of
  // several runs and a four-method study would run out and repeat a colour.
  ColorMap run_colors, method_colors;
  // The analyses' own keys (weight widths, front and choice, batch sizes) get palettes of their own.
  ColorMap sensitivity_colors, mixed_colors, profile_colors;
  std::ostringstream s;
  s << "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n"
    << "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"/>\n<title>" << xml_escape(o.title)
    << "</title>\n<style>" << kStyle << "</style>\n</head>\n<body>\n<h1>" << xml_escape(o.title) << "</h1>\n";
  if (!o.sources.empty()) {
    s << "<p class=\"sources\">From:";
    for (const auto& p : o.sources) s << " <code>" << xml_escape(p) << "</code>";
    s << "</p>\n";
  }
  s << runs_summary_section(in.runs, run_colors) << training_curves_section(in.runs, run_colors)
    << language_model_section(in.runs, run_colors) << deployment_section(in.models) << ptq_vs_qat_section(in.ptq_vs_qat, method_colors)
    << basin_section(in.basin, method_colors) << winq_section(in.winq, method_colors)
    << hessian_section(in.hessian, run_colors)
    << robustness_section(in.robustness, run_colors) << sensitivity_section(in.sensitivity, sensitivity_colors)
    << mixed_precision_section(in.mixed_precision, mixed_colors) << profile_section(in.profile, profile_colors);
  s << "</body>\n</html>\n";
  return s.str();
}

size_t write_report(const std::vector<std::string>& paths, const std::string& out_path) {
  LOWBIT_CHECK(!out_path.empty(), "report: --out is empty; give the HTML file to write");
  const ReportInputs inputs = load_report_inputs(paths);
  ReportOptions options;
  options.sources = paths;
  const std::string html = render_report_html(inputs, options);
  write_file_atomically(out_path, html);
  return html.size();
}

}  // namespace lowbit::report
