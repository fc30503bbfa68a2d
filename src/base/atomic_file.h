// Files users keep (checkpoints, model files, results) are written atomically:
// write to a temporary file beside the target, flush and fsync it, then rename over
// the target. A crash or an error leaves the previous file untouched.
#pragma once
#include <functional>
#include <ostream>
#include <string>

namespace lowbit {

// Calls `write` with a stream onto a temporary file, then renames it to `path`.
// If `write` throws or the stream fails, the temporary file is removed and the
// error is rethrown as lowbit::Error naming `path`; `path` itself is never touched.
void write_file_atomically(const std::string& path,
                           const std::function<void(std::ostream&)>& write);

// Convenience for data already in memory.
void write_file_atomically(const std::string& path, const std::string& bytes);

// Reads a whole file; throws lowbit::Error naming the file if it cannot be read.
std::string read_whole_file(const std::string& path);

}  // namespace lowbit
