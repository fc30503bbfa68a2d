#include "data/corruptions.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <functional>
#include <sstream>

#include "base/error.h"

namespace lowbit::data {
namespace {

constexpr double kPi = 3.14159265358979323846;

// A random stream per image: splitmix64 (fully specified, so every platform gives the same
// numbers; std:: distributions are implementation-defined).
class Stream {
 public:
  explicit Stream(uint64_t seed) : state_(seed) {}
  uint64_t next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }  // [0, 1)
  double normal() {  // Box-Muller
    const double u1 = 1.0 - uniform(), u2 = uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * kPi * u2);
  }
  // Poisson(lambda): Knuth's product method below 30, a rounded normal above (error < 1% there).
  int64_t poisson(double lambda) {
    if (lambda <= 0) return 0;
    if (lambda > 30) return std::max<int64_t>(0, std::llround(lambda + std::sqrt(lambda) * normal()));
    const double limit = std::exp(-lambda);
    int64_t k = 0;
    for (double p = uniform(); p > limit; p *= uniform()) ++k;
    return k;
  }

 private:
  uint64_t state_;
};

uint64_t mix(uint64_t a, uint64_t b) {
  Stream s(a ^ (b * 0xd1342543de82ef95ULL));
  return s.next();
}

// One image as floats in [0, 1], one plane per channel.
struct Image {
  int32_t c, h, w;
  std::vector<double> v;
  double& at(int32_t ch, int32_t y, int32_t x) { return v[(static_cast<size_t>(ch) * h + y) * w + x]; }
  double get(int32_t ch, int32_t y, int32_t x) const { return v[(static_cast<size_t>(ch) * h + y) * w + x]; }
  // Bilinear sample at (y, x); outside the image: `outside` (0 = black background).
  double sample(int32_t ch, double y, double x, double outside = 0.0) const {
    const double fy = std::floor(y), fx = std::floor(x);
    const int32_t y0 = static_cast<int32_t>(fy), x0 = static_cast<int32_t>(fx);
    const double dy = y - fy, dx = x - fx;
    auto px = [&](int32_t yy, int32_t xx) { return yy < 0 || yy >= h || xx < 0 || xx >= w ? outside : get(ch, yy, xx); };
    return (1 - dy) * ((1 - dx) * px(y0, x0) + dx * px(y0, x0 + 1)) + dy * ((1 - dx) * px(y0 + 1, x0) + dx * px(y0 + 1, x0 + 1));
  }
};

// Separable Gaussian blur with clamped borders (radius ceil(3 sigma)).
void gaussian_blur(Image& img, double sigma) {
  const int32_t r = static_cast<int32_t>(std::ceil(3 * sigma));
  std::vector<double> k(static_cast<size_t>(2 * r + 1));
  double sum = 0;
  for (int32_t i = -r; i <= r; ++i) sum += k[i + r] = std::exp(-0.5 * i * i / (sigma * sigma));
  for (double& x : k) x /= sum;
  Image tmp = img;
  for (int32_t ch = 0; ch < img.c; ++ch) {
    for (int32_t y = 0; y < img.h; ++y)
      for (int32_t x = 0; x < img.w; ++x) {
        double a = 0;
        for (int32_t i = -r; i <= r; ++i) a += k[i + r] * img.get(ch, y, std::clamp(x + i, 0, img.w - 1));
        tmp.at(ch, y, x) = a;
      }
    for (int32_t y = 0; y < img.h; ++y)
      for (int32_t x = 0; x < img.w; ++x) {
        double a = 0;
        for (int32_t i = -r; i <= r; ++i) a += k[i + r] * tmp.get(ch, std::clamp(y + i, 0, img.h - 1), x);
        img.at(ch, y, x) = a;
      }
  }
}

// Every output pixel p takes the source at map(p) (bilinear, black outside).
void warp(Image& img, const std::function<std::pair<double, double>(int32_t, int32_t)>& map) {
  const Image src = img;
  for (int32_t y = 0; y < img.h; ++y)
    for (int32_t x = 0; x < img.w; ++x) {
      const auto [sy, sx] = map(y, x);
      for (int32_t ch = 0; ch < img.c; ++ch) img.at(ch, y, x) = src.sample(ch, sy, sx);
    }
}

using Corruption = void (*)(Image&, int severity, Stream&);

