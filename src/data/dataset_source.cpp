#include "data/dataset_source.h"

#include <algorithm>
#include <filesystem>

#include "base/error.h"
#include "data/idx_file.h"
#include "data/image_folder.h"
#include "data/npy_array.h"
#include "data/npz_archive.h"

namespace fs = std::filesystem;

namespace lowbit::data {
namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

bool in_1_or_3(int64_t d) { return d == 1 || d == 3; }

const char kFormats[] =
    "--data takes a folder of IDX files, a .npz archive (x_train, y_train, x_test, y_test), a folder with "
    "train_x.npy, train_y.npy, test_x.npy, test_y.npy, or a folder with train/ and test/ image folders "
    "(docs/datasets.md)";

}  // namespace

std::string to_string(SourceKind kind) {
  switch (kind) {
    case SourceKind::kIdxFolder: return "idx";
    case SourceKind::kNpz: return "npz";
    case SourceKind::kNpyFolder: return "npy";
    case SourceKind::kImageFolder: return "images";
  }
  return "?";
}

int64_t RawDataset::num_classes() const {
  return labels.empty() ? 0 : *std::max_element(labels.begin(), labels.end()) + 1;
}

SourceKind detect_source(const std::string& spec) {
  std::error_code ec;
  if (fs::is_directory(spec, ec)) {
    // IDX files first: a Fashion-MNIST folder stays one whatever else it holds.
    for (const char* idx : {"train-images-idx3-ubyte.gz", "train-images-idx3-ubyte", "t10k-images-idx3-ubyte.gz"}) {
      if (fs::exists(fs::path(spec) / idx, ec)) return SourceKind::kIdxFolder;
    }
    if (fs::exists(fs::path(spec) / "train_x.npy", ec) || fs::exists(fs::path(spec) / "test_x.npy", ec))
      return SourceKind::kNpyFolder;
    if (looks_like_image_folder(spec)) return SourceKind::kImageFolder;
    return SourceKind::kIdxFolder;  // its reader names the files it expected
  }
  if (fs::is_regular_file(spec, ec)) {
    if (ends_with(spec, ".npz")) return SourceKind::kNpz;
    if (ends_with(spec, ".npy"))
      throw Error("'" + spec + "' is one array; lowbit needs images and labels of both splits: put train_x.npy, "
                  "train_y.npy, test_x.npy and test_y.npy in one folder and pass the folder, or one .npz archive");
    throw Error("'" + spec + "' is a file lowbit does not read as a data set; " + std::string(kFormats));
  }
  // A missing path: the IDX reader's message (LOWBIT_DATA, the package) is the right one for the
  // default folder; any other gets its own.
  if (ends_with(spec, ".npz")) throw Error("cannot open '" + spec + "': no such file (check the path given to --data)");
  if (spec != default_data_dir() && !fs::exists(spec, ec))
    throw Error("data '" + spec + "' does not exist; " + std::string(kFormats) +
                "; without --data lowbit reads $LOWBIT_DATA, else " + default_data_dir());
  return SourceKind::kIdxFolder;
}

