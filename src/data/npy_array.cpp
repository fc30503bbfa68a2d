#include "data/npy_array.h"

#include <cctype>
#include <cstring>
#include <fstream>
#include <limits>

#include "base/error.h"

namespace lowbit::data {
namespace {

// A corrupt shape must not make us allocate without bound; 2^31 bytes is far above any data set
// lowbit trains on and matches the IDX reader's limit.
constexpr int64_t kMaxBytes = int64_t{1} << 31;

const char kHelp[] = " (write it with numpy.save / numpy.savez from a C-ordered little-endian array, "
                     "e.g. np.save(path, np.ascontiguousarray(x)))";

// The header is a Python dict literal: {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }.
// This parser reads exactly that grammar and nothing more.
class HeaderParser {
 public:
  HeaderParser(std::string text, std::string name) : s_(std::move(text)), name_(std::move(name)) {}

  // The text right after "'key':" (spaces skipped), or an error naming the key.
  size_t value_of(const std::string& key) {
    const std::string quoted1 = "'" + key + "'";
    const std::string quoted2 = "\"" + key + "\"";
    size_t p = s_.find(quoted1);
    size_t len = quoted1.size();
    if (p == std::string::npos) {
      p = s_.find(quoted2);
      len = quoted2.size();
    }
    if (p == std::string::npos) fail("has no '" + key + "' entry");
    p = skip_spaces(p + len);
    if (p >= s_.size() || s_[p] != ':') fail("has no ':' after '" + key + "'");
    return skip_spaces(p + 1);
  }

  std::string string_at(size_t p, const std::string& key) {
    if (p >= s_.size() || (s_[p] != '\'' && s_[p] != '"')) fail("'" + key + "' is not a string");
    const size_t end = s_.find(s_[p], p + 1);
    if (end == std::string::npos) fail("'" + key + "' has an unterminated string");
    return s_.substr(p + 1, end - p - 1);
  }

  bool bool_at(size_t p, const std::string& key) {
    if (s_.compare(p, 4, "True") == 0) return true;
    if (s_.compare(p, 5, "False") == 0) return false;
    fail("'" + key + "' is neither True nor False");
    return false;
  }

  std::vector<int64_t> tuple_at(size_t p, const std::string& key) {
    if (p >= s_.size() || s_[p] != '(') fail("'" + key + "' is not a tuple");
    std::vector<int64_t> dims;
    ++p;
    for (;;) {
      p = skip_spaces(p);
      if (p >= s_.size()) fail("'" + key + "' has an unterminated tuple");
      if (s_[p] == ')') break;
      if (!std::isdigit(static_cast<unsigned char>(s_[p]))) fail("'" + key + "' holds something else than non-negative integers");
      int64_t v = 0;
      while (p < s_.size() && std::isdigit(static_cast<unsigned char>(s_[p]))) {
        if (v > (int64_t{1} << 40)) fail("'" + key + "' holds a dimension too large (corrupt header?)");
        v = v * 10 + (s_[p] - '0');
        ++p;
      }
      // NumPy on Windows once wrote "3L"; accept it.
      if (p < s_.size() && s_[p] == 'L') ++p;
      dims.push_back(v);
      if (dims.size() > 8) fail("'" + key + "' has more than 8 dimensions");
      p = skip_spaces(p);
      if (p < s_.size() && s_[p] == ',') ++p;
    }
    return dims;
  }

  [[noreturn]] void fail(const std::string& what) const {
    throw Error("'" + name_ + "' is not a valid .npy array: its header " + what + std::string(kHelp));
  }

