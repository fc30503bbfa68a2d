// ONNX export of the gpt-tiny language model (export/decoder_export.h): the graph's structure
// (operator counts, initializer types, refusals; no ONNX Runtime needed), and in ONNX Runtime
// (Node.js binding, tests/export/ort_generate.js, full recompute) greedy decoding of 64 tokens
// after fixed prompts gives exactly the tokens of lowbit's DecoderSession, with the logits within
// a measured tolerance; the same for the KV-cache form (prefill once, then one token per run),
// whose logits also match the full-recompute export's. Skipped, with a message, when node or
// onnxruntime-node is missing.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>

#include "base/error.h"
#include "convert/to_decoder.h"
#include "export/decoder_export.h"
#include "export/float_export.h"
#include "export/export_test_support.h"
#include "export/proto_reader.h"
#include "models/gpt.h"
#include "qat/qat_config.h"
#include "qat/quantized_transformer.h"
#include "runtime/decoder_model_file.h"
#include "runtime/decoder_session.h"
#include "runtime/text_generation.h"

namespace lowbit::onnx {
namespace {

// ---- Models -------------------------------------------------------------------------------

// A random decoder model (no training): every projection in `bits` / `grid` with `group_size`
// (0: per-channel), values drawn over the whole grid, positive scales.
runtime::DecoderModel synthetic_model(int32_t bits, quant::Grid grid, int32_t group_size, bool quantized_head = false,
                                      int32_t width = 64, int32_t hidden = 96) {
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  runtime::DecoderModel m;
  m.name = "synthetic";
  m.width = width;
  m.heads = 4;
  m.hidden = hidden;
  m.context = 32;
  auto floats = [&](size_t n, float scale, float offset = 0.0f) {
    std::vector<float> v(n);
    for (float& x : v) x = offset + scale * u(rng);
    return v;
  };
  auto projection = [&](int32_t in, int32_t out) {
    runtime::QuantLinear w;
    const int32_t gs = group_size > 0 ? group_size : in;
    const int32_t groups = (in + gs - 1) / gs;
    const int32_t lo = grid == quant::Grid::Odd ? -(1 << bits) + 1 : -(1 << (bits - 1)) + (bits == 2 ? 1 : 0);
    const int32_t hi = grid == quant::Grid::Odd ? (1 << bits) - 1 : (1 << (bits - 1)) - 1;
    std::uniform_int_distribution<int32_t> code(lo, hi);
    std::vector<int32_t> values(static_cast<size_t>(in) * out);
    for (int32_t& v : values) {
      v = code(rng);
      if (grid == quant::Grid::Odd && v % 2 == 0) v += (v < hi ? 1 : -1);
    }
    const float typical = 1.0f / (std::sqrt(static_cast<float>(in)) * static_cast<float>(hi));
    runtime::set_quant_linear(w, in, out, gs, bits, grid, values, floats(static_cast<size_t>(out) * groups, 0.5f * typical, typical));
    return w;
  };
  m.embedding = floats(static_cast<size_t>(m.vocab) * width, 1.0f);
  for (int l = 0; l < 2; ++l) {
    runtime::DecoderLayer L;
    L.norm1 = floats(static_cast<size_t>(width), 0.2f, 1.0f);
    L.norm2 = floats(static_cast<size_t>(width), 0.2f, 1.0f);
    L.q = projection(width, width);
    L.k = projection(width, width);
    L.v = projection(width, width);
    L.o = projection(width, width);
    L.gate = projection(width, hidden);
    L.up = projection(width, hidden);
    L.down = projection(hidden, width);
    m.layers.push_back(std::move(L));
  }
  m.norm_f = floats(static_cast<size_t>(width), 0.2f, 1.0f);
  m.head_quantized = quantized_head;
  if (quantized_head) m.head_q = projection(width, m.vocab);
  else m.head = floats(static_cast<size_t>(m.vocab) * width, 0.3f);
  return m;
}

models::GptOptions lm_options() {
  models::GptOptions o;
  o.layers = 2;
  o.width = 64;
  o.heads = 4;
  o.context = 96;
  return o;
}

const std::string kText =
    "the quick brown fox jumps over the lazy dog. pack my box with five dozen liquor jugs. "
    "how vexingly quick daft zebras jump! sphinx of black quartz, judge my vow. ";

// gpt-tiny QAT-prepared by `config_json`, trained `steps` Adam steps on kText (so that its
// greedy predictions have margins, not near-ties, as tests/qat/lm_runtime_test.cpp), converted.
runtime::DecoderModel trained_decoder(const std::string& config_json, const std::string& what, int steps = 40) {
  torch::manual_seed(1);
  models::Net net = models::make_gpt(lm_options());
  qat::prepare(net, qat::with_language_model_defaults(qat::QatConfig::from_json(nlohmann::json::parse(config_json))));
  net->train();
  torch::optim::AdamW opt(net->parameters(), torch::optim::AdamWOptions(3e-3).weight_decay(0.0));
  std::string text;
  while (text.size() < 2000) text += kText;
  const int64_t T = 48, B = 8;
  torch::Tensor all = torch::empty({static_cast<int64_t>(text.size())}, torch::kLong);
  for (size_t i = 0; i < text.size(); ++i) all[static_cast<int64_t>(i)] = static_cast<unsigned char>(text[i]);
  for (int s = 0; s < steps; ++s) {
    std::vector<torch::Tensor> rows;
    for (int64_t b = 0; b < B; ++b) rows.push_back(all.narrow(0, (s * 37 + b * 101) % (all.size(0) - T - 1), T + 1));
    const torch::Tensor batch = torch::stack(rows);
    const torch::Tensor logits = net->forward(batch.narrow(1, 0, T));
    const torch::Tensor loss =
        torch::nn::functional::cross_entropy(logits.reshape({-1, 256}), batch.narrow(1, 1, T).reshape({-1}));
    opt.zero_grad();
    loss.backward();
    opt.step();
  }
  net->eval();
  const runtime::DecoderModel m = convert::to_decoder_model(net, lm_options(), what);
  return runtime::parse_decoder_model(runtime::serialize_decoder_model(m), what);  // through the file format
}

// ---- Graph inspection ----------------------------------------------------------------------

std::map<std::string, int> op_counts(const Model& model) {
  std::map<std::string, int> c;
  for (const Node& n : model.graph.nodes) ++c[n.op_type];
  return c;
}

const Node* first_node(const Model& model, const std::string& op) {
  for (const Node& n : model.graph.nodes)
    if (n.op_type == op) return &n;
  return nullptr;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(DecoderExport, QdqGraphHasOneDequantizedMatMulPerProjectionAndPerTokenQuantizers) {
  const runtime::DecoderModel m = synthetic_model(4, quant::Grid::Integer, 32);
  const Model model = decoder_model(m);
  const auto c = op_counts(model);
  const int layers = static_cast<int>(m.layers.size());
  EXPECT_EQ(c.at("DequantizeLinear"), 7 * layers);
  EXPECT_EQ(c.at("MatMul"), 7 * layers + 2 * layers + 1);  // projections, q.k and p.v, float head
  EXPECT_EQ(c.at("Round"), 4 * layers);  // one per distinct projection input: norm1, attention, norm2, swiglu
  EXPECT_EQ(c.at("Clip"), 4 * layers);
  EXPECT_EQ(c.at("Softmax"), layers);
  EXPECT_EQ(c.count("MatMulNBits"), 0u);
  EXPECT_TRUE(model.extra_opsets.empty());
  EXPECT_EQ(model.opset, 21);
  for (const Node& n : model.graph.nodes) EXPECT_TRUE(n.domain.empty()) << n.name;
  const Node* dq = first_node(model, "DequantizeLinear");
  ASSERT_NE(dq, nullptr);
  ASSERT_NE(dq->attribute("block_size"), nullptr);
  EXPECT_EQ(dq->attribute("block_size")->i, 32);
  EXPECT_EQ(dq->attribute("axis")->i, 1);
  const Tensor* w = model.graph.initializer("block0_attn_q.weight_q");
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(w->type, DataType::Int4);
  EXPECT_EQ(w->dims, (std::vector<int64_t>{1, 64, 64}));  // [1, in, out]
  EXPECT_EQ(model.graph.initializer("block0_mlp_down.weight_scale")->dims, (std::vector<int64_t>{1, 3, 64}));  // [1, groups, out]
  // W[k, n] = value[n, k]: element (k = 1, n = 0) of the INT4 tensor is value (0, 1).
  const std::vector<int8_t> v = m.layers[0].q.values();
  const int8_t got = static_cast<int8_t>(static_cast<uint8_t>(w->raw[64 / 2]) << 4) >> 4;  // element 64, low nibble
  EXPECT_EQ(got, v[1]);
  EXPECT_GT(serialize(model).size(), 0u);  // topologically ordered, sizes consistent
  EXPECT_EQ(model.graph.outputs[0].name, "logits");
  EXPECT_EQ(model.graph.inputs[0].type, DataType::Int64);
}

TEST(DecoderExport, QdqKeepsEveryGridExactly) {
  // Ternary per-channel: INT4 values {-1, 0, 1}, per-output-channel scales on axis 2.
  {
    const Model model = decoder_model(synthetic_model(2, quant::Grid::Integer, 0));
    const Node* dq = first_node(model, "DequantizeLinear");
    EXPECT_EQ(dq->attribute("axis")->i, 2);
    EXPECT_EQ(dq->attribute("block_size"), nullptr);
    EXPECT_EQ(model.graph.initializer("block0_attn_q.weight_q")->type, DataType::Int4);
    EXPECT_EQ(model.graph.initializer("block0_attn_q.weight_scale")->dims, (std::vector<int64_t>{64}));
  }
  // SEQ 2-bit (odd grid): the odd values 2c + 1 in INT4, the scales as they are.
  {
    const runtime::DecoderModel m = synthetic_model(2, quant::Grid::Odd, 32);
    const Model model = decoder_model(m);
    const Tensor* w = model.graph.initializer("block1_mlp_up.weight_q");
    ASSERT_EQ(w->type, DataType::Int4);
    const std::vector<int8_t> v = m.layers[1].up.values();
    for (int64_t i = 0; i < 10; ++i) {  // W[0, n] = value[n, 0]
      const uint8_t byte = static_cast<uint8_t>(w->raw[static_cast<size_t>(i / 2)]);
      const int8_t code = static_cast<int8_t>(static_cast<uint8_t>((i % 2 == 0 ? byte : byte >> 4) << 4)) >> 4;
      EXPECT_EQ(code, v[static_cast<size_t>(i) * 64]) << i;
      EXPECT_NE(code % 2, 0);
    }
  }
  // int8: INT8 initializers.
  EXPECT_EQ(decoder_model(synthetic_model(8, quant::Grid::Integer, 0)).graph.initializer("block0_attn_v.weight_q")->type,
            DataType::Int8);
}

TEST(DecoderExport, MatMulNBitsGraphPacksUint4BlocksAlongK) {
  const runtime::DecoderModel m = synthetic_model(4, quant::Grid::Integer, 32);
  DecoderExportOptions o;
  o.form = DecoderExportForm::MatMulNBits;
  const Model model = decoder_model(m, o);
  const auto c = op_counts(model);
  const int layers = static_cast<int>(m.layers.size());
  EXPECT_EQ(c.at("MatMulNBits"), 7 * layers);
  EXPECT_EQ(c.count("DequantizeLinear"), 0u);
  EXPECT_EQ(c.at("Round"), 4 * layers);
  ASSERT_EQ(model.extra_opsets.size(), 1u);
  EXPECT_EQ(model.extra_opsets[0].first, "com.microsoft");
  const Node* mm = first_node(model, "MatMulNBits");
  EXPECT_EQ(mm->domain, "com.microsoft");
  EXPECT_EQ(mm->attribute("bits")->i, 4);
  EXPECT_EQ(mm->attribute("block_size")->i, 32);
  EXPECT_EQ(mm->attribute("accuracy_level")->i, 1);  // A is not re-quantized inside the operator
  EXPECT_EQ(mm->attribute("K")->i, 64);
  EXPECT_EQ(mm->attribute("N")->i, 64);
  EXPECT_EQ(mm->inputs.size(), 3u);  // no zero points: the default 8
  const Tensor* b = model.graph.initializer("block0_mlp_down.weight_packed");
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->type, DataType::Uint8);
  EXPECT_EQ(b->dims, (std::vector<int64_t>{64, 3, 16}));  // [N, K / 32 blocks, 32 / 2 bytes]
  EXPECT_EQ(model.graph.initializer("block0_mlp_down.weight_scales")->dims, (std::vector<int64_t>{64, 3}));
  // Row n = 1, block 2, byte 3 holds K index 2 * 32 + 6 (low nibble) and 71 (high), value + 8.
  const std::vector<int8_t> v = m.layers[0].down.values();
  const auto byte = static_cast<uint8_t>(b->raw[1 * 3 * 16 + 2 * 16 + 3]);
  EXPECT_EQ(byte & 0x0F, v[96 + 70] + 8);
  EXPECT_EQ(byte >> 4, v[96 + 71] + 8);
  // On the wire: ModelProto.opset_import (8) holds "" 21 and "com.microsoft" 1; the MatMulNBits
  // NodeProto (graph 7, node 1) carries domain (field 7).
  const std::string bytes = serialize(model);
  std::map<std::string, uint64_t> opsets;
  for (const auto& f : testing::fields_numbered(bytes, 8))
    opsets[testing::fields_numbered(f.bytes, 1).empty() ? "" : testing::fields_numbered(f.bytes, 1)[0].bytes] =
        testing::fields_numbered(f.bytes, 2)[0].varint;
  EXPECT_EQ(opsets, (std::map<std::string, uint64_t>{{"", 21}, {"com.microsoft", 1}}));
  int nbits_nodes = 0;
  for (const auto& node : testing::fields_numbered(testing::fields_numbered(bytes, 7)[0].bytes, 1)) {
    const auto op = testing::fields_numbered(node.bytes, 4), domain = testing::fields_numbered(node.bytes, 7);
    if (op[0].bytes == "MatMulNBits") {
      ++nbits_nodes;
      ASSERT_EQ(domain.size(), 1u);
      EXPECT_EQ(domain[0].bytes, "com.microsoft");
    } else {
      EXPECT_TRUE(domain.empty()) << op[0].bytes;
    }
  }
  EXPECT_EQ(nbits_nodes, 7 * layers);

  // Per-channel int4: 32-wide blocks, the channel's scale repeated; group 48: 16-wide blocks.
  const runtime::DecoderModel pc = synthetic_model(4, quant::Grid::Integer, 0, true);
  EXPECT_EQ(matmulnbits_block_size(pc.layers[0].q), 32);
  const Model pcm = decoder_model(pc, o);
  const Tensor* s = pcm.graph.initializer("block0_mlp_down.weight_scales");
  ASSERT_EQ(s->dims, (std::vector<int64_t>{64, 3}));
  std::vector<float> sv(3);
  std::memcpy(sv.data(), s->raw.data() + 5 * 3 * 4, 12);  // row 5
  EXPECT_EQ(sv[0], pc.layers[0].down.scales[5]);
  EXPECT_EQ(sv[2], pc.layers[0].down.scales[5]);
  EXPECT_EQ(op_counts(pcm).at("MatMulNBits"), 7 * 2 + 1);  // the quantized head too
  EXPECT_EQ(matmulnbits_block_size(synthetic_model(4, quant::Grid::Integer, 48, false, 96, 96).layers[0].q), 16);
}

TEST(DecoderExport, MatMulNBitsRefusesWhatItCannotExpressNamingTheLayer) {
  DecoderExportOptions o;
  o.form = DecoderExportForm::MatMulNBits;
  const std::string ternary = error_of([&] { decoder_model(synthetic_model(2, quant::Grid::Integer, 0), o, "'t.lbq'"); });
  EXPECT_NE(ternary.find("'t.lbq'"), std::string::npos) << ternary;
  EXPECT_NE(ternary.find("block0_attn_q"), std::string::npos) << ternary;
  EXPECT_NE(ternary.find("ternary"), std::string::npos) << ternary;
  EXPECT_NE(ternary.find("--format onnx"), std::string::npos) << ternary;
  EXPECT_NE(error_of([&] { decoder_model(synthetic_model(8, quant::Grid::Integer, 32), o); }).find("int8 group32"),
            std::string::npos);
  EXPECT_NE(error_of([&] { decoder_model(synthetic_model(1, quant::Grid::Odd, 0), o); }).find("binary"), std::string::npos);
  // int4 with groups of 40: no power-of-two block >= 16 divides 40.
  const std::string g40 = error_of([&] { decoder_model(synthetic_model(4, quant::Grid::Integer, 40, false, 80, 80), o); });
  EXPECT_NE(g40.find("block0_attn_q"), std::string::npos) << g40;
  EXPECT_NE(g40.find("multiple of 16"), std::string::npos) << g40;
  // An int4 model with an int8 head: the head is named.
  runtime::DecoderModel mixed = synthetic_model(4, quant::Grid::Integer, 32, true);
  mixed.head_q = synthetic_model(8, quant::Grid::Integer, 32, true).head_q;
  EXPECT_NE(error_of([&] { decoder_model(mixed, o); }).find("projection head"), std::string::npos);
  // And the QDQ form takes all of them.
  EXPECT_NO_THROW(decoder_model(mixed));
  EXPECT_EQ(parse_decoder_export_form("matmulnbits"), DecoderExportForm::MatMulNBits);
  EXPECT_NE(error_of([] { parse_decoder_export_form("gguf"); }).find("gguf"), std::string::npos);
}

TEST(DecoderExport, KvCacheGraphNamesThePastAndPresentOfEveryLayer) {
  const runtime::DecoderModel m = synthetic_model(4, quant::Grid::Integer, 32);
  for (const DecoderExportForm form : {DecoderExportForm::Qdq, DecoderExportForm::MatMulNBits}) {
    DecoderExportOptions full, cached;
    full.form = cached.form = form;
    cached.with_kv_cache = true;
    const Model fm = decoder_model(m, full), cm = decoder_model(m, cached);
    const int layers = static_cast<int>(m.layers.size()), H = m.heads, hd = m.head_size();
    // Inputs: tokens, then past_key_<l>, past_value_<l>; outputs: logits, then present_*.
    ASSERT_EQ(cm.graph.inputs.size(), 1u + 2u * layers);
    ASSERT_EQ(cm.graph.outputs.size(), 1u + 2u * layers);
    EXPECT_EQ(cm.graph.inputs[0].name, "tokens");
    EXPECT_EQ(cm.graph.inputs[0].type, DataType::Int64);
    EXPECT_EQ(cm.graph.outputs[0].name, "logits");
    for (int l = 0; l < layers; ++l) {
      const std::string ls = std::to_string(l);
      const std::vector<int64_t> dims{1, H, -1, hd};
      EXPECT_EQ(cm.graph.inputs[1 + 2 * l].name, "past_key_" + ls);
      EXPECT_EQ(cm.graph.inputs[2 + 2 * l].name, "past_value_" + ls);
      EXPECT_EQ(cm.graph.inputs[1 + 2 * l].dims, dims);
      EXPECT_EQ(cm.graph.inputs[2 + 2 * l].type, DataType::Float);
      EXPECT_EQ(cm.graph.outputs[1 + 2 * l].name, "present_key_" + ls);
      EXPECT_EQ(cm.graph.outputs[2 + 2 * l].name, "present_value_" + ls);
      EXPECT_EQ(cm.graph.outputs[2 + 2 * l].dims, dims);
      // present = Concat(past, new) on the time axis.
      for (const char* kind : {"key", "value"}) {
        const Node* n = cm.graph.producer(std::string("present_") + kind + "_" + ls);
        ASSERT_NE(n, nullptr) << kind << l;
        EXPECT_EQ(n->op_type, "Concat");
        EXPECT_EQ(n->attribute("axis")->i, 2);
        ASSERT_EQ(n->inputs.size(), 2u);
        EXPECT_EQ(n->inputs[0], std::string("past_") + kind + "_" + ls);
      }
      // The cached key is the rotated one (RoPE before the cache, as ops::causal_attention).
      const Node* key_new = cm.graph.producer(cm.graph.producer("present_key_" + ls)->inputs[1]);
      ASSERT_NE(key_new, nullptr);
      EXPECT_EQ(key_new->op_type, "Transpose");
      const Node* rotated = cm.graph.producer(key_new->inputs[0]);
      ASSERT_NE(rotated, nullptr);
      EXPECT_NE(rotated->name.find("_rope_k"), std::string::npos) << rotated->name;
    }
    // T_past from past_key_0's shape (Shape -> Gather), positions by Range; the same projections.
    auto cc = op_counts(cm), fc = op_counts(fm);
    EXPECT_EQ(cc.at("Range"), 2);  // query positions T_past.., key positions 0..
    EXPECT_EQ(fc.at("Range"), 1);
    EXPECT_GE(cc.at("Gather"), 2);  // the embedding and T_past
    EXPECT_EQ(cc.at("Concat") - fc.at("Concat"), 2 * layers);
    for (const char* op : {"MatMulNBits", "DequantizeLinear", "Round", "Clip", "Softmax", "MatMul"})
      EXPECT_EQ(cc.count(op) ? cc.at(op) : 0, fc.count(op) ? fc.at(op) : 0) << op;
    // Same weights: every initializer of the full-recompute form, byte for byte.
    for (const Tensor& t : fm.graph.initializers) {
      const Tensor* c = cm.graph.initializer(t.name);
      ASSERT_NE(c, nullptr) << t.name;
      EXPECT_EQ(c->dims, t.dims) << t.name;
      EXPECT_TRUE(c->raw == t.raw) << t.name;
    }
    const std::string bytes = serialize(cm);  // topologically ordered, sizes consistent
    // The new, past and total lengths are different symbols (one name would tell ONNX tools they
    // are equal sizes).
    for (const char* symbol : {"T", "T_past", "T_total"})
      EXPECT_NE(bytes.find(std::string("\x12") + static_cast<char>(std::strlen(symbol)) + symbol), std::string::npos)
          << symbol;
    EXPECT_NE(cm.doc_string.find("KV cache"), std::string::npos);
  }
}

// ---- ONNX Runtime ---------------------------------------------------------------------------

struct OrtGeneration {
  std::vector<std::vector<int32_t>> tokens;  // per prompt
  std::vector<std::vector<float>> logits;    // per prompt: the last run, [prompt + steps - 1, vocab]
};

OrtGeneration ort_generate(const std::string& model, const std::vector<std::vector<int32_t>>& prompts, int steps,
                           const std::string& dir) {
  const std::string tokens = dir + "/tokens.json", logits = dir + "/logits.bin", log = dir + "/ort_generate.log";
  std::string cmd = "LOWBIT_ORT_NODE_MODULES='" + testing::ort_node_modules() + "' node '" + testing::source_dir() +
                    "/tests/export/ort_generate.js' '" + model + "' --steps " + std::to_string(steps);
  for (const auto& p : prompts) {
    cmd += " --prompt ";
    for (size_t i = 0; i < p.size(); ++i) cmd += (i ? "," : "") + std::to_string(p[i]);
  }
  cmd += " --tokens '" + tokens + "' --logits '" + logits + "' > '" + log + "' 2>&1";
  OrtGeneration r;
  if (std::system(cmd.c_str()) != 0) {
    std::ifstream l(log);
    ADD_FAILURE() << "ONNX Runtime failed on " << model << ":\n" << std::string(std::istreambuf_iterator<char>(l), {});
    return r;
  }
  std::ifstream tf(tokens);
  const nlohmann::json j = nlohmann::json::parse(tf);
  for (const auto& row : j) r.tokens.push_back(row.get<std::vector<int32_t>>());
  std::ifstream lf(logits, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(lf)), {});
  size_t offset = 0;
  for (const auto& p : prompts) {
    const size_t n = (p.size() + static_cast<size_t>(steps) - 1) * 256;
    std::vector<float> v(n);
    if (offset + 4 * n <= bytes.size()) std::memcpy(v.data(), bytes.data() + offset, 4 * n);
    else ADD_FAILURE() << "logits file too short";
    offset += 4 * n;
    r.logits.push_back(std::move(v));
  }
  return r;
}

// Tolerance on max |logit difference| / (1 + max |logit|) over every position of every prompt:
// 1e-2, the bound of tests/qat/lm_runtime_test.cpp for the same mechanism. ONNX Runtime sums the
// same products in another order in float (MatMul over K of code * (value * scale) instead of
// int32 per group then scales; RMSNorm's mean; attention; softmax; its vectorised exp): ~1e-7
// relative. Such a difference can move one per-token quotient x / s_t across a rounding boundary,
// changing one activation code by 1 (one step s_t = max|x_t| / 127 on one input), which later
// layers, and through attention later positions, carry to the logits. Measured (2026-12-03, the
// [ info ] lines): 3e-7 relative where no code moved (W4 group32 both forms, ternary, a random
// int4 per-channel model), 8.4e-4 (seq2, one position) and 1.9e-3 (int8 per-channel: a code at
// position 14 of one prompt, carried to 25 later positions). A layout, scale or RoPE mistake
// moves logits by O(1) (measured 0.87 before ONNX Runtime's fusion of DequantizeLinear + MatMul
// into MatMulNBits at accuracy level 4 was kept off the QDQ graph).
constexpr double kLogitTolerance = 1e-2;

void check_ort_agrees(const runtime::DecoderModel& m, DecoderExportForm form, const std::string& what) {
  LOWBIT_SKIP_WITHOUT_ORT();
  const std::string dir = testing::fresh_test_dir();
  const std::string path = dir + "/model.onnx";
  DecoderExportOptions o;
  o.form = form;
  save(decoder_model(m, o, what), path);
  std::vector<std::vector<int32_t>> prompts;
  for (const std::string p : {"the quick ", "sphinx of b", "how vex", "zzz! "}) prompts.push_back(runtime::bytes_to_tokens(p));
  const int steps = 64;
  const OrtGeneration ort = ort_generate(path, prompts, steps, dir);
  ASSERT_EQ(ort.tokens.size(), prompts.size());
  runtime::DecoderSession session(m);
  double worst = 0, worst_rel = 0;
  size_t positions = 0, positions_off = 0;  // positions whose logits differ by more than 1e-4
  for (size_t i = 0; i < prompts.size(); ++i) {
    const runtime::GenerationResult r = runtime::generate(session, prompts[i], steps, {});
    EXPECT_EQ(r.tokens, ort.tokens[i]) << what << ": prompt " << i << ": ONNX Runtime's greedy tokens differ";
    std::vector<int32_t> text = prompts[i];
    text.insert(text.end(), r.tokens.begin(), r.tokens.end() - 1);
    const std::vector<float> want = session.prefill(text);
    ASSERT_EQ(want.size(), ort.logits[i].size());
    double diff = 0, range = 0;
    for (size_t k = 0; k < want.size(); ++k) {
      diff = std::max(diff, static_cast<double>(std::fabs(want[k] - ort.logits[i][k])));
      range = std::max(range, static_cast<double>(std::fabs(want[k])));
    }
    for (size_t t = 0; t < text.size(); ++t)
      for (size_t c = 0; c < 256; ++c)
        if (std::fabs(want[t * 256 + c] - ort.logits[i][t * 256 + c]) > 1e-4f) {
          ++positions_off;
          break;
        }
    positions += text.size();
    worst = std::max(worst, diff);
    worst_rel = std::max(worst_rel, diff / (1.0 + range));
  }
  std::cout << "[ info ] " << what << ": max |logit diff| ONNX Runtime vs DecoderSession " << worst << " (relative "
            << worst_rel << "); positions with a difference > 1e-4: " << positions_off << " of " << positions << "\n";
  EXPECT_LT(worst_rel, kLogitTolerance) << what << ": max |logit difference| " << worst;
}

// The KV-cache export (prefill once, then one token per run, present -> past): greedy tokens equal
// DecoderSession's for 64 steps, and its logits (every run's rows) equal the full-recompute
// export's on ONNX Runtime, and the runtime's, within kLogitTolerance.
void check_ort_cached_agrees(const runtime::DecoderModel& m, DecoderExportForm form, const std::string& what) {
  LOWBIT_SKIP_WITHOUT_ORT();
  const std::string dir = testing::fresh_test_dir();
  DecoderExportOptions o;
  o.form = form;
  save(decoder_model(m, o, what), dir + "/full.onnx");
  o.with_kv_cache = true;
  save(decoder_model(m, o, what), dir + "/cached.onnx");
  std::vector<std::vector<int32_t>> prompts;
  for (const std::string p : {"the quick ", "sphinx of b", "how vex", "zzz! "}) prompts.push_back(runtime::bytes_to_tokens(p));
  const int steps = 64;
  const OrtGeneration full = ort_generate(dir + "/full.onnx", prompts, steps, dir);
  const OrtGeneration cached = ort_generate(dir + "/cached.onnx", prompts, steps, dir);
  ASSERT_EQ(full.tokens.size(), prompts.size());
  ASSERT_EQ(cached.tokens.size(), prompts.size());
  runtime::DecoderSession session(m);
  double worst_full = 0, worst_runtime = 0, rel_full = 0, rel_runtime = 0;
  for (size_t i = 0; i < prompts.size(); ++i) {
    const runtime::GenerationResult r = runtime::generate(session, prompts[i], steps, {});
    EXPECT_EQ(r.tokens, cached.tokens[i]) << what << ": prompt " << i << ": the KV-cache export's greedy tokens differ";
    EXPECT_EQ(full.tokens[i], cached.tokens[i]) << what << ": prompt " << i;
    std::vector<int32_t> text = prompts[i];
    text.insert(text.end(), r.tokens.begin(), r.tokens.end() - 1);
    const std::vector<float> want = session.prefill(text);
    ASSERT_EQ(cached.logits[i].size(), want.size());
    double d_full = 0, d_runtime = 0, range = 0;
    for (size_t k = 0; k < want.size(); ++k) {
      d_full = std::max(d_full, static_cast<double>(std::fabs(cached.logits[i][k] - full.logits[i][k])));
      d_runtime = std::max(d_runtime, static_cast<double>(std::fabs(cached.logits[i][k] - want[k])));
      range = std::max(range, static_cast<double>(std::fabs(want[k])));
    }
    worst_full = std::max(worst_full, d_full);
    worst_runtime = std::max(worst_runtime, d_runtime);
    rel_full = std::max(rel_full, d_full / (1.0 + range));
    rel_runtime = std::max(rel_runtime, d_runtime / (1.0 + range));
  }
  std::cout << "[ info ] " << what << " KV cache: max |logit diff| vs the full-recompute export " << worst_full
            << " (relative " << rel_full << "), vs DecoderSession " << worst_runtime << " (relative " << rel_runtime << ")\n";
  EXPECT_LT(rel_full, kLogitTolerance) << what;
  EXPECT_LT(rel_runtime, kLogitTolerance) << what;
}

TEST(DecoderExportOrt, W4Group32MatMulNBitsKvCacheGreedyTokensEqualTheRuntime) {
  LOWBIT_SKIP_WITHOUT_ORT();
  check_ort_cached_agrees(trained_decoder(R"({"weight_bits": 4, "weight_granularity": "group", "weight_group_size": 32})", "W4 group32"),
                          DecoderExportForm::MatMulNBits, "W4 group32 MatMulNBits");
}

TEST(DecoderExportOrt, W4Group32QdqKvCacheGreedyTokensEqualTheRuntime) {
  LOWBIT_SKIP_WITHOUT_ORT();
  check_ort_cached_agrees(trained_decoder(R"({"weight_bits": 4, "weight_granularity": "group", "weight_group_size": 32})", "W4 group32"),
                          DecoderExportForm::Qdq, "W4 group32 QDQ");
}

TEST(DecoderExportOrt, TernaryQdqKvCacheGreedyTokensEqualTheRuntime) {
  LOWBIT_SKIP_WITHOUT_ORT();
  check_ort_cached_agrees(trained_decoder(R"({"weight_format": "ternary", "weight_granularity": "channel"})", "ternary per-channel"),
                          DecoderExportForm::Qdq, "ternary per-channel QDQ");
}

TEST(DecoderExportOrt, W4Group32QdqGreedyTokensEqualTheRuntime) {
  LOWBIT_SKIP_WITHOUT_ORT();
  check_ort_agrees(trained_decoder(R"({"weight_bits": 4, "weight_granularity": "group", "weight_group_size": 32})", "W4 group32"),
                   DecoderExportForm::Qdq, "W4 group32 QDQ");
}

TEST(DecoderExportOrt, W4Group32MatMulNBitsGreedyTokensEqualTheRuntime) {
  LOWBIT_SKIP_WITHOUT_ORT();
  check_ort_agrees(trained_decoder(R"({"weight_bits": 4, "weight_granularity": "group", "weight_group_size": 32})", "W4 group32"),
                   DecoderExportForm::MatMulNBits, "W4 group32 MatMulNBits");
}

TEST(DecoderExportOrt, TernaryQdqGreedyTokensEqualTheRuntime) {
  LOWBIT_SKIP_WITHOUT_ORT();
  check_ort_agrees(trained_decoder(R"({"weight_format": "ternary", "weight_granularity": "channel"})", "ternary per-channel"),
                   DecoderExportForm::Qdq, "ternary per-channel QDQ");
}

TEST(DecoderExportOrt, Seq2WithQuantizedEmbeddingAndHeadQdqGreedyTokensEqualTheRuntime) {
  LOWBIT_SKIP_WITHOUT_ORT();
  check_ort_agrees(trained_decoder(R"({"weight_format": "seq2", "weight_granularity": "group", "weight_group_size": 64,
                                      "overrides": [{"pattern": "embed", "quantize": true}, {"pattern": "head", "quantize": true}]})",
                                   "seq2 group64"),
                   DecoderExportForm::Qdq, "seq2 group64, quantized embedding and head, QDQ");
}

