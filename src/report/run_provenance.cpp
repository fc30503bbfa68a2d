#include "report/run_provenance.h"

#include <sys/utsname.h>
#include <unistd.h>

#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>

#include "runtime/cpu_features.h"

namespace lowbit {
namespace {

std::mutex& args_mutex() {
  static std::mutex m;
  return m;
}

std::vector<std::string>& stored_args() {
  static std::vector<std::string> args;
  return args;
}

// The CPU's marketing name: "model name" on x86, else what aarch64 kernels print.
nlohmann::json cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    for (const char* key : {"model name", "Hardware", "Model"}) {
      if (line.rfind(key, 0) != 0) continue;
      const size_t colon = line.find(':');
      if (colon == std::string::npos) continue;
      std::string v = line.substr(colon + 1);
      v.erase(0, v.find_first_not_of(" \t"));
      if (!v.empty()) return v;
    }
  }
  return nullptr;
}

}  // namespace

void set_command_line(int argc, const char* const* argv) {
  std::lock_guard<std::mutex> lock(args_mutex());
  stored_args().assign(argv, argv + argc);
}

std::vector<std::string> command_line_args() {
  std::lock_guard<std::mutex> lock(args_mutex());
  return stored_args();
}

std::string shell_quote(const std::string& arg) {
  if (arg.empty()) return "''";
  // Characters that mean nothing to sh, bash or zsh in a word ('=' and ':' too, so that
  // --out=runs/x stays readable; '~' and '*' are special).
  const bool plain = arg.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                                           "-_./=:,+@%") == std::string::npos;
  if (plain) return arg;
  std::string out = "'";
  for (char c : arg) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

std::string shell_command(const std::vector<std::string>& args) {
  std::string out;
  for (const auto& a : args) out += (out.empty() ? "" : " ") + shell_quote(a);
  return out;
}

nlohmann::json run_provenance() {
  nlohmann::json j;
  const std::vector<std::string> args = command_line_args();
  j["command"] = args.empty() ? nlohmann::json(nullptr) : nlohmann::json(shell_command(args));
  j["argv"] = args;
  std::error_code ec;
  const auto cwd = std::filesystem::current_path(ec);
  j["cwd"] = ec ? nlohmann::json(nullptr) : nlohmann::json(cwd.string());
  char host[256] = {0};
  j["host"] = gethostname(host, sizeof host - 1) == 0 ? nlohmann::json(std::string(host)) : nlohmann::json(nullptr);
  j["cpu"] = cpu_model();
  const unsigned cores = std::thread::hardware_concurrency();
  j["logical_cores"] = cores > 0 ? nlohmann::json(cores) : nlohmann::json(nullptr);
  try {
    j["isa"] = runtime::isa_name(runtime::supported_isas().front());  // the best level the runtime can use here
  } catch (...) {
    j["isa"] = nullptr;
  }
  struct utsname u;
  j["os"] = uname(&u) == 0 ? nlohmann::json(std::string(u.sysname) + " " + u.release + " " + u.machine)
                           : nlohmann::json(nullptr);
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  char date[32];
  j["date_utc"] = gmtime_r(&now, &tm) != nullptr && std::strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", &tm) > 0
                      ? nlohmann::json(std::string(date))
                      : nlohmann::json(nullptr);
  return j;
}

nlohmann::json with_provenance(nlohmann::json config) {
  if (config.is_object()) config["provenance"] = run_provenance();
  return config;
}

}  // namespace lowbit
