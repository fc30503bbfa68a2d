// Deployment metrics of transformer models (runtime/transformer_metrics.h): counts of a one-layer
// width-8 decoder and of the tests' small encoder, computed by hand here.
#include <gtest/gtest.h>

#include <string>

#include "runtime/decoder_model_file.h"
#include "runtime/encoder_model_file.h"
#include "runtime/transformer_metrics.h"
#include "transformer_test_models.h"

using namespace lowbit::runtime;

namespace {

const OpMetrics& row(const ModelMetrics& m, const std::string& name) {
  for (const OpMetrics& o : m.ops)
    if (o.name == name) return o;
  throw std::runtime_error("no row " + name);
}

// Totals are the sums of the rows.
void expect_sums(const ModelMetrics& m) {
  int64_t params = 0, bytes = 0, macs = 0, bops = 0, act = 0, float_macs = 0;
  double nj = 0, fp32_nj = 0;
  for (const OpMetrics& o : m.ops) {
    params += o.params;
    bytes += o.weight_bytes;
    macs += o.macs;
    bops += o.bops;
    act += o.activation_bytes;
    if (o.math == "float") float_macs += o.macs;
    nj += o.energy_pj;
    fp32_nj += o.fp32_energy_pj;
  }
  EXPECT_EQ(m.params, params);
  EXPECT_EQ(m.weight_bytes, bytes);
  EXPECT_EQ(m.macs, macs);
  EXPECT_EQ(m.bops, bops);
  EXPECT_EQ(m.activation_bytes, act);
  EXPECT_EQ(m.float_macs, float_macs);
  EXPECT_NEAR(m.energy_pj, nj, 1e-6);
  EXPECT_NEAR(m.fp32_energy_pj, fp32_nj, 1e-6);
}

// One layer, width 8, 2 heads, hidden 16, context 4, int4 weights in groups of 4, float head.
DecoderModel tiny_decoder(bool quantized_head) {
  rtest::DecoderShape shape;
  shape.width = 8;
  shape.heads = 2;
  shape.hidden = 16;
  shape.context = 4;
  shape.layers = 1;
  return rtest::random_decoder(7, rtest::kFormats[1], 4, quantized_head, shape);
}

}  // namespace