TEST(DecoderExportOrt, Int8PerChannelQdqGreedyTokensEqualTheRuntime) {
  LOWBIT_SKIP_WITHOUT_ORT();
  check_ort_agrees(trained_decoder(R"({"weight_bits": 8, "weight_granularity": "channel"})", "int8 per-channel"),
                   DecoderExportForm::Qdq, "int8 per-channel QDQ");
}

TEST(DecoderExportOrt, PerChannelInt4WithQuantizedHeadMatMulNBitsLogitsAgree) {
  // A random model (no training, so near-ties are possible: tokens are not compared, only the
  // logits, which checks the repeated per-channel scales and the MatMulNBits head).
  LOWBIT_SKIP_WITHOUT_ORT();
  const runtime::DecoderModel m = synthetic_model(4, quant::Grid::Integer, 0, true);
  const std::string dir = testing::fresh_test_dir();
  DecoderExportOptions o;
  o.form = DecoderExportForm::MatMulNBits;
  save(decoder_model(m, o), dir + "/model.onnx");
  const std::vector<int32_t> prompt = runtime::bytes_to_tokens("random weights, any text");
  const OrtGeneration ort = ort_generate(dir + "/model.onnx", {prompt}, 1, dir);
  ASSERT_EQ(ort.logits.size(), 1u);
  runtime::DecoderSession session(m);
  const std::vector<float> want = session.prefill(prompt);
  double diff = 0, range = 0;
  for (size_t k = 0; k < want.size(); ++k) {
    diff = std::max(diff, static_cast<double>(std::fabs(want[k] - ort.logits[0][k])));
    range = std::max(range, static_cast<double>(std::fabs(want[k])));
  }
  std::cout << "[ info ] synthetic int4 per-channel MatMulNBits: max |logit diff| " << diff << " (range " << range << ")\n";
  EXPECT_LT(diff / (1.0 + range), kLogitTolerance);
}

