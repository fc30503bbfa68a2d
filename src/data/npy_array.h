// NumPy's .npy format (https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html),
// read without LibTorch so that the fuzzing harness (fuzz/npy_fuzz.cpp) and the integer runtime's
// tools can use it. Every length in the header is checked against the bytes that are really there.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace lowbit::data {

// One array as stored: little-endian, C order. `dtype` is NumPy's type code without the byte
// order: "u1", "i1", "i4", "i8", "f4" or "f8".
struct NpyArray {
  std::string dtype;
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;  // numel() * item_size(), C order, little-endian
  int64_t numel() const;
  int item_size() const;
  bool is_float() const { return dtype == "f4" || dtype == "f8"; }
  // Element i converted: images as float (f4/f8 as is, integers as their value), labels as int64.
  double value(int64_t i) const;
  int64_t integer(int64_t i) const;
};

// "[60000, 28, 28]"
std::string shape_string(const std::vector<int64_t>& shape);

// Parses a whole .npy file held in memory. `name` (a path, or "archive.npz:x_train") goes into
// every error message. Throws lowbit::Error for a bad magic, a truncated or malformed header, a
// big-endian or unsupported dtype, Fortran order, or data shorter or longer than the shape says.
NpyArray parse_npy(const uint8_t* data, size_t size, const std::string& name);
NpyArray read_npy_file(const std::string& path);

// The whole file, or a lowbit::Error naming it.
std::vector<uint8_t> read_whole_file(const std::string& path);

}  // namespace lowbit::data