// Severity parameters (index severity - 1); docs/robustness.md lists them.
constexpr std::array<double, 5> kGaussianSigma = {0.08, 0.12, 0.18, 0.26, 0.38};
constexpr std::array<double, 5> kShotLambda = {60, 25, 12, 5, 3};
constexpr std::array<double, 5> kImpulseAmount = {0.03, 0.06, 0.09, 0.17, 0.27};
constexpr std::array<double, 5> kBlurSigma = {0.5, 0.75, 1.0, 1.25, 1.5};
constexpr std::array<int32_t, 5> kMotionLength = {3, 5, 7, 9, 11};
constexpr std::array<double, 5> kContrast = {0.4, 0.3, 0.2, 0.1, 0.05};
constexpr std::array<double, 5> kBrightness = {0.1, 0.2, 0.3, 0.4, 0.5};
constexpr std::array<double, 5> kRotateDegrees = {6, 12, 18, 24, 30};
constexpr std::array<int32_t, 5> kTranslatePixels = {1, 2, 3, 4, 5};
constexpr std::array<double, 5> kElasticAlpha = {6, 12, 18, 26, 34};  // displacement scale, pixels
constexpr double kElasticSigma = 4.0;                                   // smoothing of the field, pixels

void gaussian_noise(Image& img, int s, Stream& r) {
  for (double& x : img.v) x += kGaussianSigma[s - 1] * r.normal();
}
void shot_noise(Image& img, int s, Stream& r) {
  const double lambda = kShotLambda[s - 1];
  for (double& x : img.v) x = static_cast<double>(r.poisson(x * lambda)) / lambda;
}
void impulse_noise(Image& img, int s, Stream& r) {
  for (double& x : img.v)
    if (r.uniform() < kImpulseAmount[s - 1]) x = r.uniform() < 0.5 ? 0.0 : 1.0;  // salt and pepper
}
void blur(Image& img, int s, Stream&) { gaussian_blur(img, kBlurSigma[s - 1]); }
void motion_blur(Image& img, int s, Stream& r) {
  // The mean along a line of L pixels through each pixel, at a random angle (edge values outside).
  const int32_t L = kMotionLength[s - 1];
  const double a = r.uniform() * kPi, dy = std::sin(a), dx = std::cos(a);
  const Image src = img;
  for (int32_t ch = 0; ch < img.c; ++ch)
    for (int32_t y = 0; y < img.h; ++y)
      for (int32_t x = 0; x < img.w; ++x) {
        double sum = 0;
        for (int32_t k = 0; k < L; ++k) {
          const double t = k - (L - 1) / 2.0;
          const double sy = std::clamp(y + t * dy, 0.0, img.h - 1.0), sx = std::clamp(x + t * dx, 0.0, img.w - 1.0);
          sum += src.sample(ch, sy, sx);
        }
        img.at(ch, y, x) = sum / L;
      }
}
void contrast(Image& img, int s, Stream&) {
  double mean = 0;
  for (double x : img.v) mean += x;
  mean /= static_cast<double>(img.v.size());
  for (double& x : img.v) x = (x - mean) * kContrast[s - 1] + mean;
}
void brightness(Image& img, int s, Stream&) {
  for (double& x : img.v) x += kBrightness[s - 1];
}
void rotate(Image& img, int s, Stream& r) {
  const double deg = kRotateDegrees[s - 1] * (r.uniform() < 0.5 ? -1.0 : 1.0), a = deg * kPi / 180.0;
  const double cy = (img.h - 1) / 2.0, cx = (img.w - 1) / 2.0, ca = std::cos(a), sa = std::sin(a);
  warp(img, [&](int32_t y, int32_t x) {
    const double yy = y - cy, xx = x - cx;  // the inverse rotation of the output coordinate
    return std::pair<double, double>{cy + ca * yy - sa * xx, cx + sa * yy + ca * xx};
  });
}
void translate(Image& img, int s, Stream& r) {
  // A shift of exactly `s` pixels along one axis (or both) in a random direction.
  const int32_t d = kTranslatePixels[s - 1];
  const uint64_t pick = r.next() % 8;
  const int32_t dirs[8][2] = {{1, 0}, {-1, 0}, {0, 1}, {0, -1}, {1, 1}, {1, -1}, {-1, 1}, {-1, -1}};
  const int32_t ty = dirs[pick][0] * d, tx = dirs[pick][1] * d;
  warp(img, [&](int32_t y, int32_t x) { return std::pair<double, double>{y - ty, x - tx}; });
}
void elastic(Image& img, int s, Stream& r) {
  // Simard et al. (2003): a uniform random displacement field smoothed by a Gaussian, scaled.
  Image field{2, img.h, img.w, std::vector<double>(static_cast<size_t>(2) * img.h * img.w)};
  for (double& x : field.v) x = 2 * r.uniform() - 1;
  gaussian_blur(field, kElasticSigma);
  const double alpha = kElasticAlpha[s - 1];
  warp(img, [&](int32_t y, int32_t x) {
    return std::pair<double, double>{y + alpha * field.get(0, y, x), x + alpha * field.get(1, y, x)};
  });
}

