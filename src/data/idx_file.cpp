#include "data/idx_file.h"

#include <zlib.h>

#include <algorithm>
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

// Reads `n` bytes into `out`, growing it as the data arrives (doubling from 64 KiB): a corrupt
// header that declares gigabytes costs at most twice what the file really holds before it is
// reported truncated.
void read_growing(gzFile f, const std::string& path, std::vector<uint8_t>& out, int64_t n, const std::string& what) {
  out.clear();
  for (int64_t done = 0; done < n;) {
    const int64_t piece = std::min({std::max<int64_t>(done, int64_t{64} << 10), n - done, int64_t{1} << 30});
    out.resize(static_cast<size_t>(done + piece));
    const int got = gzread(f, out.data() + done, static_cast<unsigned>(piece));
    if (got < 0) {
      int errnum = 0;
      throw Error("'" + path + "' is corrupt while reading " + what + ": " + gzerror(f, &errnum) +
                  " (re-download or reinstall the dataset)");
    }
    done += got;
    if (got < piece && done < n) {
      throw Error("'" + path + "' is truncated: expected " + std::to_string(n) + " bytes of " + what + ", found " +
                  std::to_string(done) + " (re-download or reinstall the dataset)");
    }
  }
}

uint32_t read_be32(gzFile f, const std::string& path, const std::string& what) {
  std::vector<uint8_t> b;
  read_growing(f, path, b, 4, what);
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
  read_growing(f.get(), path, raw.pixels, bytes, "pixel data");
  return raw;
}

std::vector<uint8_t> read_idx_labels(const std::string& path) {
  GzFile f = open_gz(path);
  check_magic(read_be32(f.get(), path, "the header"), kLabelsMagic, path, "labels");
  const int64_t count = read_be32(f.get(), path, "the header");
  LOWBIT_CHECK(count <= kMaxBytes, "'" + path + "' declares " + std::to_string(count) +
                                       " labels, more than lowbit can hold (corrupt header?)");
  std::vector<uint8_t> labels;
  read_growing(f.get(), path, labels, count, "labels");
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

}  // namespace lowbit::data
