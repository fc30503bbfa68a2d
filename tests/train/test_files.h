// Helpers for tests that write files: a fresh temp folder per test, and small IDX files.
#pragma once
#include <gtest/gtest.h>
#include <zlib.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

namespace lowbit::testing {

// $LOWBIT_TEST_TMP (set by ctest) or /tmp, plus the test's name; emptied first.
inline std::string fresh_test_dir() {
  const char* env = std::getenv("LOWBIT_TEST_TMP");
  const std::string base = (env != nullptr && env[0] != '\0') ? env : "/tmp/lowbit_test";
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  const std::string dir = base + "/" + info->test_suite_name() + "_" + info->name();
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

inline void put_be32(std::string& s, uint32_t v) {
  s.push_back(static_cast<char>(v >> 24));
  s.push_back(static_cast<char>(v >> 16));
  s.push_back(static_cast<char>(v >> 8));
  s.push_back(static_cast<char>(v));
}

inline void write_gz(const std::string& path, const std::string& bytes) {
  gzFile f = gzopen(path.c_str(), "wb");
  ASSERT_NE(f, nullptr) << path;
  if (!bytes.empty()) {
    ASSERT_EQ(gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size())), static_cast<int>(bytes.size()));
  }
  gzclose(f);
}

inline std::string idx_images(const std::vector<uint8_t>& pixels, uint32_t count, uint32_t rows = 28, uint32_t cols = 28,
                              uint32_t magic = 2051) {
  std::string s;
  put_be32(s, magic);
  put_be32(s, count);
  put_be32(s, rows);
  put_be32(s, cols);
  s.append(pixels.begin(), pixels.end());
  return s;
}

inline std::string idx_labels(const std::vector<uint8_t>& labels, uint32_t magic = 2049) {
  std::string s;
  put_be32(s, magic);
  put_be32(s, static_cast<uint32_t>(labels.size()));
  s.append(labels.begin(), labels.end());
  return s;
}

// A learnable toy split: label k images are dark except a bright horizontal band at rows
// [2k, 2k + 3), plus a little deterministic noise.
inline void write_toy_split(const std::string& dir, const std::string& prefix, uint32_t count) {
  std::vector<uint8_t> pixels(static_cast<size_t>(count) * 28 * 28);
  std::vector<uint8_t> labels(count);
  uint32_t noise = 12345;
  for (uint32_t i = 0; i < count; ++i) {
    const uint8_t label = static_cast<uint8_t>(i % 10);
    labels[i] = label;
    for (int r = 0; r < 28; ++r) {
      for (int c = 0; c < 28; ++c) {
        noise = noise * 1103515245u + 12345u;
        const bool band = r >= 2 * label && r < 2 * label + 3;
        pixels[(static_cast<size_t>(i) * 28 + r) * 28 + c] = static_cast<uint8_t>((band ? 200 : 0) + (noise >> 28));
      }
    }
  }
  write_gz(dir + "/" + prefix + "-images-idx3-ubyte.gz", idx_images(pixels, count));
  write_gz(dir + "/" + prefix + "-labels-idx1-ubyte.gz", idx_labels(labels));
}

}  // namespace lowbit::testing