RawDataset examples_from_arrays(const NpyArray& x, const std::string& x_name, const NpyArray& y,
                                const std::string& y_name, const std::string& layout) {
  LOWBIT_CHECK(layout == "auto" || layout == "nchw" || layout == "nhwc",
               "unknown layout '" + layout + "' (use auto, nchw or nhwc)");
  const auto& s = x.shape;
  RawDataset d;
  bool nhwc = false;
  if (s.size() == 3) {
    d.count = s[0];
    d.channels = 1;
    d.height = s[1];
    d.width = s[2];
  } else if (s.size() == 4) {
    if (layout == "nchw") {
      nhwc = false;
    } else if (layout == "nhwc") {
      nhwc = true;
    } else if (in_1_or_3(s[1]) && !in_1_or_3(s[3])) {
      nhwc = false;
    } else if (in_1_or_3(s[3]) && !in_1_or_3(s[1])) {
      nhwc = true;
    } else {
      throw Error("'" + x_name + "' has shape " + shape_string(s) + ": lowbit cannot tell channels (axis 1 or 3, of 1 or 3) " +
                  (in_1_or_3(s[1]) ? "because both could be" : "because neither is 1 or 3") +
                  "; pass --layout nchw or --layout nhwc");
    }
    d.count = s[0];
    d.channels = nhwc ? s[3] : s[1];
    d.height = nhwc ? s[1] : s[2];
    d.width = nhwc ? s[2] : s[3];
  } else {
    throw Error("'" + x_name + "' has shape " + shape_string(s) +
                "; expected images [N, H, W], [N, C, H, W] or [N, H, W, C]");
  }
  LOWBIT_CHECK(d.count > 0 && d.channels > 0 && d.height > 0 && d.width > 0,
               "'" + x_name + "' has shape " + shape_string(s) + " with an empty axis; expected at least one image");
  LOWBIT_CHECK(x.dtype == "u1" || x.is_float(),
               "'" + x_name + "' has dtype " + x.dtype + "; images must be uint8 (0..255) or float32 (as is): "
               "convert with x.astype(np.uint8) or x.astype(np.float32)");
  // Labels: [N] or [N, 1], integers.
  const bool column = y.shape.size() == 2 && y.shape[1] == 1;
  LOWBIT_CHECK(y.shape.size() == 1 || column,
               "'" + y_name + "' has shape " + shape_string(y.shape) + "; expected labels [" + std::to_string(d.count) + "]");
  LOWBIT_CHECK(y.shape[0] == d.count, "'" + x_name + "' holds " + std::to_string(d.count) + " images (shape " +
                                          shape_string(s) + ") but '" + y_name + "' holds " + std::to_string(y.shape[0]) +
                                          " labels (shape " + shape_string(y.shape) +
                                          "); images and labels of a split must match one to one");
  LOWBIT_CHECK(!y.is_float(), "'" + y_name + "' has dtype " + y.dtype +
                                  "; labels must be integers (uint8, int32 or int64): y.astype(np.int64)");
  d.labels.resize(static_cast<size_t>(d.count));
  for (int64_t i = 0; i < d.count; ++i) {
    const int64_t v = y.integer(i);
    LOWBIT_CHECK(v >= 0 && v < 100000, "'" + y_name + "' has label " + std::to_string(v) + " at index " +
                                           std::to_string(i) + "; labels are class indices 0, 1, 2, ...");
    d.labels[static_cast<size_t>(i)] = v;
  }
  // To planar NCHW.
  const int64_t plane = d.height * d.width;
  const int64_t per_image = d.channels * plane;
  auto source_index = [&](int64_t n, int64_t c, int64_t p) {
    return nhwc ? n * per_image + p * d.channels + c : n * per_image + c * plane + p;
  };
  d.is_float = x.is_float();
  const size_t total = static_cast<size_t>(d.count * per_image);
  if (d.is_float) d.f32.resize(total); else d.u8.resize(total);
  size_t out = 0;
  for (int64_t n = 0; n < d.count; ++n)
    for (int64_t c = 0; c < d.channels; ++c)
      for (int64_t p = 0; p < plane; ++p, ++out) {
        const int64_t i = source_index(n, c, p);
        if (d.is_float)
          d.f32[out] = static_cast<float>(x.value(i));
        else
          d.u8[out] = x.bytes[static_cast<size_t>(i)];
      }
  return d;
}