// ---- FP32 export of gpt-tiny (float_gpt_model: the same graph builder, float weights) ----------

// gpt-tiny FP32 (no QAT), trained `steps` AdamW steps on kText as trained_decoder does.
models::Net trained_fp32_gpt(int steps = 40) {
  torch::manual_seed(1);
  models::Net net = models::make_gpt(lm_options());
  net->train();
  torch::optim::AdamW opt(net->parameters(), torch::optim::AdamWOptions(3e-3).weight_decay(0.0));
  std::string text;
  while (text.size() < 2000) text += kText;
  const int64_t T = 48, B = 8;
  torch::Tensor all = torch::empty({static_cast<int64_t>(text.size())}, torch::kLong);
  for (size_t i = 0; i < text.size(); ++i) all[static_cast<int64_t>(i)] = static_cast<unsigned char>(text[i]);
  for (int s = 0; s < steps; ++s) {
    std::vector<torch::Tensor> rows;
    for (int64_t b = 0; b < B; ++b) rows.push_back(all.narrow(0, (s * 37 + b * 101) % (all.size(0) - T - 1), T + 1));
    const torch::Tensor batch = torch::stack(rows);
    const torch::Tensor loss = torch::nn::functional::cross_entropy(net->forward(batch.narrow(1, 0, T)).reshape({-1, 256}),
                                                                    batch.narrow(1, 1, T).reshape({-1}));
    opt.zero_grad();
    loss.backward();
    opt.step();
  }
  net->eval();
  return net;
}