TEST(DeploymentMetrics, DecoderByHand) {
  const DecoderModel m = tiny_decoder(false);
  const ModelMetrics r = decoder_metrics(m);  // the token at position 3 attends to T = 4 positions
  EXPECT_EQ(r.context_tokens, 4);
  ASSERT_EQ(r.ops.size(), 16u);  // embed, 14 rows of the block, norm_f, head
  // Parameters: embedding 256 x 8, three norms of 8, q k v o 4 x 64, gate up down 3 x 128, head 256 x 8.
  EXPECT_EQ(r.params, 2048 + 24 + 256 + 384 + 2048);
  EXPECT_EQ(r.params, decoder_parameter_count(m));
  // Stored bytes: float tables 4 each; int4 codes half a byte, one float scale per (row, group of 4).
  EXPECT_EQ(row(r, "block0_attn_q").weight_bytes, 32 + 8 * 2 * 4);
  EXPECT_EQ(row(r, "block0_mlp_gate").weight_bytes, 64 + 16 * 2 * 4);
  EXPECT_EQ(row(r, "block0_mlp_down").weight_bytes, 64 + 8 * 4 * 4);
  EXPECT_EQ(r.weight_bytes, 4 * (2048 + 24 + 2048) + 4 * 96 + 3 * 192);
  EXPECT_EQ(r.file_bytes, static_cast<int64_t>(serialize_decoder_model(m).size()));
  // MACs per token: projections 4 x 64 + 3 x 128, attention 2 T d = 64 (float), float head 2048.
  EXPECT_EQ(row(r, "block0_attn").macs, 64);
  EXPECT_EQ(row(r, "block0_attn").math, "float");
  EXPECT_EQ(r.macs, 640 + 64 + 2048);
  EXPECT_EQ(r.float_macs, 64 + 2048);
  // BOPs: integer projections at 4 x 8 bits, float MACs at 32 x 32.
  EXPECT_EQ(row(r, "block0_attn_q").bops, 64 * 4 * 8);
  EXPECT_EQ(r.bops, 640 * 4 * 8 + (64 + 2048) * 32 * 32);
  // Bits per parameter: float parameters at 32, int4 codes at 4 (scales are bytes, not parameters).
  EXPECT_NEAR(r.bits_per_parameter, ((2048 + 24 + 2048) * 32.0 + 640 * 4.0) / 4760.0, 1e-12);
  // Activation bytes: as summed in docs/metrics.md's worked example.
  EXPECT_EQ(row(r, "block0_attn_q").activation_bytes, 8 + 4 * 8 + 4 * 8 + 8);
  EXPECT_EQ(row(r, "block0_attn_k").activation_bytes, 8 + 4 * 8);
  EXPECT_EQ(row(r, "block0_attn").activation_bytes, 4 * (3 * 8 + 2 * 8 + 2 * 4 * 8 + 8));
  EXPECT_EQ(r.activation_bytes, 2664);

  // Energy of q (it also quantizes the norm's output per token): 64 MACs x (int4 x int8 multiply
  // 0.1 + int32 add 0.1), epilogue 16 (row, group) products summed x 4.6 and 8 token-scale
  // multiplies x 3.7, quantization 8 x (compare 0.9 + scale 3.7), 96 weight bytes x 12.5, 80
  // activation bytes x 2.5.
  const OpMetrics& q = row(r, "block0_attn_q");
  EXPECT_NEAR(q.energy_pj, 64 * 0.2 + 16 * 4.6 + 8 * 3.7 + 8 * 4.6 + 96 * 12.5 + 80 * 2.5, 1e-9);
  EXPECT_EQ(q.float_ops, 2 * 16 + 8 + 2 * 8);
  // FP32: 64 x 4.6, 256 weight bytes, 16 floats in and out.
  EXPECT_NEAR(q.fp32_energy_pj, 64 * 4.6 + 256 * 12.5 + 64 * 2.5, 1e-9);
  // Attention, float in both models: 64 MACs, RoPE on 16 elements (2 multiplies, 1 add), softmax on
  // 8 scores (3 and 3), 448 activation bytes.
  const OpMetrics& a = row(r, "block0_attn");
  EXPECT_NEAR(a.energy_pj, 64 * 4.6 + 16 * (2 * 3.7 + 0.9) + 8 * (3 * 3.7 + 3 * 0.9) + 448 * 2.5, 1e-9);
  EXPECT_DOUBLE_EQ(a.energy_pj, a.fp32_energy_pj);
  // The embedding reads one row of its table.
  EXPECT_EQ(row(r, "embed").weight_read_bytes, 32);
  EXPECT_NEAR(row(r, "embed").energy_pj, 32 * 12.5 + 32 * 2.5, 1e-9);
  expect_sums(r);
  // No decoder op costs more than in FP32 (float ops cost the same). An encoder's output grids
  // are extra work on top of float math, so this holds for decoders only.
  for (const OpMetrics& o : r.ops) EXPECT_LE(o.energy_pj, o.fp32_energy_pj + 1e-9) << o.name;
  const std::string table = metrics_table(r);
  EXPECT_NE(table.find("one generated token at position 3"), std::string::npos) << table;
  EXPECT_NE(table.find("float in the runtime: 2112 of 2752 MACs"), std::string::npos) << table;
}

TEST(DeploymentMetrics, DecoderAttentionGrowsWithContext) {
  const DecoderModel m = tiny_decoder(true);
  const ModelMetrics one = decoder_metrics(m, 1), four = decoder_metrics(m, 4);
  // Only attention depends on T: 2 T d MACs and the cache's 8 T d bytes.
  EXPECT_EQ(row(one, "block0_attn").macs, 16);
  EXPECT_EQ(four.macs - one.macs, 64 - 16);
  EXPECT_EQ(four.activation_bytes - one.activation_bytes, 8 * 3 * 8);
  // A quantized head is an integer projection: 2048 MACs at 4 x 8 bits, its input quantized.
  const OpMetrics& head = row(four, "head");
  EXPECT_EQ(head.math, "integer");
  EXPECT_EQ(head.bops, 2048 * 4 * 8);
  EXPECT_EQ(four.float_macs, 64);
  EXPECT_EQ(four.params, decoder_parameter_count(m));
  expect_sums(four);
  EXPECT_THROW(decoder_metrics(m, 5), lowbit::Error);  // beyond the context
}

