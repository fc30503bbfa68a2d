// --data readers: .npy arrays, .npz archives (stored and deflated), .npy folders, PNG/JPEG image
// folders, the dispatch of load_dataset, augmentation and the model/data fit check. Every file
// is written here, byte by byte where the format itself is under test.
#include <gtest/gtest.h>
#include <zlib.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "base/error.h"
#include "data/augment.h"
#include "data/dataset_source.h"
#include "data/image_folder.h"
#include "data/load_dataset.h"
#include "data/npy_array.h"
#include "data/npz_archive.h"
#include "data/run_data_layout.h"
#include "models/net.h"
#include "train/data_fit.h"
#include "train/trainer.h"
#include "train/test_files.h"

namespace lowbit::data {
namespace {

using lowbit::testing::fresh_test_dir;
using Bytes = std::vector<uint8_t>;

template <typename Fn>
void expect_error(Fn fn, const std::vector<std::string>& fragments) {
  try {
    fn();
    FAIL() << "expected lowbit::Error";
  } catch (const Error& e) {
    for (const auto& f : fragments) EXPECT_NE(std::string(e.what()).find(f), std::string::npos) << e.what();
  }
}

// A version 1.0 .npy file as numpy.save writes it: header padded with spaces to a multiple of 64.
Bytes npy(const std::string& descr, const std::vector<int64_t>& shape, const Bytes& data, bool fortran = false) {
  std::string dims;
  for (int64_t d : shape) dims += std::to_string(d) + ", ";
  if (shape.size() > 1) dims.erase(dims.size() - 2);  // "(2, 3)" but "(2,)"
  else if (shape.size() == 1) dims.pop_back();
  std::string header = "{'descr': '" + descr + "', 'fortran_order': " + (fortran ? "True" : "False") +
                       ", 'shape': (" + dims + "), }";
  while ((10 + header.size() + 1) % 64 != 0) header += ' ';
  header += '\n';
  Bytes out = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, static_cast<uint8_t>(header.size() & 0xFF),
               static_cast<uint8_t>(header.size() >> 8)};
  out.reserve(out.size() + header.size() + data.size());  // (also quiets GCC 12's -Warray-bounds here)
  out.insert(out.end(), header.begin(), header.end());
  out.insert(out.end(), data.begin(), data.end());
  return out;
}

template <typename T>
Bytes raw_bytes(const std::vector<T>& v) {
  Bytes b(v.size() * sizeof(T));
  std::memcpy(b.data(), v.data(), b.size());
  return b;
}

Bytes ramp(size_t n) {
  Bytes b(n);
  for (size_t i = 0; i < n; ++i) b[i] = static_cast<uint8_t>(i % 251);
  return b;
}

void put16(Bytes& b, uint32_t v) {
  b.push_back(static_cast<uint8_t>(v));
  b.push_back(static_cast<uint8_t>(v >> 8));
}
void put32(Bytes& b, uint32_t v) {
  put16(b, v & 0xFFFF);
  put16(b, v >> 16);
}

// A zip file as numpy.savez writes one (members "<name>.npy"), stored or deflated.
Bytes zip(const std::vector<std::pair<std::string, Bytes>>& members, bool deflated) {
  Bytes out, directory;
  for (const auto& [name, content] : members) {
    const std::string file = name + ".npy";
    Bytes packed = content;
    if (deflated) {
      z_stream z{};
      deflateInit2(&z, 6, Z_DEFLATED, -MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
      packed.resize(deflateBound(&z, content.size()));
      z.next_in = const_cast<Bytef*>(content.data());
      z.avail_in = static_cast<uInt>(content.size());
      z.next_out = packed.data();
      z.avail_out = static_cast<uInt>(packed.size());
      EXPECT_EQ(::deflate(&z, Z_FINISH), Z_STREAM_END);
      packed.resize(z.total_out);
      deflateEnd(&z);
    }
    const uint32_t crc = static_cast<uint32_t>(crc32(0, content.data(), static_cast<uInt>(content.size())));
    const uint32_t offset = static_cast<uint32_t>(out.size());
    auto common = [&](Bytes& b) {
      put16(b, 20);                // version needed
      put16(b, 0);                 // flags
      put16(b, deflated ? 8 : 0);   // method
      put32(b, 0);                 // time, date
      put32(b, crc);
      put32(b, static_cast<uint32_t>(packed.size()));
      put32(b, static_cast<uint32_t>(content.size()));
      put16(b, static_cast<uint32_t>(file.size()));
      put16(b, 0);  // extra
    };
    put32(out, 0x04034b50);
    common(out);
    out.insert(out.end(), file.begin(), file.end());
    out.insert(out.end(), packed.begin(), packed.end());
    put32(directory, 0x02014b50);
    put16(directory, 20);  // made by
    common(directory);
    put16(directory, 0);  // comment
    put16(directory, 0);  // disk
    put16(directory, 0);  // internal attributes
    put32(directory, 0);  // external attributes
    put32(directory, offset);
    directory.insert(directory.end(), file.begin(), file.end());
  }
  const uint32_t dir_offset = static_cast<uint32_t>(out.size());
  out.insert(out.end(), directory.begin(), directory.end());
  put32(out, 0x06054b50);
  put16(out, 0);
  put16(out, 0);
  put16(out, static_cast<uint32_t>(members.size()));
  put16(out, static_cast<uint32_t>(members.size()));
  put32(out, static_cast<uint32_t>(directory.size()));
  put32(out, dir_offset);
  put16(out, 0);
  return out;
}

void write_file(const std::string& path, const Bytes& b) {
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
}

// ---- .npy ----------------------------------------------------------------------------------

TEST(NpyArray, ParsesUint8AndFloat32) {
  const Bytes u = npy("|u1", {2, 3, 4}, ramp(24));
  const NpyArray a = parse_npy(u.data(), u.size(), "a.npy");
  EXPECT_EQ(a.dtype, "u1");
  EXPECT_EQ(a.shape, (std::vector<int64_t>{2, 3, 4}));
  EXPECT_EQ(a.integer(23), 23);
  const Bytes f = npy("<f4", {3}, raw_bytes(std::vector<float>{0.5f, -1.0f, 2.25f}));
  const NpyArray b = parse_npy(f.data(), f.size(), "b.npy");
  EXPECT_TRUE(b.is_float());
  EXPECT_DOUBLE_EQ(b.value(2), 2.25);
  const Bytes l = npy("<i8", {2}, raw_bytes(std::vector<int64_t>{7, 123456789012}));
  EXPECT_EQ(parse_npy(l.data(), l.size(), "l.npy").integer(1), 123456789012);
}

TEST(NpyArray, RejectsBadFilesWithClearMessages) {
  Bytes bad = npy("|u1", {2}, {1, 2});
  bad[1] = 'X';
  expect_error([&] { parse_npy(bad.data(), bad.size(), "bad.npy"); }, {"bad.npy", "magic"});
  // A header longer than the file.
  Bytes truncated = npy("|u1", {2}, {1, 2});
  truncated.resize(30);
  expect_error([&] { parse_npy(truncated.data(), truncated.size(), "t.npy"); }, {"t.npy", "truncated", "header"});
  const Bytes fortran = npy("|u1", {2, 2}, {1, 2, 3, 4}, true);
  expect_error([&] { parse_npy(fortran.data(), fortran.size(), "f.npy"); }, {"f.npy", "Fortran", "ascontiguousarray"});
  const Bytes big = npy(">f4", {1}, {0, 0, 0, 0});
  expect_error([&] { parse_npy(big.data(), big.size(), "be.npy"); }, {"be.npy", "big-endian"});
  const Bytes complex = npy("<c8", {1}, Bytes(8));
  expect_error([&] { parse_npy(complex.data(), complex.size(), "c.npy"); }, {"'<c8'", "float32"});
  Bytes short_data = npy("<f4", {2, 2}, Bytes(16));
  short_data.resize(short_data.size() - 3);
  expect_error([&] { parse_npy(short_data.data(), short_data.size(), "s.npy"); }, {"s.npy", "truncated", "[2, 2]", "16 bytes"});
  const Bytes huge = npy("|u1", {1000000, 1000000, 1000000}, {});
  expect_error([&] { parse_npy(huge.data(), huge.size(), "h.npy"); }, {"h.npy", "more than lowbit can hold"});
}

// ---- arrays -> examples ----------------------------------------------------------------------

TEST(DatasetSource, NhwAndNchwAndNhwcLayouts) {
  const NpyArray y = [] { const Bytes b = npy("|u1", {2}, {3, 1}); return parse_npy(b.data(), b.size(), "y"); }();
  {  // [N, H, W]: one channel
    const Bytes b = npy("|u1", {2, 3, 4}, ramp(24));
    const RawDataset d = examples_from_arrays(parse_npy(b.data(), b.size(), "x"), "x", y, "y", "auto");
    EXPECT_EQ(d.example_shape(), (std::vector<int64_t>{1, 3, 4}));
    EXPECT_EQ(d.u8[13], 13);
    EXPECT_EQ(d.labels, (std::vector<int64_t>{3, 1}));
    EXPECT_EQ(d.num_classes(), 4);
  }
  {  // [N, 3, 4, 5]: channels first
    const Bytes b = npy("|u1", {2, 3, 4, 5}, ramp(120));
    const RawDataset d = examples_from_arrays(parse_npy(b.data(), b.size(), "x"), "x", y, "y", "auto");
    EXPECT_EQ(d.example_shape(), (std::vector<int64_t>{3, 4, 5}));
    EXPECT_EQ(d.u8[77], 77);  // already planar
  }
  {  // [N, 4, 5, 3] float: channels last, transposed to planar
    std::vector<float> v(2 * 4 * 5 * 3);
    for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(i) * 0.5f;
    const Bytes b = npy("<f4", {2, 4, 5, 3}, raw_bytes(v));
    const RawDataset d = examples_from_arrays(parse_npy(b.data(), b.size(), "x"), "x", y, "y", "auto");
    EXPECT_TRUE(d.is_float);
    EXPECT_EQ(d.example_shape(), (std::vector<int64_t>{3, 4, 5}));
    // Image 1, channel 2, row 3, column 4 sits at ((1 * 4 + 3) * 5 + 4) * 3 + 2 in NHWC.
    EXPECT_FLOAT_EQ(d.f32[((1 * 3 + 2) * 4 + 3) * 5 + 4], static_cast<float>(((1 * 4 + 3) * 5 + 4) * 3 + 2) * 0.5f);
  }
  {  // both axes could be channels: ask, and obey --layout
    const Bytes b = npy("|u1", {2, 3, 5, 3}, ramp(90));
    const NpyArray x = parse_npy(b.data(), b.size(), "x");
    expect_error([&] { examples_from_arrays(x, "x.npy", y, "y", "auto"); }, {"x.npy", "[2, 3, 5, 3]", "--layout"});
    EXPECT_EQ(examples_from_arrays(x, "x", y, "y", "nhwc").example_shape(), (std::vector<int64_t>{3, 3, 5}));
    EXPECT_EQ(examples_from_arrays(x, "x", y, "y", "nchw").example_shape(), (std::vector<int64_t>{3, 5, 3}));
  }
}

// Commands that read a run's data (eval, ptq, qat --from, analyze, search, convert) use the
// layout the run was trained with unless --layout says otherwise.
TEST(DatasetSource, RunDataLayoutFlagThenRunThenAuto) {
  const nlohmann::json nhwc_run = {{"model", "cnn"}, {"data", {{"layout", "nhwc"}}}};
  EXPECT_EQ(run_data_layout("auto", nhwc_run), "nhwc");
  EXPECT_EQ(run_data_layout("nchw", nhwc_run), "nchw");
  EXPECT_EQ(run_data_layout("auto", nlohmann::json{{"model", "cnn"}}), "auto");
  EXPECT_EQ(run_data_layout("auto", nlohmann::json{{"data", {{"classes", {"a", "b"}}}}}), "auto");
  expect_error([&] { run_data_layout("auto", nlohmann::json{{"data", {{"layout", "hwc"}}}}); },
               {"data.layout", "\"hwc\"", "nchw"});
}

TEST(DatasetSource, ShapeMismatchAndBadLabels) {
  const Bytes xb = npy("|u1", {3, 2, 2}, ramp(12));
  const NpyArray x = parse_npy(xb.data(), xb.size(), "x");
  const Bytes yb = npy("<i4", {2}, raw_bytes(std::vector<int32_t>{0, 1}));
  expect_error([&] { examples_from_arrays(x, "d.npz:x_train", parse_npy(yb.data(), yb.size(), "y"), "d.npz:y_train", "auto"); },
               {"d.npz:x_train", "3 images", "[3, 2, 2]", "d.npz:y_train", "2 labels", "[2]"});
  const Bytes neg = npy("<i8", {3}, raw_bytes(std::vector<int64_t>{0, -1, 2}));
  expect_error([&] { examples_from_arrays(x, "x", parse_npy(neg.data(), neg.size(), "y"), "y.npy", "auto"); },
               {"y.npy", "label -1", "index 1"});
  const Bytes fl = npy("<f4", {3}, raw_bytes(std::vector<float>{0, 1, 2}));
  expect_error([&] { examples_from_arrays(x, "x", parse_npy(fl.data(), fl.size(), "y"), "y.npy", "auto"); },
               {"y.npy", "integers"});
  const Bytes x5 = npy("|u1", {1, 1, 1, 1, 1}, {0});
  expect_error([&] { examples_from_arrays(parse_npy(x5.data(), x5.size(), "x"), "x5.npy", x, "y", "auto"); },
               {"x5.npy", "[1, 1, 1, 1, 1]", "[N, H, W]"});
}

// ---- .npz, .npy folders and load_dataset ---------------------------------------------------------

TEST(LoadDataset, NpzStoredAndDeflatedWithBothNamings) {
  const auto dir = fresh_test_dir();
  const Bytes x_train = npy("|u1", {4, 28, 28}, ramp(4 * 784));
  const Bytes y_train = npy("|u1", {4}, {0, 9, 2, 3});
  const Bytes x_test = npy("|u1", {2, 28, 28}, ramp(2 * 784));
  const Bytes y_test = npy("<i8", {2}, raw_bytes(std::vector<int64_t>{5, 6}));
  write_file(dir + "/keras.npz", zip({{"x_train", x_train}, {"y_train", y_train}, {"x_test", x_test}, {"y_test", y_test}}, false));
  write_file(dir + "/named.npz", zip({{"train_images", x_train}, {"train_labels", y_train}, {"test_images", x_test},
                                      {"test_labels", y_test}}, true));
  for (const std::string name : {"keras.npz", "named.npz"}) {
    const Dataset train = load_dataset(dir + "/" + name, "train");
    EXPECT_EQ(train.images.sizes(), (std::vector<int64_t>{4, 1, 28, 28})) << name;
    EXPECT_EQ(train.images.scalar_type(), torch::kFloat32);
    EXPECT_FLOAT_EQ(train.images[0][0][0][5].item<float>(), 5.0f / 255.0f);
    EXPECT_EQ(train.labels.scalar_type(), torch::kInt64);
    EXPECT_EQ(train.labels[1].item<int64_t>(), 9);
    const Dataset test = load_dataset(dir + "/" + name, "test");
    EXPECT_EQ(test.size(), 2);
    EXPECT_EQ(num_classes(test), 7);
    const RawImages raw = load_dataset_uint8(dir + "/" + name, "test");
    EXPECT_EQ(raw.count, 2);
    EXPECT_EQ(raw.labels[1], 6);
  }
  write_file(dir + "/other.npz", zip({{"images", x_train}}, false));
  expect_error([&] { load_dataset(dir + "/other.npz", "train"); }, {"other.npz", "x_train", "found: images"});
  // A corrupt deflate stream and a truncated archive.
  Bytes broken = zip({{"x_train", x_train}, {"y_train", y_train}}, true);
  for (size_t i = 60; i < 90; ++i) broken[i] ^= 0x5A;
  write_file(dir + "/broken.npz", broken);
  expect_error([&] { load_dataset(dir + "/broken.npz", "train"); }, {"broken.npz:x_train"});
  Bytes cut = zip({{"x_train", x_train}}, false);
  cut.resize(cut.size() / 2);
  write_file(dir + "/cut.npz", cut);
  expect_error([&] { load_dataset(dir + "/cut.npz", "train"); }, {"cut.npz", "not a readable .npz"});
  expect_error([&] { load_dataset(dir + "/missing.npz", "train"); }, {"missing.npz", "--data"});
}

TEST(LoadDataset, NpyFolderFloatNhwc) {
  const auto dir = fresh_test_dir();
  std::vector<float> v(3 * 8 * 8 * 3, 0.25f);
  write_file(dir + "/train_x.npy", npy("<f4", {3, 8, 8, 3}, raw_bytes(v)));
  write_file(dir + "/train_y.npy", npy("<i4", {3}, raw_bytes(std::vector<int32_t>{0, 1, 2})));
  write_file(dir + "/test_x.npy", npy("<f4", {1, 8, 8, 3}, raw_bytes(std::vector<float>(192, 1.0f))));
  const Dataset train = load_dataset(dir, "train");
  EXPECT_EQ(train.images.sizes(), (std::vector<int64_t>{3, 3, 8, 8}));
  EXPECT_FLOAT_EQ(train.images.mean().item<float>(), 0.25f);  // float taken as is
  EXPECT_EQ(example_shape_string(train), "[3, 8, 8]");
  expect_error([&] { load_dataset(dir, "test"); }, {"test_y.npy", "train_x.npy, train_y.npy, test_x.npy and test_y.npy"});
  expect_error([&] { load_dataset_uint8(dir, "train"); }, {"float", "uint8"});
  expect_error([&] { load_dataset(dir + "/train_x.npy", "train"); }, {"train_x.npy", "one array"});
}

// ---- image folders ---------------------------------------------------------------------------

DecodedImage gray(int64_t h, int64_t w, uint8_t value) {
  DecodedImage img;
  img.height = h;
  img.width = w;
  img.channels = 1;
  img.pixels.assign(static_cast<size_t>(h * w), value);
  return img;
}

TEST(ImageFolder, PngClassesInSortedOrder) {
  const auto dir = fresh_test_dir();
  for (const std::string split : {"train", "test"}) {
    for (const std::string c : {"b_shirt", "a_boot"}) std::filesystem::create_directories(dir + "/" + split + "/" + c);
  }
  write_png(dir + "/train/b_shirt/1.png", gray(6, 5, 200));
  write_png(dir + "/train/b_shirt/2.PNG", gray(6, 5, 100));
  write_png(dir + "/train/a_boot/1.png", gray(6, 5, 50));
  write_png(dir + "/test/a_boot/x.png", gray(6, 5, 10));
  std::ofstream(dir + "/train/a_boot/.DS_Store") << "ignored";
  const RawDataset d = load_raw_dataset(dir, "train");
  EXPECT_EQ(d.kind, SourceKind::kImageFolder);
  EXPECT_EQ(d.classes, (std::vector<std::string>{"a_boot", "b_shirt"}));
  EXPECT_EQ(d.labels, (std::vector<int64_t>{0, 1, 1}));
  EXPECT_EQ(d.example_shape(), (std::vector<int64_t>{1, 6, 5}));
  EXPECT_EQ(d.u8[0], 50);
  EXPECT_EQ(d.u8[30], 200);
  const Dataset test = load_dataset(dir, "test");
  EXPECT_EQ(test.size(), 1);
  EXPECT_NEAR(test.images.max().item<float>(), 10.0f / 255.0f, 1e-6);

  // A file that is not an image, an image of another size, a corrupt PNG: errors naming the file.
  std::ofstream(dir + "/train/a_boot/notes.txt") << "not an image";
  expect_error([&] { load_dataset(dir, "train"); }, {"notes.txt", ".png, .jpg or .jpeg"});
  std::filesystem::remove(dir + "/train/a_boot/notes.txt");
  write_png(dir + "/train/b_shirt/3.png", gray(7, 5, 1));
  expect_error([&] { load_dataset(dir, "train"); }, {"3.png", "5x7", "5x6", "one size"});
  std::filesystem::remove(dir + "/train/b_shirt/3.png");
  std::ofstream(dir + "/train/b_shirt/4.png") << "garbage";
  expect_error([&] { load_dataset(dir, "train"); }, {"4.png", "PNG"});
  std::filesystem::remove(dir + "/train/b_shirt/4.png");
  std::filesystem::create_directories(dir + "/test/c_unknown");
  expect_error([&] { load_dataset(dir, "test"); }, {"c_unknown", "train/"});
}

TEST(ImageFolder, JpegRgb) {
  const auto dir = fresh_test_dir();
  for (const std::string split : {"train", "test"}) std::filesystem::create_directories(dir + "/" + split + "/only");
  DecodedImage rgb;
  rgb.height = 16;
  rgb.width = 8;
  rgb.channels = 3;
  for (int64_t i = 0; i < 16 * 8; ++i) {
    rgb.pixels.push_back(220);  // red
    rgb.pixels.push_back(30);
    rgb.pixels.push_back(30);
  }
  write_jpeg(dir + "/train/only/a.jpg", rgb);
  write_jpeg(dir + "/test/only/b.jpeg", rgb);
  const Dataset d = load_dataset(dir, "train");
  EXPECT_EQ(d.images.sizes(), (std::vector<int64_t>{1, 3, 16, 8}));
  // JPEG is lossy: the red plane stays far above the others.
  EXPECT_GT(d.images[0][0].mean().item<float>(), d.images[0][1].mean().item<float>() + 0.5f);
  expect_error([&] { load_dataset_uint8(dir, "train"); }, {"3 channels", "[1, 28, 28]"});
  std::ofstream(dir + "/train/only/c.jpg") << "not a jpeg";
  expect_error([&] { load_dataset(dir, "train"); }, {"c.jpg", "JPEG"});
}

// ---- augmentation and the model check -----------------------------------------------------------

TEST(Augment, DeterministicPerStepAndShardConsistent) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(3);
  const auto x = torch::rand({8, 1, 6, 6}, gen);
  AugmentOptions o;
  o.crop_pad = 2;
  o.flip = true;
  const auto a = augment_batch(x, o, 7, 11, 0, 8);
  EXPECT_TRUE(torch::equal(a, augment_batch(x, o, 7, 11, 0, 8)));
  EXPECT_FALSE(torch::equal(a, augment_batch(x, o, 7, 12, 0, 8)));
  EXPECT_EQ(a.sizes(), x.sizes());
  // A rank holding examples [3, 8) of the global batch gets what one process gets for them.
  EXPECT_TRUE(torch::equal(augment_batch(x.narrow(0, 3, 5), o, 7, 11, 3, 8), a.narrow(0, 3, 5)));
  // Flip alone: each example is itself or its mirror.
  AugmentOptions f;
  f.flip = true;
  const auto b = augment_batch(x, f, 1, 0, 0, 8);
  for (int64_t i = 0; i < 8; ++i) EXPECT_TRUE(torch::equal(b[i], x[i]) || torch::equal(b[i], x[i].flip({2})));
  EXPECT_TRUE(torch::equal(augment_batch(x, AugmentOptions{}, 1, 0, 0, 8), x));
  expect_error([] { AugmentOptions::from_json({{"crop", 4}}); }, {"augment.crop"});
  EXPECT_EQ(AugmentOptions::from_json(o.to_json()).crop_pad, 2);
}

// A run with augmentation interrupted after one epoch and resumed ends with the weights of the
// uninterrupted run; augmentation changes what a run learns (so it is really on).
TEST(Augment, ResumeContinuesExactly) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(5);
  Dataset train;
  train.images = torch::rand({96, 1, 28, 28}, gen);
  train.labels = torch::arange(96, torch::kInt64).remainder(10);
  Dataset val;
  val.images = train.images.narrow(0, 0, 16);
  val.labels = train.labels.narrow(0, 0, 16);
  const std::string root = fresh_test_dir();
  auto config = [&](const std::string& out, bool augment) {
    train::TrainConfig c;
    c.model = "mlp";
    c.epochs = 2;
    c.batch_size = 32;
    c.out_dir = root + "/" + out;
    c.threads = 1;
    c.seed = 3;
    if (augment) c.extra["augment"] = {{"crop_pad", 2}, {"flip", true}};
    return c;
  };
  auto weights = [](models::Net& net) {
    std::vector<torch::Tensor> s;
    for (const auto& p : net->parameters()) s.push_back(p.detach().clone());
    return s;
  };
  torch::manual_seed(1);
  train::Trainer a(models::make_model("mlp"), config("a", true));
  a.set_log(nullptr);
  a.fit(train, val);
  torch::manual_seed(1);
  {
    train::Trainer b(models::make_model("mlp"), config("b", true));
    b.set_log(nullptr);
    b.fit(train, val, nullptr, /*stop_after_epoch=*/1);
  }
  torch::manual_seed(1);
  train::Trainer c(models::make_model("mlp"), config("b", true));
  c.set_log(nullptr);
  c.resume(root + "/b");
  c.fit(train, val);
  torch::manual_seed(1);
  train::Trainer plain(models::make_model("mlp"), config("plain", false));
  plain.set_log(nullptr);
  plain.fit(train, val);
  const auto wa = weights(a.net()), wc = weights(c.net()), wp = weights(plain.net());
  ASSERT_EQ(wa.size(), wc.size());
  for (size_t i = 0; i < wa.size(); ++i) EXPECT_TRUE(torch::equal(wa[i], wc[i])) << "tensor " << i;
  EXPECT_FALSE(torch::equal(wa[0], wp[0]));
  std::ifstream in(root + "/b/config.json");
  const auto j = nlohmann::json::parse(in);
  EXPECT_EQ(j["augment"]["crop_pad"], 2);
  EXPECT_EQ(j["augment"]["flip"], true);
}

TEST(DataFit, ClearErrorsForShapesAndLabels) {
  models::Net net = models::make_model("mlp");
  Dataset rgb;
  rgb.images = torch::zeros({2, 3, 32, 32});
  rgb.labels = torch::zeros({2}, torch::kInt64);
  expect_error([&] { train::check_model_fits_data(net, rgb, "cifar.npz"); },
               {"data 'cifar.npz'", "[3, 32, 32]", "model 'mlp'"});
  EXPECT_TRUE(net->is_training());  // mode restored
  Dataset many;
  many.images = torch::zeros({2, 1, 28, 28});
  many.labels = torch::tensor({3, 12}, torch::kInt64);
  expect_error([&] { train::check_model_fits_data(net, many, "x.npz"); }, {"label 12", "10 outputs"});
  many.labels = torch::tensor({3, 9}, torch::kInt64);
  train::check_model_fits_data(net, many, "x.npz");
}

}  // namespace
}  // namespace lowbit::data
