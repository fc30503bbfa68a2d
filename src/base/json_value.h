// Strict reads of JSON values from config files (QAT config, training config, WinQ section).
// nlohmann's get<int>() casts whatever number it finds: 1e300 becomes undefined behaviour,
// 3.7 becomes 3, -1 becomes 18446744073709551615 for an unsigned field, true becomes 1.
// json_value_as<T> instead returns nothing unless the value is exactly a T:
//   bool         a JSON boolean;
//   std::string  a JSON string;
//   floating     any JSON number (not a boolean);
//   integral     a JSON integer within T's range, or a JSON number with a fraction of zero within
//                T's range (4.0, as other tools write whole numbers, reads as 4).
// Header-only; only code that already uses nlohmann_json includes it.
#pragma once
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <type_traits>

#include <nlohmann/json.hpp>

#include "base/error.h"

namespace lowbit {

template <typename T>
std::optional<T> json_value_as(const nlohmann::json& v) {
  if constexpr (std::is_same_v<T, bool>) {
    if (v.is_boolean()) return v.get<bool>();
    return std::nullopt;
  } else if constexpr (std::is_same_v<T, std::string>) {
    if (v.is_string()) return v.get<std::string>();
    return std::nullopt;
  } else if constexpr (std::is_floating_point_v<T>) {
    if (!v.is_number()) return std::nullopt;
    const double d = v.get<double>();
    if (std::isfinite(d) && std::fabs(d) > static_cast<double>(std::numeric_limits<T>::max())) return std::nullopt;
    return static_cast<T>(d);
  } else {
    static_assert(std::is_integral_v<T>, "json_value_as: bool, std::string, floating or integral types only");
    using Limits = std::numeric_limits<T>;
    if (v.is_number_unsigned()) {
      const uint64_t u = v.get<uint64_t>();
      if (u > static_cast<uint64_t>(Limits::max())) return std::nullopt;
      return static_cast<T>(u);
    }
    if (v.is_number_integer()) {
      const int64_t i = v.get<int64_t>();
      if constexpr (std::is_signed_v<T>) {
        if (i < static_cast<int64_t>(Limits::min()) || i > static_cast<int64_t>(Limits::max())) return std::nullopt;
      } else {
        if (i < 0 || static_cast<uint64_t>(i) > static_cast<uint64_t>(Limits::max())) return std::nullopt;
      }
      return static_cast<T>(i);
    }
    if (v.is_number_float()) {
      const double d = v.get<double>();
      // 2^digits is exact in double; T's max may not be (2^63 - 1 rounds up to 2^63).
      const double above_max = std::ldexp(1.0, Limits::digits);
      const double lowest = std::is_signed_v<T> ? -above_max : 0.0;
      if (!std::isfinite(d) || d != std::trunc(d) || d < lowest || d >= above_max) return std::nullopt;
      return static_cast<T>(d);
    }
    return std::nullopt;
  }
}

// Reads j[key] into `field` when the key is present (absent: `field` keeps its default). Throws
// lowbit::Error "<where>: key '<key>' has the wrong type or is out of range: <value>" otherwise.
template <typename T>
void read_json_key(const nlohmann::json& j, const char* key, T& field, const std::string& where) {
  const auto it = j.find(key);
  if (it == j.end()) return;
  const std::optional<T> x = json_value_as<T>(*it);
  if (!x) throw Error(where + ": key '" + key + "' has the wrong type or is out of range: " + it->dump());
  field = *x;
}

}  // namespace lowbit
