// One function per `lowbit` subcommand, each in its own <name>_command.cpp. To add a command,
// write the file and add one line to main.cpp.
#pragma once
#include <CLI/CLI.hpp>

#include "runtime/session.h"

namespace lowbit::cli {

void add_train_command(CLI::App& app);
void add_eval_command(CLI::App& app);
void add_qat_command(CLI::App& app);
void add_convert_command(CLI::App& app);
void add_export_command(CLI::App& app);
void add_ptq_command(CLI::App& app);
void add_study_command(CLI::App& app);    // study ptq-vs-qat
void add_analyze_command(CLI::App& app);  // analyze basin, analyze toy
void add_runtime_commands(CLI::App& app);  // run, bench, inspect
void add_generate_command(CLI::App& app);  // generate (decoder models)
void add_report_command(CLI::App& app);    // report (HTML with plots)
// The report's options and action on `cmd` (also the whole of the LibTorch-free `lowbit-report`).
void configure_report_command(CLI::App& cmd);
void add_launch_command(CLI::App& app);    // launch (data-parallel processes)
void add_search_command(CLI::App& app);    // search mixed (mixed precision under a budget)

// Runtime session options for `threads` threads; the ISA comes from LOWBIT_ISA or the CPU.
inline runtime::SessionOptions session_options(int threads) {
  runtime::SessionOptions o;
  o.threads = threads;
  return o;
}

}  // namespace lowbit::cli
