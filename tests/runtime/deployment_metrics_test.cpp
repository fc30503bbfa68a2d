// Deployment metrics (runtime/deployment_metrics.h): counts checked by hand on a tiny model, and
// the relations that must hold on the reference CNN at every weight format.
#include <gtest/gtest.h>

#include <random>

#include "runtime/deployment_metrics.h"
#include "runtime/model_file.h"
#include "runtime/model_tools.h"
#include "runtime/reference_cnn.h"
#include "test_models.h"

using namespace lowbit::runtime;

TEST(DeploymentMetrics, TinyLinearByHand) {
  // input [4,1,1] -> linear 4 -> 3 (output layer), int8 weights, 8-bit input codes.
  Model m;
  m.name = "tiny";
  m.in_channels = 4;
  m.input = {0.1f, 0, 0, 255};
  Op fc = make_linear(0, 4, 3);
  std::mt19937 rng(1);
  rtest::fill_layer(rng, fc, {8, lowbit::quant::Grid::Integer}, m.input, true);
  m.add(fc);
  const ModelMetrics r = model_metrics(m);
  ASSERT_EQ(r.ops.size(), 1u);
  const OpMetrics& o = r.ops[0];
  EXPECT_EQ(o.name, "linear");
  EXPECT_EQ(o.weight_format, "int8");
  EXPECT_EQ(o.act_bits, 8);
  EXPECT_EQ(o.params, 4 * 3 + 3);
  EXPECT_EQ(o.weight_bytes, 12 + 3 * 4 + 3 * 4);  // packed int8 weights, int32 biases, float output scales
  EXPECT_EQ(o.macs, 12);
  EXPECT_EQ(o.bops, 12 * 8 * 8);
  EXPECT_EQ(o.activation_bytes, 4 + 3 * 4);  // 4 codes in, 3 int32 logits out
  // 12 MACs x (int8 multiply 0.2 + int32 add 0.1) + 3 outputs x (bias add 0.1 + float scale 3.7)
  // + 36 weight bytes x 12.5 + 16 activation bytes x 2.5; plus the input's 4 codes x 2.5.
  const double want = 12 * 0.3 + 3 * 3.8 + 36 * 12.5 + 16 * 2.5;
  EXPECT_NEAR(o.energy_pj, want, 1e-9);
  EXPECT_NEAR(r.energy_pj, want + 4 * 2.5, 1e-9);
  // FP32: 12 x (3.7 + 0.9) + 3 bias adds 0.9 + 15 params x 4 bytes x 12.5 + (4 + 3) x 4 bytes x 2.5.
  EXPECT_NEAR(o.fp32_energy_pj, 12 * 4.6 + 3 * 0.9 + 60 * 12.5 + 28 * 2.5, 1e-9);
  EXPECT_EQ(r.file_bytes, static_cast<int64_t>(serialize_model(m).size()));
  EXPECT_NEAR(r.bits_per_parameter, (12 * 8 + 3 * 32) / 15.0, 1e-12);
  EXPECT_DOUBLE_EQ(r.fp32_bytes, 60.0);
}

// A dilated conv: named with its dilation; its MACs are those of its taps (the dilation spreads
// them out, it adds none): weights x output pixels.
TEST(DeploymentMetrics, DilatedConvNamesItsDilation) {
  Model m;
  m.name = "dilated";
  m.in_channels = 2;
  m.in_height = m.in_width = 10;
  m.input = {1.0f / 255.0f, 0, 0, 255};
  std::mt19937 rng(2);
  Op c = make_conv2d(0, 2, 4, 3, 1, 2, 1, 2);  // 10x10 out
  c.dilation_w = 3;                            // extent 7: 10x8 out
  rtest::fill_layer(rng, c, {8, lowbit::quant::Grid::Integer}, m.input, false);
  const int32_t v = m.add(c);
  Op dw = make_conv2d(v, 4, 4, 3, 2, 2, 4, 2);  // (10 + 4 - 5) / 2 + 1 = 5, (8 + 4 - 5) / 2 + 1 = 4
  rtest::fill_layer(rng, dw, {8, lowbit::quant::Grid::Integer}, m.ops.back().out, true);
  m.add(dw);
  const ModelMetrics r = model_metrics(m);
  ASSERT_EQ(r.ops.size(), 2u);
  EXPECT_EQ(r.ops[0].name, "conv2d 3x3 dil2x3");
  EXPECT_EQ(r.ops[1].name, "conv2d 3x3 dw dil2");
  EXPECT_EQ(r.ops[0].macs, 4 * 2 * 9 * 10 * 8);
  EXPECT_EQ(r.ops[1].macs, 4 * 9 * 5 * 4);
  EXPECT_NE(describe_model(m).find("conv2d 3x3 dw dil2"), std::string::npos) << describe_model(m);
}

TEST(DeploymentMetrics, ReferenceCnnAtEveryWeightFormat) {
  double previous_energy = 1e300;
  for (const rtest::WeightKind k : {rtest::WeightKind{8, lowbit::quant::Grid::Integer},
                                    rtest::WeightKind{4, lowbit::quant::Grid::Integer},
                                    rtest::WeightKind{2, lowbit::quant::Grid::Odd},
                                    rtest::WeightKind{1, lowbit::quant::Grid::Odd}}) {
    const Model m = random_reference_cnn(3, k.bits, k.grid);
    const ModelMetrics r = model_metrics(m);
    EXPECT_EQ(r.macs, model_macs_per_item(m));
    int64_t bops = 0, params = 0;
    for (const OpMetrics& o : r.ops) {
      bops += o.bops;
      params += o.params;
      if (o.weight_bits > 0) {
        EXPECT_EQ(o.bops, o.macs * o.weight_bits * o.act_bits) << o.name;
      }
      EXPECT_GE(o.energy_pj, 0.0);
      EXPECT_LE(o.energy_pj, o.fp32_energy_pj) << o.name << " at " << k.bits << " bits";
      if (o.macs > 0) {
        EXPECT_LT(o.energy_pj, o.fp32_energy_pj / 3) << o.name << " at " << k.bits << " bits";
      }
    }
    EXPECT_EQ(r.bops, bops);
    EXPECT_EQ(r.params, params);
    // Weight bits per parameter: the code width plus the 32-bit biases' share.
    EXPECT_GT(r.bits_per_parameter, k.bits);
    EXPECT_LT(r.bits_per_parameter, k.bits + 0.1);
    EXPECT_LT(r.file_bytes, r.fp32_bytes / (32.0 / k.bits) * 1.2);
    // Narrower weights cost less energy: smaller multiplies and fewer weight bytes.
    EXPECT_LT(r.energy_pj, previous_energy) << k.bits << " bits";
    previous_energy = r.energy_pj;
    const std::string table = metrics_table(r);
    EXPECT_NE(table.find("total"), std::string::npos);
    EXPECT_NE(table.find("Horowitz"), std::string::npos);
  }
}

TEST(DeploymentMetrics, InvalidModelNamesWhere) {
  Model m;  // no ops
  try {
    model_metrics(m, {}, "broken.lbq");
    ADD_FAILURE() << "an empty model was accepted";
  } catch (const lowbit::Error& e) {
    EXPECT_NE(std::string(e.what()).find("broken.lbq"), std::string::npos) << e.what();
  }
}
