// Image classification folders: <root>/train/<class>/*.png|jpg and <root>/test/<class>/...
// The class index is the position of the class folder's name in the sorted list of train/'s
// class folders, so that both splits agree and the order does not depend on the file system.
// PNG through libpng, JPEG through libjpeg; no LibTorch.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace lowbit::data {

// One decoded image: height x width x channels (1 gray or 3 RGB), row-major, interleaved.
struct DecodedImage {
  int64_t height = 0, width = 0, channels = 0;
  std::vector<uint8_t> pixels;
};

// By extension (.png, .jpg, .jpeg, any case). Alpha is dropped; palette and 16-bit PNGs become
// 8-bit gray or RGB. Throws lowbit::Error naming the file.
DecodedImage decode_image(const std::string& path);
bool is_image_file_name(const std::string& name);

// A whole split, planar: pixels [count, channels, height, width].
struct ImageFolderSplit {
  int64_t count = 0, channels = 0, height = 0, width = 0;
  std::vector<uint8_t> pixels;
  std::vector<int64_t> labels;
  std::vector<std::string> classes;  // index -> folder name
};

// True when `root` has train/ and test/ sub-folders (what load_dataset checks before choosing this).
bool looks_like_image_folder(const std::string& root);

// split: "train" or "test". Every image must have the train split's first image's size and
// channel count; a file that is not .png/.jpg/.jpeg (hidden files aside) is an error naming it.
ImageFolderSplit read_image_folder(const std::string& root, const std::string& split);

// Writers, for tests and for turning other data into folders: 8-bit gray (1) or RGB (3).
void write_png(const std::string& path, const DecodedImage& image);
void write_jpeg(const std::string& path, const DecodedImage& image, int quality = 95);

}  // namespace lowbit::data
