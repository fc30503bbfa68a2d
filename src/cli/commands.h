// One function per `lowbit` subcommand, each in its own <name>_command.cpp. To add a command,
// write the file and add one line to main.cpp.
#pragma once
#include <CLI/CLI.hpp>

namespace lowbit::cli {

void add_train_command(CLI::App& app);
void add_eval_command(CLI::App& app);
void add_qat_command(CLI::App& app);
void add_convert_command(CLI::App& app);
void add_runtime_commands(CLI::App& app);  // run, bench, inspect

}  // namespace lowbit::cli
