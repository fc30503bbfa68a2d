// `lowbit launch --nproc N -- lowbit qat ...`: starts N processes of a command on this host with
// torchrun's variables (RANK, LOCAL_RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT), waits for them,
// and stops them all when one fails. See docs/distributed.md.
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "base/error.h"
#include "cli/commands.h"

namespace lowbit::cli {
namespace {

struct LaunchArgs {
  int nproc = 2;
  std::string master_addr = "127.0.0.1";
  int master_port = 0;
  int threads = 0;
  std::vector<std::string> command;
};

// A port the kernel reports free now (another program could take it before rank 0 binds it;
// rank 0 then fails with a message naming MASTER_PORT).
int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  LOWBIT_CHECK(fd >= 0, std::string("launch: cannot open a socket to find a free port: ") + std::strerror(errno));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof(a);
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0 &&
                  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0;
  ::close(fd);
  LOWBIT_CHECK(ok, "launch: cannot find a free port; pass --master-port");
  return ntohs(a.sin_port);
}

std::string describe(int status) {
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    const int sig = WTERMSIG(status);
    return "was killed by signal " + std::to_string(sig) + " (" + strsignal(sig) + ")";
  }
  return "ended with wait status " + std::to_string(status);
}

volatile sig_atomic_t g_stop_signal = 0;
void on_signal(int sig) { g_stop_signal = sig; }

void run(const LaunchArgs& args) {
  LOWBIT_CHECK(!args.command.empty(), "launch: give the command after --, e.g. lowbit launch --nproc 2 -- lowbit qat ...");
  const int port = args.master_port > 0 ? args.master_port : free_port();
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  const int threads = args.threads > 0 ? args.threads : std::max(1, static_cast<int>(cores) / args.nproc);
  // "lowbit" means this very binary, so a build tree's lowbit launches itself.
  std::string program = args.command[0];
  if (program == "lowbit") program = "/proc/self/exe";

  struct sigaction sa{};
  sa.sa_handler = on_signal;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);

  std::vector<pid_t> pids(static_cast<size_t>(args.nproc), -1);
  const pid_t launcher = ::getpid();
  for (int r = 0; r < args.nproc; ++r) {
    const pid_t pid = ::fork();
    LOWBIT_CHECK(pid >= 0, std::string("launch: fork failed: ") + std::strerror(errno));
    if (pid == 0) {
      // The ranks end with the launcher, even if it is killed with SIGKILL.
      ::prctl(PR_SET_PDEATHSIG, SIGTERM);
      if (::getppid() != launcher) ::_exit(1);
      signal(SIGINT, SIG_DFL);
      signal(SIGTERM, SIG_DFL);
      ::setenv("RANK", std::to_string(r).c_str(), 1);
      ::setenv("LOCAL_RANK", std::to_string(r).c_str(), 1);
      ::setenv("WORLD_SIZE", std::to_string(args.nproc).c_str(), 1);
      ::setenv("LOCAL_WORLD_SIZE", std::to_string(args.nproc).c_str(), 1);
      ::setenv("MASTER_ADDR", args.master_addr.c_str(), 1);
      ::setenv("MASTER_PORT", std::to_string(port).c_str(), 1);
      ::setenv("LOWBIT_THREADS", std::to_string(threads).c_str(), 1);
      ::setenv("OMP_NUM_THREADS", std::to_string(threads).c_str(), 1);
      std::vector<char*> argv;
      for (const auto& a : args.command) argv.push_back(const_cast<char*>(a.c_str()));
      argv.push_back(nullptr);
      ::execvp(program.c_str(), argv.data());
      std::cerr << "lowbit launch: rank " << r << ": cannot run '" << args.command[0] << "': " << std::strerror(errno) << "\n";
      ::_exit(127);
    }
    pids[static_cast<size_t>(r)] = pid;
  }

  int running = args.nproc;
  std::vector<std::string> failures;
  bool stopping = false;
  auto stop_all = [&](int sig) {
    for (pid_t p : pids) {
      if (p > 0) ::kill(p, sig);
    }
  };
  auto deadline = std::chrono::steady_clock::time_point::max();
  while (running > 0) {
    int status = 0;
    const pid_t pid = ::waitpid(-1, &status, WNOHANG);
    if (pid > 0) {
      for (int r = 0; r < args.nproc; ++r) {
        if (pids[static_cast<size_t>(r)] != pid) continue;
        pids[static_cast<size_t>(r)] = -1;
        --running;
        const bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
        if (!ok) {
          failures.push_back("rank " + std::to_string(r) + " " + describe(status));
          std::cerr << "lowbit launch: " << failures.back() << (failures.size() == 1 ? "; stopping the other ranks" : "") << "\n";
        }
      }
      continue;
    }
    if (g_stop_signal != 0 && !stopping) {
      failures.push_back(std::string("the launcher received ") + strsignal(g_stop_signal));
    }
    if (!failures.empty() && !stopping) {
      stopping = true;
      stop_all(SIGTERM);
      deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    }
    if (stopping && std::chrono::steady_clock::now() > deadline) {
      stop_all(SIGKILL);
      deadline = std::chrono::steady_clock::time_point::max();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (!failures.empty()) {
    std::string all;
    for (const auto& f : failures) all += (all.empty() ? "" : "; ") + f;
    throw Error("launch: " + all + " (the first listed failed first; the other ranks were stopped)");
  }
}

}  // namespace

void add_launch_command(CLI::App& app) {
  auto args = std::make_shared<LaunchArgs>();
  CLI::App* cmd = app.add_subcommand(
      "launch", "Run N processes of a command (lowbit train / qat) as one data-parallel job on this host");
  cmd->add_option("--nproc", args->nproc, "Number of processes (ranks)")->check(CLI::Range(1, 256))->capture_default_str();
  cmd->add_option("--master-addr", args->master_addr, "Rendezvous address (rank 0 serves it)")->capture_default_str();
  cmd->add_option("--master-port", args->master_port, "Rendezvous port (0: a free one)")
      ->check(CLI::Range(0, 65535))->capture_default_str();
  cmd->add_option("--threads", args->threads, "Torch threads per process (0: cores / nproc); sets LOWBIT_THREADS")
      ->check(CLI::Range(0, 1024))->capture_default_str();
  cmd->add_option("command", args->command, "The command after --, e.g. -- lowbit qat --from runs/cnn ...")->required();
  cmd->callback([args] { run(*args); });
}

}  // namespace lowbit::cli