// LibTorch's FP32 logits of `text` [T, 256].
torch::Tensor torch_logits(models::Net& net, const std::vector<int32_t>& text) {
  torch::NoGradGuard no_grad;
  torch::Tensor ids = torch::empty({1, static_cast<int64_t>(text.size())}, torch::kLong);
  for (size_t i = 0; i < text.size(); ++i) ids[0][static_cast<int64_t>(i)] = text[i];
  return net->forward(ids).reshape({static_cast<int64_t>(text.size()), 256}).contiguous();
}

TEST(DecoderExportFloat, GraphHasFloatMatMulsAndNoQuantization) {
  torch::manual_seed(3);
  models::Net net = models::make_gpt(lm_options());
  for (const bool kv : {false, true}) {
    FloatDecoderExportOptions o;
    o.with_kv_cache = kv;
    const Model model = float_gpt_model(net, 96, o);
    const auto c = op_counts(model);
    const int layers = 2;
    EXPECT_EQ(c.at("MatMul"), 7 * layers + 2 * layers + 1);  // projections, q.k and p.v, head
    EXPECT_EQ(c.at("Sigmoid"), layers);                     // silu(gate) = gate * Sigmoid(gate)
    EXPECT_EQ(c.at("Softmax"), layers);
    EXPECT_EQ(c.at("ReduceMean"), 2 * layers + 1);          // RMSNorm: float mean of x * x
    for (const char* absent : {"DequantizeLinear", "Round", "Clip", "Cast", "MatMulNBits", "Exp"})
      EXPECT_EQ(c.count(absent), 0u) << absent;
    EXPECT_TRUE(model.extra_opsets.empty());
    EXPECT_EQ(model.opset, 21);
    for (const Node& n : model.graph.nodes) EXPECT_TRUE(n.domain.empty()) << n.name;
    // Weights [in, out] equal to LibTorch's [out, in] transposed.
    const Tensor* w = model.graph.initializer("block1_mlp_down.weight");
    ASSERT_NE(w, nullptr);
    EXPECT_EQ(w->type, DataType::Float);
    const int64_t hidden = lm_options().hidden_size();
    EXPECT_EQ(w->dims, (std::vector<int64_t>{hidden, 64}));
    float got = 0;
    std::memcpy(&got, w->raw.data() + 4 * (3 * 64 + 5), 4);  // element [k = 3, o = 5]
    torch::Tensor down;
    for (const models::Node& n : net->nodes())
      if (n.name == "block1_mlp_down") down = std::dynamic_pointer_cast<models::LinearActImpl>(n.layer)->linear->weight;
    EXPECT_EQ(got, down[5][3].item<float>());
    // The KV-cache form has the decoder exports' inputs and outputs.
    ASSERT_EQ(model.graph.inputs.size(), kv ? 5u : 1u);
    ASSERT_EQ(model.graph.outputs.size(), kv ? 5u : 1u);
    if (kv) {
      EXPECT_EQ(model.graph.inputs[3].name, "past_key_1");
      EXPECT_EQ(model.graph.outputs[4].name, "present_value_1");
      EXPECT_EQ(model.graph.producer("present_key_0")->op_type, "Concat");
    }
    EXPECT_GT(serialize(model).size(), 0u);
  }
}

