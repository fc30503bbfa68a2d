// png_stats FILE.png: prints "width height non_white_pixels distinct_colors" for an 8-bit RGB or
// RGBA, non-interlaced PNG (what Chromium's --screenshot writes), so that a shell test can check a
// rendered page is not blank without Python or ImageMagick. Needs only zlib. Exit 1 on a file it
// cannot read, with the reason.
#include <zlib.h>

#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <iterator>
#include <set>
#include <string>
#include <vector>

namespace {

[[noreturn]] void fail(const std::string& why) {
  std::cerr << "png_stats: " << why << "\n";
  std::exit(1);
}

uint32_t be32(const unsigned char* p) { return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | p[3]; }

int paeth(int a, int b, int c) {
  const int p = a + b - c, pa = std::abs(p - a), pb = std::abs(p - b), pc = std::abs(p - c);
  return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) fail("usage: png_stats FILE.png");
  std::ifstream f(argv[1], std::ios::binary);
  if (!f) fail(std::string("cannot open ") + argv[1]);
  const std::vector<unsigned char> b((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  static const unsigned char kSig[8] = {137, 80, 78, 71, 13, 10, 26, 10};
  if (b.size() < 8 || !std::equal(kSig, kSig + 8, b.begin())) fail("not a PNG file");
  uint32_t width = 0, height = 0;
  int channels = 0;
  std::vector<unsigned char> idat;
  for (size_t pos = 8; pos + 12 <= b.size();) {
    const uint32_t len = be32(&b[pos]);
    if (pos + 12 + len > b.size()) fail("truncated chunk");
    const std::string type(b.begin() + pos + 4, b.begin() + pos + 8);
    const unsigned char* data = &b[pos + 8];
    if (type == "IHDR") {
      if (len < 13) fail("short IHDR");
      width = be32(data);
      height = be32(data + 4);
      const int depth = data[8], color = data[9], interlace = data[12];
      if (depth != 8 || (color != 2 && color != 6) || interlace != 0)
        fail("only 8-bit RGB/RGBA non-interlaced PNGs are supported");
      channels = color == 2 ? 3 : 4;
    } else if (type == "IDAT") {
      idat.insert(idat.end(), data, data + len);
    } else if (type == "IEND") {
      break;
    }
    pos += 12 + len;
  }
  if (channels == 0 || width == 0 || height == 0) fail("no image header");
  if (uint64_t(width) * height > (uint64_t(1) << 28)) fail("image too large");
  const size_t stride = size_t(width) * channels;
  std::vector<unsigned char> raw((stride + 1) * height);
  uLongf raw_len = raw.size();
  if (uncompress(raw.data(), &raw_len, idat.data(), idat.size()) != Z_OK || raw_len != raw.size())
    fail("image data does not inflate to the expected size");
  // Undo the per-row filters (PNG specification, section 9).
  std::vector<unsigned char> img(stride * height), zero(stride, 0);
  for (uint32_t y = 0; y < height; ++y) {
    const unsigned char filter = raw[y * (stride + 1)];
    const unsigned char* in = &raw[y * (stride + 1) + 1];
    unsigned char* out = &img[y * stride];
    const unsigned char* up = y ? &img[(y - 1) * stride] : zero.data();
    for (size_t i = 0; i < stride; ++i) {
      const int a = i >= size_t(channels) ? out[i - channels] : 0, c = i >= size_t(channels) ? up[i - channels] : 0;
      int v = in[i];
      switch (filter) {
        case 0: break;
        case 1: v += a; break;
        case 2: v += up[i]; break;
        case 3: v += (a + up[i]) / 2; break;
        case 4: v += paeth(a, up[i], c); break;
        default: fail("bad row filter " + std::to_string(filter));
      }
      out[i] = static_cast<unsigned char>(v);
    }
  }
  uint64_t non_white = 0;
  std::set<uint32_t> colors;
  for (size_t p = 0; p < size_t(width) * height; ++p) {
    const unsigned char* px = &img[p * channels];
    const uint32_t rgb = uint32_t(px[0]) << 16 | uint32_t(px[1]) << 8 | px[2];
    if (rgb != 0xFFFFFF) ++non_white;
    if (colors.size() < 100000) colors.insert(rgb);
  }
  std::cout << width << " " << height << " " << non_white << " " << colors.size() << "\n";
  return 0;
}
