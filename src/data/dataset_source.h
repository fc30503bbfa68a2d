// Which kind of data a --data value names, and its examples read without LibTorch.
//
//   ""                      $LOWBIT_DATA, else /usr/share/datasets/fashion-mnist (IDX folder)
//   file.npz                numpy.savez archive: x_train, y_train, x_test, y_test (Keras) or
//                           train_images, train_labels, test_images, test_labels
//   folder with train_x.npy train_x.npy, train_y.npy, test_x.npy, test_y.npy
//   folder with train/ test/ image folders, one sub-folder per class (data/image_folder.h)
//   any other folder        MNIST-like IDX files (train-images-idx3-ubyte.gz, t10k-..., see idx_file.h)
//
// Image arrays are [N, H, W] (one channel), [N, C, H, W] or [N, H, W, C]; uint8 (divided by 255
// when made float) or float32/float64 (taken as is). Labels are [N] (or [N, 1]) of an integer type.
// docs/datasets.md describes the formats for users.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "data/npy_array.h"

namespace lowbit::data {

enum class SourceKind { kIdxFolder, kNpz, kNpyFolder, kImageFolder };
std::string to_string(SourceKind kind);

// Decides from the path alone (and what a folder holds); throws naming the path when it does not
// exist or is a file of another kind.
SourceKind detect_source(const std::string& spec);

// A split as read, planar [count, channels, height, width]: uint8 pixels, or float pixels where
// the source stored floats.
struct RawDataset {
  SourceKind kind = SourceKind::kIdxFolder;
  std::string spec;  // the path read (the default folder when the --data value was empty)
  int64_t count = 0, channels = 0, height = 0, width = 0;
  bool is_float = false;
  std::vector<uint8_t> u8;
  std::vector<float> f32;
  std::vector<int64_t> labels;
  std::vector<std::string> classes;  // image folders: index -> class folder name
  int64_t num_classes() const;       // max label + 1 (0 when empty)
  std::vector<int64_t> example_shape() const { return {channels, height, width}; }
};

// `layout`: "auto" (default), "nchw" or "nhwc", for 4-dimensional arrays. "auto" takes NCHW when
// axis 1 is 1 or 3 and axis 3 is not, NHWC when axis 3 is 1 or 3 and axis 1 is not, and asks for
// --layout otherwise. `split` is "train" or "test".
RawDataset load_raw_dataset(const std::string& spec, const std::string& split, const std::string& layout = "auto");

// Images to run a model on (`lowbit run`): a --data value as above (its `split`), or one .npy
// array of images alone (labels all 0), [N, H, W], [N, C, H, W] or [N, H, W, C].
RawDataset load_raw_images(const std::string& spec, const std::string& split, const std::string& layout = "auto");

// Images first .. first + count - 1 as float32 NCHW: uint8 / 255, float pixels as stored.
std::vector<float> planar_floats(const RawDataset& d, int64_t first, int64_t count);

// The images array and the labels array of one split, already read (exposed for tests and the
// fuzzing harness). The names go into error messages.

RawDataset examples_from_arrays(const NpyArray& x, const std::string& x_name, const NpyArray& y,
                                const std::string& y_name, const std::string& layout);

}  // namespace lowbit::data