struct Entry {
  const char* name;
  Corruption fn;
};
constexpr Entry kCorruptions[] = {{"gaussian_noise", gaussian_noise}, {"shot_noise", shot_noise},
                                  {"impulse_noise", impulse_noise},   {"gaussian_blur", blur},
                                  {"motion_blur", motion_blur},       {"contrast", contrast},
                                  {"brightness", brightness},         {"rotate", rotate},
                                  {"translate", translate},           {"elastic", elastic}};

std::string known_names() {
  std::string s;
  for (const Entry& e : kCorruptions) s += (s.empty() ? "" : ", ") + std::string(e.name);
  return s;
}

std::vector<std::string> split(const std::string& spec) {
  std::vector<std::string> out;
  std::stringstream ss(spec);
  for (std::string item; std::getline(ss, item, ',');) out.push_back(item);
  return out;
}

}  // namespace

const std::vector<std::string>& corruption_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> n;
    for (const Entry& e : kCorruptions) n.push_back(e.name);
    return n;
  }();
  return names;
}

void corrupt_images(uint8_t* pixels, int64_t count, int32_t channels, int32_t height, int32_t width,
                    const std::string& name, int severity, uint64_t seed) {
  int index = -1;
  for (int i = 0; i < static_cast<int>(std::size(kCorruptions)); ++i)
    if (name == kCorruptions[i].name) index = i;
  LOWBIT_CHECK(index >= 0, "unknown corruption '" + name + "'; known: " + known_names());
  LOWBIT_CHECK(severity >= 1 && severity <= 5, "corruption severity must be 1..5, got " + std::to_string(severity));
  LOWBIT_CHECK(count >= 0 && channels >= 1 && height >= 1 && width >= 1, "corrupt_images: bad image shape");
  const size_t per_image = static_cast<size_t>(channels) * height * width;
  Image img{channels, height, width, std::vector<double>(per_image)};
  const uint64_t base = mix(mix(seed, static_cast<uint64_t>(index) + 1), static_cast<uint64_t>(severity));
  for (int64_t n = 0; n < count; ++n) {
    uint8_t* p = pixels + static_cast<size_t>(n) * per_image;
    for (size_t i = 0; i < per_image; ++i) img.v[i] = p[i] / 255.0;
    Stream stream(mix(base, static_cast<uint64_t>(n)));
    kCorruptions[index].fn(img, severity, stream);
    for (size_t i = 0; i < per_image; ++i)
      p[i] = static_cast<uint8_t>(std::nearbyint(std::clamp(img.v[i], 0.0, 1.0) * 255.0));  // half to even
  }
}

std::vector<std::string> parse_corruption_list(const std::string& spec) {
  if (spec == "all") return corruption_names();
  std::vector<std::string> out;
  for (const std::string& n : split(spec)) {
    LOWBIT_CHECK(std::find(corruption_names().begin(), corruption_names().end(), n) != corruption_names().end(),
                 "--shift: unknown corruption '" + n + "'; known: " + known_names() + " (or 'all')");
    out.push_back(n);
  }
  LOWBIT_CHECK(!out.empty(), "--shift: no corruption named; known: " + known_names() + " (or 'all')");
  return out;
}

std::vector<int> parse_severity_list(const std::string& spec) {
  std::vector<int> out;
  auto number = [&](const std::string& s) {
    LOWBIT_CHECK(s.size() == 1 && s[0] >= '1' && s[0] <= '5',
                 "--severity: '" + spec + "' is not a severity 1..5, a list (1,3,5) or a range (1-5)");
    return s[0] - '0';
  };
  for (const std::string& item : split(spec)) {
    const size_t dash = item.find('-');
    if (dash == std::string::npos) {
      out.push_back(number(item));
    } else {
      const int a = number(item.substr(0, dash)), b = number(item.substr(dash + 1));
      LOWBIT_CHECK(a <= b, "--severity: range '" + item + "' runs backwards");
      for (int s = a; s <= b; ++s) out.push_back(s);
    }
  }
  LOWBIT_CHECK(!out.empty(), "--severity: empty");
  return out;
}

}  // namespace lowbit::data
