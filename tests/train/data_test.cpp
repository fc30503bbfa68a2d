#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>

#include "base/error.h"
#include "data/fashion_mnist.h"
#include "train/test_files.h"

namespace lowbit::data {
namespace {

using lowbit::testing::fresh_test_dir;
using lowbit::testing::idx_images;
using lowbit::testing::idx_labels;
using lowbit::testing::write_gz;

std::vector<uint8_t> ramp_pixels(uint32_t count) {
  std::vector<uint8_t> p(static_cast<size_t>(count) * 784);
  for (size_t i = 0; i < p.size(); ++i) p[i] = static_cast<uint8_t>(i % 256);
  return p;
}

// Expects a lowbit::Error whose message contains every fragment.
template <typename Fn>
void expect_error(Fn fn, const std::vector<std::string>& fragments) {
  try {
    fn();
    FAIL() << "expected lowbit::Error";
  } catch (const Error& e) {
    for (const auto& f : fragments) EXPECT_NE(std::string(e.what()).find(f), std::string::npos) << e.what();
  }
}

TEST(FashionMnistData, LoadsSmallIdxFiles) {
  const auto dir = fresh_test_dir();
  write_gz(dir + "/t10k-images-idx3-ubyte.gz", idx_images(ramp_pixels(3), 3));
  write_gz(dir + "/t10k-labels-idx1-ubyte.gz", idx_labels({7, 0, 9}));
  const auto raw = load_fashion_mnist_raw(dir, "test");
  EXPECT_EQ(raw.count, 3);
  EXPECT_EQ(raw.pixels.size(), 3u * 784);
  EXPECT_EQ(raw.pixels[300], 300 % 256);
  const auto d = load_fashion_mnist(dir, "test");
  ASSERT_EQ(d.images.sizes(), (std::vector<int64_t>{3, 1, 28, 28}));
  EXPECT_EQ(d.images.dtype(), torch::kFloat32);
  EXPECT_EQ(d.labels.dtype(), torch::kInt64);
  EXPECT_EQ(d.labels[0].item<int64_t>(), 7);
  EXPECT_EQ(d.labels[2].item<int64_t>(), 9);
  // pixel / 255 exactly: index 300 in the flat layout is image 0, row 10, col 20.
  EXPECT_FLOAT_EQ(d.images[0][0][10][20].item<float>(), static_cast<float>(300 % 256) / 255.0f);
  EXPECT_FLOAT_EQ(d.images.max().item<float>(), 1.0f);
}

TEST(FashionMnistData, WrongMagicNamesFileAndExpectedValue) {
  const auto dir = fresh_test_dir();
  write_gz(dir + "/t10k-images-idx3-ubyte.gz", idx_images(ramp_pixels(1), 1, 28, 28, /*magic=*/2049));
  write_gz(dir + "/t10k-labels-idx1-ubyte.gz", idx_labels({1}));
  expect_error([&] { load_fashion_mnist(dir, "test"); }, {"t10k-images-idx3-ubyte.gz", "2049", "expected 2051"});
  write_gz(dir + "/t10k-images-idx3-ubyte.gz", idx_images(ramp_pixels(1), 1));
  write_gz(dir + "/t10k-labels-idx1-ubyte.gz", idx_labels({1}, /*magic=*/2051));
  expect_error([&] { load_fashion_mnist(dir, "test"); }, {"t10k-labels-idx1-ubyte.gz", "expected 2049"});
}

TEST(FashionMnistData, TruncatedFilesAreRejected) {
  const auto dir = fresh_test_dir();
  auto images = idx_images(ramp_pixels(2), 2);
  write_gz(dir + "/img.gz", images.substr(0, images.size() - 10));
  expect_error([&] { read_idx_images(dir + "/img.gz"); }, {"img.gz", "truncated", "expected 1568 bytes", "found 1558"});
  write_gz(dir + "/hdr.gz", images.substr(0, 6));
  expect_error([&] { read_idx_images(dir + "/hdr.gz"); }, {"hdr.gz", "truncated"});
  auto labels = idx_labels({1, 2, 3});
  write_gz(dir + "/lab.gz", labels.substr(0, labels.size() - 1));
  expect_error([&] { read_idx_labels(dir + "/lab.gz"); }, {"lab.gz", "truncated"});
}

TEST(FashionMnistData, CountMismatchShapeAndLabelRangeAreChecked) {
  const auto dir = fresh_test_dir();
  write_gz(dir + "/train-images-idx3-ubyte.gz", idx_images(ramp_pixels(2), 2));
  write_gz(dir + "/train-labels-idx1-ubyte.gz", idx_labels({1, 2, 3}));
  expect_error([&] { load_fashion_mnist(dir, "train"); }, {"2 images", "3 labels"});
  write_gz(dir + "/train-labels-idx1-ubyte.gz", idx_labels({1, 12}));
  expect_error([&] { load_fashion_mnist(dir, "train"); }, {"label 12", "index 1"});
  write_gz(dir + "/train-images-idx3-ubyte.gz", idx_images(std::vector<uint8_t>(2 * 100), 2, 10, 10));
  write_gz(dir + "/train-labels-idx1-ubyte.gz", idx_labels({1, 2}));
  expect_error([&] { load_fashion_mnist(dir, "train"); }, {"10x10", "28x28"});
}

TEST(FashionMnistData, MissingFilesAndBadSplitSayWhatToDo) {
  const auto dir = fresh_test_dir();
  expect_error([&] { load_fashion_mnist(dir, "test"); }, {"t10k-images-idx3-ubyte.gz", "LOWBIT_DATA", "--data"});
  expect_error([&] { load_fashion_mnist(dir, "validation"); }, {"'validation'", "'train' or 'test'"});
}

TEST(FashionMnistData, DataDirComesFromFlagThenEnvironmentThenDefault) {
  ::unsetenv("LOWBIT_DATA");
  EXPECT_EQ(default_data_dir(), "/usr/share/datasets/fashion-mnist");
  ::setenv("LOWBIT_DATA", "/somewhere", 1);
  EXPECT_EQ(default_data_dir(), "/somewhere");
  EXPECT_EQ(resolve_data_dir(""), "/somewhere");
  EXPECT_EQ(resolve_data_dir("/flag"), "/flag");
  ::unsetenv("LOWBIT_DATA");
}

TEST(FashionMnistData, ValidationSplitIsTheLastExamples) {
  Dataset full;
  full.images = torch::arange(10, torch::kFloat32).reshape({10, 1, 1, 1});
  full.labels = torch::arange(10, torch::kInt64);
  const auto s = split_train_validation(full, 3);
  EXPECT_EQ(s.train.size(), 7);
  EXPECT_EQ(s.validation.size(), 3);
  EXPECT_EQ(s.validation.labels[0].item<int64_t>(), 7);
  EXPECT_EQ(s.train.labels[6].item<int64_t>(), 6);
  EXPECT_EQ(split_train_validation(full, 0).validation.size(), 0);
  EXPECT_THROW(split_train_validation(full, 10), Error);
}

TEST(FashionMnistData, RealTestSplitIfInstalled) {
  const std::string dir = "/usr/share/datasets/fashion-mnist";
  if (!std::filesystem::exists(dir + "/t10k-images-idx3-ubyte.gz")) GTEST_SKIP() << "dataset not installed";
  const auto d = load_fashion_mnist(dir, "test");
  EXPECT_EQ(d.size(), 10000);
  // Fashion-MNIST's test split is balanced: 1,000 images per class.
  const auto counts = torch::bincount(d.labels);
  EXPECT_TRUE(torch::equal(counts, torch::full({10}, 1000, torch::kInt64)));
  EXPECT_GE(d.images.min().item<float>(), 0.0f);
  EXPECT_LE(d.images.max().item<float>(), 1.0f);
}

}  // namespace
}  // namespace lowbit::data
