// NumPy's .npz archives (numpy.savez / savez_compressed): a zip file whose members are .npy
// arrays. Read with zlib alone (stored and deflated members, zip64 sizes as numpy writes them);
// no LibTorch, so fuzz/npy_fuzz.cpp can drive it.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "data/npy_array.h"

namespace lowbit::data {

class NpzArchive {
 public:
  // Reads the whole file and its central directory; throws lowbit::Error naming the file.
  explicit NpzArchive(const std::string& path);
  // The same from bytes in memory; `name` goes into error messages.
  NpzArchive(std::vector<uint8_t> bytes, std::string name);

  // Array names without ".npy" ("x_train"), in archive order.
  std::vector<std::string> array_names() const;
  bool has(const std::string& array) const;
  // Inflates and parses one member; throws naming the archive and the array.
  NpyArray array(const std::string& array) const;

 private:
  struct Member {
    std::string name;
    uint16_t method = 0;
    uint32_t crc = 0;
    uint64_t compressed = 0;
    uint64_t size = 0;
    uint64_t local_offset = 0;
  };
  void read_directory();
  std::vector<uint8_t> bytes_;
  std::string name_;
  std::vector<Member> members_;
};

}  // namespace lowbit::data
