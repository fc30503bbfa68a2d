// The `lowbit` command. Exit codes: 0 success, 1 a lowbit::Error (or other failure) with its
// message on stderr, 2 a usage error (unknown flag, bad value, missing argument).
#include <iostream>

#include "base/error.h"
#include "cli/commands.h"
#include "cli/heap_reuse.h"
#include "qat/qat_run.h"
#include "report/run_provenance.h"

namespace {

// First line only: the rest of a c10::Error message is a C++ stack trace.
std::string first_line(const std::string& s) { return s.substr(0, s.find('\n')); }

}  // namespace

int main(int argc, char** argv) {
  lowbit::cli::keep_freed_memory_for_reuse();  // before LibTorch allocates anything
  lowbit::set_command_line(argc, argv);  // recorded in the config.json of the runs this command writes
  CLI::App app{"lowbit: low-bit neural networks (training, QAT, integer runtime)", "lowbit"};
  app.require_subcommand(1);
  app.set_help_all_flag("--help-all", "Show help for all commands");
  lowbit::cli::add_train_command(app);
  lowbit::cli::add_eval_command(app);
  lowbit::cli::add_qat_command(app);
  lowbit::cli::add_convert_command(app);
  lowbit::cli::add_export_command(app);
  lowbit::cli::add_ptq_command(app);
  lowbit::cli::add_study_command(app);
  lowbit::cli::add_analyze_command(app);
  lowbit::cli::add_runtime_commands(app);
  lowbit::cli::add_generate_command(app);
  lowbit::cli::add_report_command(app);
  lowbit::cli::add_launch_command(app);
  lowbit::cli::add_search_command(app);
  lowbit::qat::register_checkpoint_hook();  // so QAT checkpoints can be loaded by every command

  try {
    app.parse(argc, argv);  // subcommand callbacks run in here
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    // CLI11 uses its own exit codes (105, 106, ...); lowbit uses 2 for every usage error.
    std::cerr << "lowbit: error: " << first_line(e.what()) << " (run 'lowbit --help' or 'lowbit <command> --help')\n";
    return 2;
  } catch (const lowbit::Error& e) {
    std::cerr << "lowbit: error: " << e.what() << "\n";
    return 1;
  } catch (const c10::Error& e) {
    std::cerr << "lowbit: internal error: " << first_line(e.what_without_backtrace()) << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "lowbit: error: " << first_line(e.what()) << "\n";
    return 1;
  }
  return 0;
}
