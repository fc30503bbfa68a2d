#include "quant/pointwise_function.h"

#include <gtest/gtest.h>

#include <cmath>

#include "base/error.h"
#include "quant/quantize.h"

using namespace lowbit::quant;

// The worked example of pointwise_function.h and docs/numerics.md: every number is a power of two,
// so the float arithmetic is exact and the expected codes follow by hand.
TEST(PointwiseTable, WorkedExample) {
  const PointwiseFunction leaky{PointwiseKind::LeakyRelu, 0.125f, 0.0f};
  const auto t = make_pointwise_table(leaky, 0.0625f, 128, 0.03125f, 16, 0, 255);
  EXPECT_EQ(t[100], 9);    // 0.0625 * -28 = -1.75; * 0.125 = -0.21875 = -7 steps; + 16
  EXPECT_EQ(t[140], 40);   // 0.75 = 24 steps; + 16
  EXPECT_EQ(t[128], 16);   // 0 -> the zero point
  EXPECT_EQ(t[255], 255);  // 7.9375 = 254 steps: clamped to 255
  EXPECT_EQ(t[0], 0);      // -8 * 0.125 = -1 = -32 steps: clamped to 0
}

// The affine worked example of docs/numerics.md section 8: an input normalisation with mean 0.25,
// std 0.5 (alpha 2, beta -0.5) from pixel codes (1/255, 0) onto (0.0125, 40).
TEST(PointwiseTable, AffineNormalisationExample) {
  const PointwiseFunction norm = pointwise_function("affine", 2.0f, -0.5f);
  EXPECT_EQ(norm.kind, PointwiseKind::Affine);
  EXPECT_EQ(norm.describe(), "affine(alpha=2, beta=-0.5)");
  const auto t = make_pointwise_table(norm, 1.0f / 255.0f, 0, 0.0125f, 40, 0, 255);
  EXPECT_EQ(t[0], 0);     // -0.5 = -40 steps; + 40 = 0
  EXPECT_EQ(t[51], 32);   // 0.2 -> -0.1 = -8 steps; + 40
  EXPECT_EQ(t[255], 160); // 1 -> 1.5 = 120 steps; + 40
}

// Every entry equals quantize(f(dequantize(q))), stays in the output range, and a monotone f gives
// a monotone table.
TEST(PointwiseTable, EntriesFollowTheDefinition) {
  for (const PointwiseFunction f : {PointwiseFunction{PointwiseKind::LeakyRelu, 0.01f, 0.0f},
                                    PointwiseFunction{PointwiseKind::Sigmoid}, PointwiseFunction{PointwiseKind::Tanh},
                                    PointwiseFunction{PointwiseKind::HardSigmoid, 0.2f, 0.5f},
                                    PointwiseFunction{PointwiseKind::HardSwish},
                                    PointwiseFunction{PointwiseKind::Affine, 1.7f, -0.3f}}) {
    SCOPED_TRACE(f.describe());
    const float s_in = 0.037f, s_out = 0.0091f;
    const int32_t z_in = 101, z_out = 37, qmin = 3, qmax = 250;
    const auto t = make_pointwise_table(f, s_in, z_in, s_out, z_out, qmin, qmax);
    for (int q = 0; q < 256; ++q) {
      const double x = static_cast<double>(s_in * static_cast<float>(q - z_in));
      EXPECT_EQ(t[q], quantize_integer(static_cast<float>(f(x)), s_out, z_out, qmin, qmax)) << q;
      EXPECT_GE(t[q], qmin);
      EXPECT_LE(t[q], qmax);
      if (q > 0 && f.kind != PointwiseKind::HardSwish) {
        EXPECT_GE(t[q], t[q - 1]) << q;
      }
    }
  }
}

TEST(PointwiseFunction, Definitions) {
  EXPECT_DOUBLE_EQ((PointwiseFunction{PointwiseKind::LeakyRelu, 0.1f, 0.0f})(-2.0), -2.0 * double(0.1f));
  EXPECT_DOUBLE_EQ((PointwiseFunction{PointwiseKind::Sigmoid})(0.0), 0.5);
  EXPECT_DOUBLE_EQ((PointwiseFunction{PointwiseKind::HardSigmoid, 0.2f, 0.5f})(10.0), 1.0);
  EXPECT_DOUBLE_EQ((PointwiseFunction{PointwiseKind::HardSwish})(-3.0), 0.0);
  EXPECT_DOUBLE_EQ((PointwiseFunction{PointwiseKind::HardSwish})(3.0), 3.0);
  EXPECT_DOUBLE_EQ((PointwiseFunction{PointwiseKind::HardSwish})(1.5), 1.5 * 0.75);
  EXPECT_DOUBLE_EQ((PointwiseFunction{PointwiseKind::Tanh})(0.5), std::tanh(0.5));
  EXPECT_EQ(pointwise_function("hard_swish").kind, PointwiseKind::HardSwish);
  EXPECT_THROW(pointwise_function("swish"), lowbit::Error);
}
