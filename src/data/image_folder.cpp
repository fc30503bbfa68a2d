#include "data/image_folder.h"

#include <png.h>
#include <csetjmp>
#include <cstdio>
// jpeglib.h needs FILE and size_t declared first.
#include <jpeglib.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <memory>

#include "base/error.h"

namespace fs = std::filesystem;

namespace lowbit::data {
namespace {

std::string lower_extension(const std::string& name) {
  std::string ext = fs::path(name).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return ext;
}

DecodedImage decode_png(const std::string& path) {
  png_image image{};
  image.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_file(&image, path.c_str())) {
    const std::string why = image.message;
    png_image_free(&image);
    throw Error("cannot read '" + path + "' as PNG: " + why + " (re-save the image, or remove it from the folder)");
  }
  // Gray stays gray, anything with colour becomes RGB; alpha is composited away by libpng.
  image.format = (image.format & PNG_FORMAT_FLAG_COLOR) ? PNG_FORMAT_RGB : PNG_FORMAT_GRAY;
  DecodedImage out;
  out.height = image.height;
  out.width = image.width;
  out.channels = (image.format & PNG_FORMAT_FLAG_COLOR) ? 3 : 1;
  LOWBIT_CHECK(out.height > 0 && out.width > 0 && out.height <= 8192 && out.width <= 8192,
               "'" + path + "' is " + std::to_string(out.width) + "x" + std::to_string(out.height) +
                   " pixels; lowbit reads images up to 8192x8192");
  out.pixels.resize(PNG_IMAGE_SIZE(image));
  if (!png_image_finish_read(&image, nullptr, out.pixels.data(), 0, nullptr)) {
    const std::string why = image.message;
    png_image_free(&image);
    throw Error("cannot decode '" + path + "' as PNG: " + why + " (re-save the image, or remove it from the folder)");
  }
  return out;
}

// libjpeg reports errors through error_exit, which must not return: jump back to the caller.
struct JpegError {
  jpeg_error_mgr mgr;
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

void jpeg_error_exit(j_common_ptr cinfo) {
  auto* err = reinterpret_cast<JpegError*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, err->message);
  std::longjmp(err->jump, 1);
}

void jpeg_silent(j_common_ptr, int) {}

struct FileCloser {
  void operator()(std::FILE* f) const { std::fclose(f); }
};

DecodedImage decode_jpeg(const std::string& path) {
  std::unique_ptr<std::FILE, FileCloser> file(std::fopen(path.c_str(), "rb"));
  LOWBIT_CHECK(file != nullptr, "cannot open '" + path + "'");
  jpeg_decompress_struct cinfo{};
  JpegError err{};
  cinfo.err = jpeg_std_error(&err.mgr);
  err.mgr.error_exit = jpeg_error_exit;
  err.mgr.emit_message = jpeg_silent;  // warnings (e.g. extraneous bytes) are not errors
  // Everything that longjmp skips over is plain data; `out` is declared before setjmp.
  DecodedImage out;
  if (setjmp(err.jump)) {
    jpeg_destroy_decompress(&cinfo);
    throw Error("cannot decode '" + path + "' as JPEG: " + std::string(err.message) +
                " (re-save the image, or remove it from the folder)");
  }
  jpeg_create_decompress(&cinfo);
  jpeg_stdio_src(&cinfo, file.get());
  jpeg_read_header(&cinfo, TRUE);
  cinfo.out_color_space = cinfo.num_components == 1 ? JCS_GRAYSCALE : JCS_RGB;
  jpeg_start_decompress(&cinfo);
  out.height = cinfo.output_height;
  out.width = cinfo.output_width;
  out.channels = cinfo.output_components;
  if (out.height > 8192 || out.width > 8192 || (out.channels != 1 && out.channels != 3)) {
    jpeg_destroy_decompress(&cinfo);
    throw Error("'" + path + "' is " + std::to_string(out.width) + "x" + std::to_string(out.height) + " with " +
                std::to_string(out.channels) + " channels; lowbit reads gray or RGB images up to 8192x8192");
  }
  out.pixels.resize(static_cast<size_t>(out.height * out.width * out.channels));
  while (cinfo.output_scanline < cinfo.output_height) {
    JSAMPROW row = out.pixels.data() + static_cast<size_t>(cinfo.output_scanline) * out.width * out.channels;
    jpeg_read_scanlines(&cinfo, &row, 1);
  }
  jpeg_finish_decompress(&cinfo);
  jpeg_destroy_decompress(&cinfo);
  return out;
}

std::vector<std::string> sorted_subfolders(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (e.is_directory() && !name.empty() && name[0] != '.') names.push_back(name);
  }
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace

bool is_image_file_name(const std::string& name) {
  const std::string ext = lower_extension(name);
  return ext == ".png" || ext == ".jpg" || ext == ".jpeg";
}

DecodedImage decode_image(const std::string& path) {
  const std::string ext = lower_extension(path);
  if (ext == ".png") return decode_png(path);
  if (ext == ".jpg" || ext == ".jpeg") return decode_jpeg(path);
  throw Error("'" + path + "' is not a .png, .jpg or .jpeg file; image folders hold only images (move it out of the folder)");
}

bool looks_like_image_folder(const std::string& root) {
  std::error_code ec;
  return fs::is_directory(fs::path(root) / "train", ec) && fs::is_directory(fs::path(root) / "test", ec);
}

ImageFolderSplit read_image_folder(const std::string& root, const std::string& split) {
  LOWBIT_CHECK(split == "train" || split == "test", "unknown split '" + split + "' (use 'train' or 'test')");
  const fs::path train_dir = fs::path(root) / "train";
  const fs::path dir = fs::path(root) / split;
  LOWBIT_CHECK(fs::is_directory(train_dir) && fs::is_directory(dir),
               "'" + root + "' is not an image folder: it needs train/ and test/ sub-folders with one folder per class");
  ImageFolderSplit out;
  out.classes = sorted_subfolders(train_dir);
  LOWBIT_CHECK(!out.classes.empty(), "'" + train_dir.string() +
                                         "' has no class folders; put each class's images in train/<class name>/");
  const std::vector<std::string> here = sorted_subfolders(dir);
  for (const auto& c : here) {
    LOWBIT_CHECK(std::binary_search(out.classes.begin(), out.classes.end(), c),
                 "'" + (dir / c).string() + "' is a class that train/ does not have; both splits need the same class folders");
  }
  // The reference size: the first image of the train split's first class, so both splits agree.
  std::string reference;
  for (size_t label = 0; label < out.classes.size(); ++label) {
    const fs::path class_dir = dir / out.classes[label];
    if (!fs::is_directory(class_dir)) continue;
    std::vector<std::string> files;
    for (const auto& e : fs::directory_iterator(class_dir)) {
      const std::string name = e.path().filename().string();
      if (name.empty() || name[0] == '.') continue;  // .DS_Store and the like
      LOWBIT_CHECK(e.is_regular_file() && is_image_file_name(name),
                   "'" + e.path().string() + "' is not a .png, .jpg or .jpeg file; class folders hold only images "
                   "(move it out of '" + root + "')");
      files.push_back(e.path().string());
    }
    std::sort(files.begin(), files.end());
    for (const auto& f : files) {
      DecodedImage img = decode_image(f);
      if (out.count == 0) {
        out.height = img.height;
        out.width = img.width;
        out.channels = img.channels;
        reference = f;
      }
      LOWBIT_CHECK(img.height == out.height && img.width == out.width && img.channels == out.channels,
                   "'" + f + "' is " + std::to_string(img.width) + "x" + std::to_string(img.height) + " with " +
                       std::to_string(img.channels) + " channel(s) but '" + reference + "' is " +
                       std::to_string(out.width) + "x" + std::to_string(out.height) + " with " +
                       std::to_string(out.channels) + "; all images of a set must have one size and channel count "
                       "(resize or convert them first)");
      LOWBIT_CHECK(out.pixels.size() + img.pixels.size() <= (size_t{1} << 31),
                   "'" + dir.string() + "' holds more than 2 GiB of pixels; lowbit keeps a split in memory");
      // Interleaved HWC -> planar CHW.
      const size_t plane = static_cast<size_t>(out.height * out.width);
      const size_t base = out.pixels.size();
      out.pixels.resize(base + img.pixels.size());
      for (int64_t c = 0; c < out.channels; ++c)
        for (size_t i = 0; i < plane; ++i)
          out.pixels[base + static_cast<size_t>(c) * plane + i] = img.pixels[i * static_cast<size_t>(out.channels) + static_cast<size_t>(c)];
      out.labels.push_back(static_cast<int64_t>(label));
      ++out.count;
    }
  }
  LOWBIT_CHECK(out.count > 0, "'" + dir.string() + "' holds no images; put .png or .jpg files in " + dir.string() + "/<class>/");
  return out;
}

void write_png(const std::string& path, const DecodedImage& image) {
  png_image p{};
  p.version = PNG_IMAGE_VERSION;
  p.width = static_cast<png_uint_32>(image.width);
  p.height = static_cast<png_uint_32>(image.height);
  p.format = image.channels == 3 ? PNG_FORMAT_RGB : PNG_FORMAT_GRAY;
  if (!png_image_write_to_file(&p, path.c_str(), 0, image.pixels.data(), 0, nullptr)) {
    const std::string why = p.message;
    png_image_free(&p);
    throw Error("cannot write '" + path + "': " + why);
  }
}

void write_jpeg(const std::string& path, const DecodedImage& image, int quality) {
  std::unique_ptr<std::FILE, FileCloser> file(std::fopen(path.c_str(), "wb"));
  LOWBIT_CHECK(file != nullptr, "cannot write '" + path + "'");
  jpeg_compress_struct cinfo{};
  JpegError err{};
  cinfo.err = jpeg_std_error(&err.mgr);
  err.mgr.error_exit = jpeg_error_exit;
  if (setjmp(err.jump)) {
    jpeg_destroy_compress(&cinfo);
    throw Error("cannot write '" + path + "' as JPEG: " + std::string(err.message));
  }
  jpeg_create_compress(&cinfo);
  jpeg_stdio_dest(&cinfo, file.get());
  cinfo.image_width = static_cast<JDIMENSION>(image.width);
  cinfo.image_height = static_cast<JDIMENSION>(image.height);
  cinfo.input_components = static_cast<int>(image.channels);
  cinfo.in_color_space = image.channels == 3 ? JCS_RGB : JCS_GRAYSCALE;
  jpeg_set_defaults(&cinfo);
  jpeg_set_quality(&cinfo, quality, TRUE);
  jpeg_start_compress(&cinfo, TRUE);
  while (cinfo.next_scanline < cinfo.image_height) {
    JSAMPROW row = const_cast<uint8_t*>(image.pixels.data()) +
                   static_cast<size_t>(cinfo.next_scanline) * static_cast<size_t>(image.width * image.channels);
    jpeg_write_scanlines(&cinfo, &row, 1);
  }
  jpeg_finish_compress(&cinfo);
  jpeg_destroy_compress(&cinfo);
}

}  // namespace lowbit::data