TEST(DeploymentMetrics, EncoderByHand) {
  // 16 tokens of 49 pixels, width 16, 2 heads, hidden 32, 2 layers, int8 weights in groups of 16,
  // 8-bit activation grids; integer patch embedding and fc2, the other linears read float inputs.
  const EncoderModel m = rtest::random_encoder(3, rtest::kFormats[0], 16, 8);
  const ModelMetrics r = encoder_metrics(m);
  EXPECT_EQ(r.inference, "one image (16 tokens)");
  // Parameters: patch 49 x 16 + 16, position 16 x 16, per layer 4 norm vectors of 16, q k v o
  // 4 x (256 + 16), fc1 512 + 32, fc2 512 + 16; norm_f 32; head 160 + 10.
  EXPECT_EQ(r.params, 800 + 256 + 2 * (64 + 1088 + 544 + 528) + 32 + 170);
  EXPECT_EQ(r.params, encoder_parameter_count(m));
  EXPECT_EQ(r.file_bytes, static_cast<int64_t>(serialize_encoder_model(m).size()));
  // MACs: patch 16 x 49 x 16 (integer); per layer q k v o 4 x 4096, attention 2 x 16 x 16 x 16,
  // fc1 8192 (float), fc2 8192 (integer); head 160 (float).
  EXPECT_EQ(row(r, "patch_embed").math, "integer");
  EXPECT_EQ(row(r, "patch_embed").macs, 12544);
  EXPECT_EQ(row(r, "block0_attn").macs, 8192);
  EXPECT_EQ(row(r, "block0_attn_q").math, "float");
  EXPECT_EQ(row(r, "block0_mlp_fc2").math, "integer");
  EXPECT_EQ(r.macs, 12544 + 2 * (16384 + 8192 + 8192 + 8192) + 160);
  EXPECT_EQ(r.float_macs, 2 * (16384 + 8192 + 8192) + 160);
  EXPECT_EQ(r.bops, (12544 + 2 * 8192) * 8 * 8 + int64_t{65696} * 32 * 32);
  // fc2 by hand: 8192 MACs x 0.3; epilogue 16 tokens x 16 outputs x 2 groups x 4.6, 256 x 3.7
  // (s_x), 256 bias adds x 0.9, 256 output codes x 9.2; 704 weight bytes (512 codes, 32 scales,
  // 16 biases) x 12.5; 512 input codes + 1024 float output bytes x 2.5.
  const OpMetrics& fc2 = row(r, "block0_mlp_fc2");
  EXPECT_EQ(fc2.act_bits, 8);
  EXPECT_EQ(fc2.weight_bytes, 704);
  EXPECT_EQ(fc2.activation_bytes, 512 + 1024);
  EXPECT_NEAR(fc2.energy_pj,
              8192 * 0.3 + 512 * 4.6 + 256 * 3.7 + 256 * 0.9 + 256 * 9.2 + 704 * 12.5 + 1536 * 2.5, 1e-6);
  // fc1 keeps codes for fc2 (16 x 32 more bytes) and reads its int8 weights as the floats the runtime
  // holds them in (4 x (512 + 32) bytes).
  const OpMetrics& fc1 = row(r, "block0_mlp_fc1");
  EXPECT_EQ(fc1.activation_bytes, 4 * 16 * (16 + 32) + 16 * 32);
  EXPECT_EQ(fc1.weight_read_bytes, 4 * (512 + 32));
  EXPECT_EQ(fc1.bops, 8192 * 32 * 32);
  expect_sums(r);
  EXPECT_NE(metrics_table(r).find("block1_attn_q"), std::string::npos);
}
