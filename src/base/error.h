// lowbit's one exception type. Messages say what was wrong and what to do
// (which file, which key, which shape), so the CLI can print them as they are.
#pragma once
#include <stdexcept>
#include <string>

namespace lowbit {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

// A user-facing check that stays in release builds (unlike assert).
#define LOWBIT_CHECK(cond, message)                      \
  do {                                                   \
    if (!(cond)) throw ::lowbit::Error(message);         \
  } while (0)

}  // namespace lowbit
