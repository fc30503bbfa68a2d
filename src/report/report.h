// `lowbit report`: one self-contained HTML page (inline SVG plots, inline CSS, no script, no
// network) from run folders, study outputs and model files. See docs/report.md.
#pragma once
#include <string>
#include <vector>

#include "report/report_inputs.h"

namespace lowbit::report {

struct ReportOptions {
  std::string title = "lowbit report";
  std::vector<std::string> sources;  // the paths given, listed at the top of the page
};

// The page for `inputs`, XHTML-style: every element is closed, so an XML parser accepts it.
std::string render_report_html(const ReportInputs& inputs, const ReportOptions& options);

// Loads `paths` (load_report_inputs), renders the page and writes it to `out_path` atomically.
// Returns the page's size in bytes. Throws lowbit::Error with what was wrong.
size_t write_report(const std::vector<std::string>& paths, const std::string& out_path);

}  // namespace lowbit::report
