// `lowbit-report`: `lowbit report` without LibTorch. The `lowbit` binary spends most of a second
// (more on a loaded machine) in LibTorch's start-up before any command runs; a report needs none
// of it, so this program links only lowbit_report and the runtime. Same options and output.
#include <iostream>

#include "base/error.h"
#include "cli/commands.h"

int main(int argc, char** argv) {
  CLI::App app{"lowbit-report: one self-contained HTML page of runs, studies and .lbq files (as `lowbit report`)",
               "lowbit-report"};
  lowbit::cli::configure_report_command(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << "lowbit-report: error: " << e.what() << " (run 'lowbit-report --help')\n";
    return 2;
  } catch (const std::exception& e) {  // lowbit::Error included
    std::cerr << "lowbit-report: error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
