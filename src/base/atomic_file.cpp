#include "base/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "base/error.h"

namespace lowbit {
namespace {

std::string errno_text() { return std::strerror(errno); }

// fsync so that the rename below publishes data that is really on disk.
void sync_file(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

}  // namespace

void write_file_atomically(const std::string& path,
                           const std::function<void(std::ostream&)>& write) {
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  try {
    {
      std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
      if (!out) {
        throw Error("cannot create '" + tmp + "': " + errno_text() +
                    " (check that the folder exists and is writable)");
      }
      write(out);
      out.flush();
      if (!out) throw Error("writing '" + tmp + "' failed: " + errno_text());
    }
    sync_file(tmp);
    if (std::rename(tmp.c_str(), path.c_str()) != 0) {
      throw Error("cannot rename '" + tmp + "' to '" + path + "': " + errno_text());
    }
  } catch (const Error&) {
    std::remove(tmp.c_str());
    throw;
  } catch (const std::exception& e) {
    std::remove(tmp.c_str());
    throw Error("writing '" + path + "' failed: " + e.what() + " (the previous file, if any, is unchanged)");
  }
}

void write_file_atomically(const std::string& path, const std::string& bytes) {
  write_file_atomically(path, [&](std::ostream& out) { out.write(bytes.data(), static_cast<std::streamsize>(bytes.size())); });
}

std::string read_whole_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot open '" + path + "': " + errno_text());
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) throw Error("reading '" + path + "' failed: " + errno_text());
  return ss.str();
}

}  // namespace lowbit
