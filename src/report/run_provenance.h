// How a run came about: the command line and the machine, stored in the run's config.json as
// "provenance" by `lowbit train`, `lowbit qat` and `lowbit ptq`, and shown by `lowbit report`.
// Torch-free (it lives beside the report, which reads it; the runtime gives the kernel level).
#pragma once
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace lowbit {

// main() stashes its arguments here, so that library code writing a run can record them without
// every command passing argv down.
void set_command_line(int argc, const char* const* argv);
std::vector<std::string> command_line_args();  // empty until set

// One argument as a POSIX shell word: unchanged if it holds only characters no shell treats
// specially, otherwise in single quotes (a ' inside becomes '\''); "" for the empty argument.
std::string shell_quote(const std::string& arg);
// The arguments joined by spaces, each quoted: pasting it into a shell repeats the command.
std::string shell_command(const std::vector<std::string>& args);

// {"command": shell_command(argv), "argv": [...], "cwd", "host", "cpu", "logical_cores", "isa",
//  "os", "date_utc"}; each item this machine cannot tell is null. Never throws.
nlohmann::json run_provenance();

// config.json of a run: `config` with "provenance" set to run_provenance().
nlohmann::json with_provenance(nlohmann::json config);

}  // namespace lowbit
