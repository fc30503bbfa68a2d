// `lowbit report RUN_OR_STUDY [...] --out report.html`: one self-contained HTML page with the
// runs' summary, training curves, model-file sizes and the plots of any study outputs given.
#include <iomanip>
#include <iostream>
#include <memory>

#include "cli/commands.h"
#include "report/report.h"

namespace lowbit::cli {

void configure_report_command(CLI::App& cmd) {
  auto paths = std::make_shared<std::vector<std::string>>();
  auto out = std::make_shared<std::string>("report.html");
  cmd.add_option("paths", *paths,
                 "Run folders, study / Hessian folders, basin JSON files, .lbq files, or folders holding them")
      ->required();
  cmd.add_option("--out", *out, "HTML file to write (atomically)")->capture_default_str();
  cmd.callback([paths, out] {
    const size_t bytes = report::write_report(*paths, *out);
    std::cout << "wrote " << *out << " (" << std::fixed << std::setprecision(1) << bytes / 1024.0 << " KiB)\n";
  });
}

void add_report_command(CLI::App& app) {
  configure_report_command(*app.add_subcommand(
      "report", "HTML report (inline SVG plots, no script) of run folders, study outputs and .lbq files"));
}

}  // namespace lowbit::cli
