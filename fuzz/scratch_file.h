// For harnesses whose reader takes a path, not bytes (gzopen, the text corpus walker): one
// scratch file per fuzzing process, in /dev/shm when the machine has it, because writing the
// input to disk on every execution otherwise costs more than reading it back.
#pragma once
#include <sys/stat.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>

namespace lowbit::fuzz {

inline const std::string& scratch_path(const char* tag) {
  static const std::string path = [tag] {
    struct stat st {};
    const bool shm = ::stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) && ::access("/dev/shm", W_OK) == 0;
    return std::string(shm ? "/dev/shm/" : "/tmp/") + tag + "." + std::to_string(::getpid());
  }();
  return path;
}

// Writes `size` bytes to the scratch file and returns its path; traps when it cannot (a harness
// bug, not a finding).
inline const std::string& write_scratch_file(const char* tag, const uint8_t* data, size_t size) {
  const std::string& path = scratch_path(tag);
  FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) __builtin_trap();
  if (size > 0 && std::fwrite(data, 1, size, f) != size) __builtin_trap();
  if (std::fclose(f) != 0) __builtin_trap();
  return path;
}

}  // namespace lowbit::fuzz