TEST(DecoderExportFloat, RefusesAnotherModelNamingTheLayer) {
  torch::manual_seed(1);
  models::Net cnn = models::make_model("cnn");
  const std::string e = error_of([&] { float_gpt_model(cnn, 96); });
  EXPECT_NE(e.find("'embed'"), std::string::npos) << e;
  FloatDecoder bad;
  bad.width = 64;
  bad.heads = 4;
  bad.hidden = 96;
  bad.context = 8;
  bad.layers.resize(1);
  const std::string sizes = error_of([&] { float_decoder_model(bad); });
  EXPECT_NE(sizes.find("embed"), std::string::npos) << sizes;
}

// ONNX Runtime on the FP32 export against LibTorch's FP32 forward: 64 greedy tokens after 4
// prompts (LibTorch greedy by full recompute, ties to the lowest id, as ort_generate.js) must be
// equal, and the logits of every position of the last text within kFloatTolerance of the range.
// Float only: ONNX Runtime sums the same products in another order (MatMul blocking, its
// RMSNorm / softmax / Sigmoid kernels): ~1e-6 relative; no rounding to a grid can amplify it.
// Greedy tokens could only differ where LibTorch's top two logits are within that (a float
// tie); the test prints the smallest top-2 gap it saw.
constexpr double kFloatTolerance = 1e-4;