RawDataset load_raw_dataset(const std::string& flag, const std::string& split, const std::string& layout) {
  LOWBIT_CHECK(split == "train" || split == "test", "unknown split '" + split + "' (use 'train' or 'test')");
  const std::string spec = resolve_data_dir(flag);
  const SourceKind kind = detect_source(spec);
  RawDataset d;
  if (kind == SourceKind::kIdxFolder) {
    const RawImages raw = load_fashion_mnist_raw(spec, split);
    d.count = raw.count;
    d.channels = 1;
    d.height = raw.rows;
    d.width = raw.cols;
    d.u8 = raw.pixels;
    d.labels.assign(raw.labels.begin(), raw.labels.end());
  } else if (kind == SourceKind::kNpz) {
    const NpzArchive npz(spec);
    std::string xk, yk;
    if (npz.has("x_" + split) || npz.has("y_" + split)) {
      xk = "x_" + split;
      yk = "y_" + split;
    } else if (npz.has(split + "_images") || npz.has(split + "_labels")) {
      xk = split + "_images";
      yk = split + "_labels";
    } else {
      std::string names;
      for (const auto& a : npz.array_names()) names += (names.empty() ? "" : ", ") + a;
      throw Error("'" + spec + "' has no " + split + " split: expected arrays x_" + split + " and y_" + split + " (or " +
                  split + "_images and " + split + "_labels), found: " + (names.empty() ? "none" : names) +
                  " (np.savez(path, x_train=..., y_train=..., x_test=..., y_test=...))");
    }
    d = examples_from_arrays(npz.array(xk), spec + ":" + xk, npz.array(yk), spec + ":" + yk, layout);
  } else if (kind == SourceKind::kNpyFolder) {
    const std::string xp = (fs::path(spec) / (split + "_x.npy")).string();
    const std::string yp = (fs::path(spec) / (split + "_y.npy")).string();
    for (const auto& p : {xp, yp}) {
      LOWBIT_CHECK(fs::exists(p), "'" + spec + "' holds .npy arrays but not '" + fs::path(p).filename().string() +
                                      "'; a .npy folder needs train_x.npy, train_y.npy, test_x.npy and test_y.npy");
    }
    d = examples_from_arrays(read_npy_file(xp), xp, read_npy_file(yp), yp, layout);
  } else {
    ImageFolderSplit f = read_image_folder(spec, split);
    d.count = f.count;
    d.channels = f.channels;
    d.height = f.height;
    d.width = f.width;
    d.u8 = std::move(f.pixels);
    d.labels = std::move(f.labels);
    d.classes = std::move(f.classes);
  }
  d.kind = kind;
  d.spec = spec;
  return d;
}

RawDataset load_raw_images(const std::string& spec, const std::string& split, const std::string& layout) {
  std::error_code ec;
  if (!(ends_with(spec, ".npy") && fs::is_regular_file(spec, ec))) return load_raw_dataset(spec, split, layout);
  const NpyArray x = read_npy_file(spec);
  NpyArray y;  // no labels: zeros
  y.dtype = "i8";
  y.shape = {x.shape.empty() ? 0 : x.shape[0]};
  y.bytes.assign(static_cast<size_t>(std::max<int64_t>(0, y.shape[0]) * 8), 0);
  RawDataset d = examples_from_arrays(x, spec, y, spec + " (no labels)", layout);
  d.kind = SourceKind::kNpyFolder;
  d.spec = spec;
  return d;
}

std::vector<float> planar_floats(const RawDataset& d, int64_t first, int64_t count) {
  LOWBIT_CHECK(first >= 0 && count >= 0 && first + count <= d.count,
               "images " + std::to_string(first) + ".." + std::to_string(first + count - 1) + " are out of range: '" +
                   d.spec + "' has " + std::to_string(d.count));
  const int64_t item = d.channels * d.height * d.width;
  std::vector<float> x(static_cast<size_t>(count * item));
  for (size_t i = 0; i < x.size(); ++i) {
    const size_t at = static_cast<size_t>(first * item) + i;
    x[i] = d.is_float ? d.f32[at] : static_cast<float>(d.u8[at]) / 255.0f;
  }
  return x;
}

}  // namespace lowbit::data
