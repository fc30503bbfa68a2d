// Files users keep (checkpoints, model files, results) are written atomically: write to a
// uniquely named temporary file beside the target (O_EXCL), check every write, fsync it, rename
// it over the target, then fsync the folder so that the rename itself is durable. A crash, a full
// disk or any other error leaves the previous file untouched and removes the temporary file.
#pragma once
#include <functional>
#include <ostream>
#include <string>

namespace lowbit {

// Calls `write` with an in-memory stream, then writes the bytes as below. If `write` throws or
// the stream fails, nothing is written and the error is rethrown as lowbit::Error naming `path`.
void write_file_atomically(const std::string& path,
                           const std::function<void(std::ostream&)>& write);

// Writes `bytes` atomically; failures throw lowbit::Error naming the file, the system error and,
// for a full disk (ENOSPC) or a file-size limit (EFBIG), what to do.
void write_file_atomically(const std::string& path, const std::string& bytes);

// Reads a whole file; throws lowbit::Error naming the file if it cannot be read.
std::string read_whole_file(const std::string& path);

}  // namespace lowbit