 private:
  size_t skip_spaces(size_t p) const {
    while (p < s_.size() && (s_[p] == ' ' || s_[p] == '\t' || s_[p] == '\n')) ++p;
    return p;
  }
  std::string s_;
  std::string name_;
};

uint64_t little_endian(const uint8_t* p, int bytes) {
  uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

}  // namespace

int64_t NpyArray::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

int NpyArray::item_size() const {
  if (dtype == "u1" || dtype == "i1") return 1;
  if (dtype == "i4" || dtype == "f4") return 4;
  return 8;  // i8, f8
}

double NpyArray::value(int64_t i) const {
  const uint8_t* p = bytes.data() + i * item_size();
  if (dtype == "f4") {
    float f;
    std::memcpy(&f, p, 4);  // little-endian host (x86-64, aarch64): as stored
    return f;
  }
  if (dtype == "f8") {
    double d;
    std::memcpy(&d, p, 8);
    return d;
  }
  return static_cast<double>(integer(i));
}

int64_t NpyArray::integer(int64_t i) const {
  const uint8_t* p = bytes.data() + i * item_size();
  if (dtype == "u1") return p[0];
  if (dtype == "i1") return static_cast<int8_t>(p[0]);
  if (dtype == "i4") return static_cast<int32_t>(static_cast<uint32_t>(little_endian(p, 4)));
  if (dtype == "i8") return static_cast<int64_t>(little_endian(p, 8));
  const double v = value(i);  // float labels: only whole numbers are labels
  if (!(v >= -1e15 && v <= 1e15)) return -1;
  return static_cast<int64_t>(v) == v ? static_cast<int64_t>(v) : -1;
}

std::string shape_string(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

NpyArray parse_npy(const uint8_t* data, size_t size, const std::string& name) {
  static const uint8_t kMagic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};
  if (size < 10 || std::memcmp(data, kMagic, 6) != 0) {
    throw Error("'" + name + "' is not a .npy array: it does not start with the magic bytes \\x93NUMPY" +
                std::string(kHelp));
  }
  const int major = data[6];
  size_t header_len = 0;
  size_t offset = 0;
  if (major == 1) {
    header_len = static_cast<size_t>(little_endian(data + 8, 2));
    offset = 10;
  } else if (major == 2 || major == 3) {
    LOWBIT_CHECK(size >= 12, "'" + name + "' is truncated inside its .npy header" + std::string(kHelp));
    header_len = static_cast<size_t>(little_endian(data + 8, 4));
    offset = 12;
  } else {
    throw Error("'" + name + "' is .npy format version " + std::to_string(major) + "; lowbit reads versions 1 to 3" +
                std::string(kHelp));
  }
  LOWBIT_CHECK(header_len <= size - offset, "'" + name + "' is truncated: its .npy header declares " +
                                                std::to_string(header_len) + " bytes but only " +
                                                std::to_string(size - offset) + " follow" + std::string(kHelp));
  HeaderParser h(std::string(reinterpret_cast<const char*>(data + offset), header_len), name);
  const std::string descr = h.string_at(h.value_of("descr"), "descr");
  const bool fortran = h.bool_at(h.value_of("fortran_order"), "fortran_order");
  NpyArray a;
  a.shape = h.tuple_at(h.value_of("shape"), "shape");
  LOWBIT_CHECK(!fortran, "'" + name + "' is stored in Fortran order (fortran_order: True); lowbit reads C order: "
                         "save np.ascontiguousarray(x) instead");
  LOWBIT_CHECK(descr.size() >= 2, "'" + name + "' has dtype '" + descr + "'; expected uint8, int32, int64 or float32");
  const char order = descr[0];
  std::string code = descr.substr(1);
  const bool one_byte = code == "u1" || code == "i1" || code == "b1";
  LOWBIT_CHECK(order == '<' || order == '|' || (order == '=' ) || (one_byte && order == '>'),
               "'" + name + "' has big-endian dtype '" + descr + "'; lowbit reads little-endian arrays: save "
               "x.astype(x.dtype.newbyteorder('<')) instead");
  if (code == "b1") code = "u1";
  LOWBIT_CHECK(code == "u1" || code == "i1" || code == "i4" || code == "i8" || code == "f4" || code == "f8",
               "'" + name + "' has dtype '" + descr + "'; lowbit reads uint8, int8, int32, int64, float32 and "
               "float64 (convert with x.astype(np.float32) or x.astype(np.uint8))");
  a.dtype = code;
  int64_t bytes = a.item_size();
  for (int64_t d : a.shape) {
    LOWBIT_CHECK(d == 0 || bytes <= kMaxBytes / d, "'" + name + "' declares shape " + shape_string(a.shape) +
                                                       ", more than lowbit can hold (2 GiB; corrupt header?)");
    bytes *= d;
  }
  const size_t data_at = offset + header_len;
  const size_t available = size - data_at;
  LOWBIT_CHECK(static_cast<uint64_t>(bytes) <= available,
               "'" + name + "' is truncated: shape " + shape_string(a.shape) + " of " + descr + " needs " +
                   std::to_string(bytes) + " bytes of data but only " + std::to_string(available) + " follow the header");
  LOWBIT_CHECK(static_cast<uint64_t>(bytes) == available,
               "'" + name + "' has " + std::to_string(available - static_cast<size_t>(bytes)) +
                   " bytes after the data of shape " + shape_string(a.shape) + " (corrupt file?)");
  a.bytes.assign(data + data_at, data + data_at + bytes);
  return a;
}

std::vector<uint8_t> read_whole_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  LOWBIT_CHECK(in.good(), "cannot open '" + path + "' (check the path given to --data)");
  const std::streamoff size = in.tellg();
  LOWBIT_CHECK(size >= 0 && size <= kMaxBytes * 2, "'" + path + "' is larger than lowbit can read (4 GiB)");
  std::vector<uint8_t> bytes(static_cast<size_t>(size));
  in.seekg(0);
  if (size > 0) in.read(reinterpret_cast<char*>(bytes.data()), size);
  LOWBIT_CHECK(in.good() || in.eof(), "cannot read '" + path + "'");
  return bytes;
}

NpyArray read_npy_file(const std::string& path) {
  const std::vector<uint8_t> bytes = read_whole_file(path);
  return parse_npy(bytes.data(), bytes.size(), path);
}

}  // namespace lowbit::data
