#include "base/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "base/error.h"

namespace lowbit {
namespace {

std::string errno_text(int err) { return std::strerror(err); }

std::string parent_dir(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

// What to do about a failed write: a full disk and a file-size limit get their own advice.
std::string write_advice(int err) {
  if (err == ENOSPC || err == EDQUOT) return " (the disk is full: free space and run again)";
  if (err == EFBIG) return " (the file is larger than this process may write: check 'ulimit -f')";
  return "";
}

// Writes all of `bytes` to `fd`, retrying short writes and EINTR. Returns 0 or the errno.
int write_all(int fd, const char* bytes, size_t n) {
  while (n > 0) {
    const ssize_t w = ::write(fd, bytes, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    bytes += w;
    n -= static_cast<size_t>(w);
  }
  return 0;
}

// After the rename, the directory entry itself must reach the disk, or a power cut can bring the
// old file back (or none). Some filesystems cannot fsync a directory (EINVAL): nothing to do there.
void sync_directory(const std::string& dir, const std::string& path) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0) throw Error("wrote '" + path + "' but cannot open its folder '" + dir + "' to sync it: " + errno_text(errno));
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0 && err != EINVAL && err != EROFS) {
    throw Error("wrote '" + path + "' but syncing its folder '" + dir + "' failed: " + errno_text(err));
  }
}

}  // namespace

void write_file_atomically(const std::string& path, const std::function<void(std::ostream&)>& write) {
  // Serialise in memory first: an exception from `write` never creates a file.
  std::ostringstream rendered;
  try {
    write(rendered);
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    throw Error("writing '" + path + "' failed: " + e.what() + " (the previous file, if any, is unchanged)");
  }
  if (!rendered) throw Error("writing '" + path + "' failed while serialising (the previous file, if any, is unchanged)");
  write_file_atomically(path, rendered.str());
}

void write_file_atomically(const std::string& path, const std::string& bytes) {
  // A unique temporary name beside the target (same filesystem, so the rename is atomic); two
  // threads or processes writing the same path never share a temporary file. O_EXCL instead of
  // mkstemp so that the file gets the usual permissions (0666 minus the umask).
  static std::atomic<uint64_t> counter{0};
  std::string tmp;
  int fd = -1;
  for (int attempt = 0; fd < 0; ++attempt) {
    const uint64_t stamp = static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
    tmp = path + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(counter.fetch_add(1)) + "." +
          std::to_string(stamp % 1000000007u);
    fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd < 0 && (errno != EEXIST || attempt >= 100)) {
      throw Error("cannot create a temporary file beside '" + path + "': " + errno_text(errno) +
                  write_advice(errno) + " (check that the folder exists and is writable)");
    }
  }
  auto fail = [&](const std::string& what, int err) {
    ::unlink(tmp.c_str());
    throw Error(what + ": " + errno_text(err) + write_advice(err) + " (the previous '" + path +
                "', if any, is unchanged)");
  };
  if (const int err = write_all(fd, bytes.data(), bytes.size()); err != 0) {
    ::close(fd);
    fail("writing '" + tmp + "' failed", err);
  }
  if (::fsync(fd) != 0) {
    const int err = errno;
    ::close(fd);
    fail("syncing '" + tmp + "' to disk failed", err);
  }
  if (::close(fd) != 0) fail("closing '" + tmp + "' failed", errno);
  if (std::rename(tmp.c_str(), path.c_str()) != 0) fail("cannot rename '" + tmp + "' to '" + path + "'", errno);
  sync_directory(parent_dir(path), path);
}

std::string read_whole_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot open '" + path + "': " + errno_text(errno));
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) throw Error("reading '" + path + "' failed: " + errno_text(errno));
  return ss.str();
}

}  // namespace lowbit
