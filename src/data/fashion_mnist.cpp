#include "data/fashion_mnist.h"

#include <zlib.h>

#include <cstdlib>
#include <memory>

#include "base/error.h"

namespace lowbit::data {
namespace {

constexpr uint32_t kImagesMagic = 2051;  // 0x00000803: unsigned byte, 3 dimensions
constexpr uint32_t kLabelsMagic = 2049;  // 0x00000801: unsigned byte, 1 dimension
// Generous bound so a corrupt header cannot make us allocate gigabytes.
constexpr int64_t kMaxBytes = int64_t{1} << 31;

struct GzCloser {
  void operator()(gzFile_s* f) const { gzclose(f); }
};
using GzFile = std::unique_ptr<gzFile_s, GzCloser>;

GzFile open_gz(const std::string& path) {
  gzFile f = gzopen(path.c_str(), "rb");
  if (f == nullptr) {
    throw Error("cannot open '" + path +
                "' (set LOWBIT_DATA or pass --data DIR to the folder holding the Fashion-MNIST "
                ".gz files, or install the dataset-fashion-mnist package)");
  }
  return GzFile(f);
}

// Reads exactly `n` bytes; a short read means the file is truncated or corrupt.
void read_exact(gzFile f, const std::string& path, void* dst, int64_t n, const std::string& what) {
  auto* out = static_cast<char*>(dst);
  int64_t done = 0;
  while (done < n) {
    const int64_t chunk = std::min<int64_t>(n - done, int64_t{1} << 30);
    const int got = gzread(f, out + done, static_cast<unsigned>(chunk));
    if (got < 0) {
      int errnum = 0;
      const char* msg = gzerror(f, &errnum);
      throw Error("'" + path + "' is corrupt while reading " + what + ": " + msg +
                  " (re-download or reinstall the dataset)");
    }
    if (got == 0) break;
    done += got;
  }
  if (done != n) {
    throw Error("'" + path + "' is truncated: expected " + std::to_string(n) + " bytes of " + what +
                ", found " + std::to_string(done) + " (re-download or reinstall the dataset)");
  }
}

uint32_t read_be32(gzFile f, const std::string& path, const std::string& what) {
  unsigned char b[4];
  read_exact(f, path, b, 4, what);
  return (uint32_t{b[0]} << 24) | (uint32_t{b[1]} << 16) | (uint32_t{b[2]} << 8) | uint32_t{b[3]};
}

void check_magic(uint32_t magic, uint32_t expected, const std::string& path, const std::string& kind) {
  if (magic != expected) {
    throw Error("'" + path + "' is not an IDX " + kind + " file: magic number " +
                std::to_string(magic) + ", expected " + std::to_string(expected) +
                " (check that images and labels files are not swapped)");
  }
}

}  // namespace

std::string default_data_dir() {
  const char* env = std::getenv("LOWBIT_DATA");
  if (env != nullptr && env[0] != '\0') return env;
  return "/usr/share/datasets/fashion-mnist";
}

std::string resolve_data_dir(const std::string& flag) { return flag.empty() ? default_data_dir() : flag; }

RawImages read_idx_images(const std::string& path) {
  GzFile f = open_gz(path);
  RawImages raw;
  check_magic(read_be32(f.get(), path, "the header"), kImagesMagic, path, "images");
  raw.count = read_be32(f.get(), path, "the header");
  raw.rows = read_be32(f.get(), path, "the header");
  raw.cols = read_be32(f.get(), path, "the header");
  LOWBIT_CHECK(raw.rows > 0 && raw.cols > 0 && raw.rows <= 4096 && raw.cols <= 4096,
               "'" + path + "' declares images of " + std::to_string(raw.rows) + "x" +
                   std::to_string(raw.cols) + " pixels; expected positive sizes up to 4096");
  const int64_t bytes = raw.count * raw.rows * raw.cols;
  LOWBIT_CHECK(bytes <= kMaxBytes, "'" + path + "' declares " + std::to_string(raw.count) +
                                       " images, more than lowbit can hold (corrupt header?)");
  raw.pixels.resize(static_cast<size_t>(bytes));
  read_exact(f.get(), path, raw.pixels.data(), bytes, "pixel data");
  return raw;
}

std::vector<uint8_t> read_idx_labels(const std::string& path) {
  GzFile f = open_gz(path);
  check_magic(read_be32(f.get(), path, "the header"), kLabelsMagic, path, "labels");
  const int64_t count = read_be32(f.get(), path, "the header");
  LOWBIT_CHECK(count <= kMaxBytes, "'" + path + "' declares " + std::to_string(count) +
                                       " labels, more than lowbit can hold (corrupt header?)");
  std::vector<uint8_t> labels(static_cast<size_t>(count));
  read_exact(f.get(), path, labels.data(), count, "labels");
  return labels;
}

RawImages load_fashion_mnist_raw(const std::string& dir, const std::string& split) {
  std::string prefix;
  if (split == "train") {
    prefix = "train";
  } else if (split == "test") {
    prefix = "t10k";
  } else {
    throw Error("unknown Fashion-MNIST split '" + split + "' (use 'train' or 'test')");
  }
  const std::string images_path = dir + "/" + prefix + "-images-idx3-ubyte.gz";
  const std::string labels_path = dir + "/" + prefix + "-labels-idx1-ubyte.gz";
  RawImages raw = read_idx_images(images_path);
  raw.labels = read_idx_labels(labels_path);
  LOWBIT_CHECK(raw.count == static_cast<int64_t>(raw.labels.size()),
               "'" + images_path + "' holds " + std::to_string(raw.count) + " images but '" +
                   labels_path + "' holds " + std::to_string(raw.labels.size()) +
                   " labels; the two files must come from the same split");
  // Other sizes are allowed (small test files), but not other image shapes.
  LOWBIT_CHECK(raw.rows == 28 && raw.cols == 28,
               "'" + images_path + "' holds " + std::to_string(raw.rows) + "x" + std::to_string(raw.cols) +
                   " images; Fashion-MNIST images are 28x28");
  for (size_t i = 0; i < raw.labels.size(); ++i) {
    LOWBIT_CHECK(raw.labels[i] <= 9, "'" + labels_path + "' has label " + std::to_string(raw.labels[i]) +
                                         " at index " + std::to_string(i) + "; expected 0..9");
  }
  return raw;
}

Dataset to_dataset(const RawImages& raw) {
  Dataset d;
  // from_blob does not copy; the conversions below produce owning tensors.
  auto pixels = torch::from_blob(const_cast<uint8_t*>(raw.pixels.data()), {raw.count, 1, raw.rows, raw.cols},
                                 torch::kUInt8);
  d.images = pixels.to(torch::kFloat32).div_(255.0f).contiguous();
  auto labels = torch::from_blob(const_cast<uint8_t*>(raw.labels.data()), {static_cast<int64_t>(raw.labels.size())},
                                 torch::kUInt8);
  d.labels = labels.to(torch::kInt64);
  return d;
}

Dataset load_fashion_mnist(const std::string& dir, const std::string& split) {
  return to_dataset(load_fashion_mnist_raw(dir, split));
}

TrainValidation split_train_validation(const Dataset& full, int64_t validation_size) {
  const int64_t n = full.size();
  LOWBIT_CHECK(validation_size >= 0 && validation_size < n,
               "validation size " + std::to_string(validation_size) + " must be in [0, " + std::to_string(n) +
                   ") for a training set of " + std::to_string(n) + " images (see --val-size)");
  const int64_t cut = n - validation_size;
  TrainValidation s;
  s.train.images = full.images.narrow(0, 0, cut);
  s.train.labels = full.labels.narrow(0, 0, cut);
  s.validation.images = full.images.narrow(0, cut, validation_size);
  s.validation.labels = full.labels.narrow(0, cut, validation_size);
  return s;
}

}  // namespace lowbit::data