void check_float_ort_agrees(bool kv) {
  LOWBIT_SKIP_WITHOUT_ORT();
  models::Net net = trained_fp32_gpt();
  const std::string dir = testing::fresh_test_dir();
  FloatDecoderExportOptions o;
  o.with_kv_cache = kv;
  save(float_gpt_model(net, lm_options().context, o), dir + "/fp32.onnx");
  std::vector<std::vector<int32_t>> prompts;
  for (const std::string p : {"the quick ", "sphinx of b", "how vex", "zzz! "}) prompts.push_back(runtime::bytes_to_tokens(p));
  const int steps = 64;
  const OrtGeneration ort = ort_generate(dir + "/fp32.onnx", prompts, steps, dir);
  ASSERT_EQ(ort.tokens.size(), prompts.size());
  double worst = 0, worst_rel = 0, min_gap = 1e30;
  for (size_t i = 0; i < prompts.size(); ++i) {
    std::vector<int32_t> text = prompts[i], generated;
    for (int s = 0; s < steps; ++s) {
      const torch::Tensor l = torch_logits(net, text);
      const torch::Tensor last = l[static_cast<int64_t>(text.size()) - 1];
      const auto top = last.topk(2);
      min_gap = std::min(min_gap, static_cast<double>((std::get<0>(top)[0] - std::get<0>(top)[1]).item<float>()));
      const int32_t next = static_cast<int32_t>(last.argmax().item<int64_t>());
      generated.push_back(next);
      if (s + 1 < steps) text.push_back(next);
    }
    EXPECT_EQ(generated, ort.tokens[i]) << "prompt " << i << ": ONNX Runtime's greedy tokens on the FP32 export differ";
    const torch::Tensor want = torch_logits(net, text);
    ASSERT_EQ(static_cast<size_t>(want.numel()), ort.logits[i].size());
    const float* w = want.data_ptr<float>();
    double diff = 0, range = 0;
    for (size_t k = 0; k < ort.logits[i].size(); ++k) {
      diff = std::max(diff, static_cast<double>(std::fabs(w[k] - ort.logits[i][k])));
      range = std::max(range, static_cast<double>(std::fabs(w[k])));
    }
    worst = std::max(worst, diff);
    worst_rel = std::max(worst_rel, diff / (1.0 + range));
  }
  std::cout << "[ info ] FP32 gpt-tiny" << (kv ? " KV cache" : "") << ": max |logit diff| ONNX Runtime vs LibTorch " << worst
            << " (relative " << worst_rel << "); smallest top-2 logit gap in LibTorch's greedy steps " << min_gap << "\n";
  EXPECT_LT(worst_rel, kFloatTolerance);
}

TEST(DecoderExportFloatOrt, Fp32GreedyTokensAndLogitsEqualLibTorch) { check_float_ort_agrees(false); }
TEST(DecoderExportFloatOrt, Fp32KvCacheGreedyTokensAndLogitsEqualLibTorch) { check_float_ort_agrees(true); }

}  // namespace
}  // namespace lowbit::onnx
