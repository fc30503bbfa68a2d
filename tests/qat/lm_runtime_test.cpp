// gpt-tiny end to end on the integer runtime: per-token fake quantization (the same codes as
// quant/per_token.h), QAT-prepared models at W4 group 32, ternary and SEQ 2-bit trained a few
// steps, converted (convert/to_decoder.h), then greedy decoding on the runtime (prefill + KV-cache
// decode) against the LibTorch model's evaluation forward on the full window, re-run each step.
#include <gtest/gtest.h>

#include <cmath>
#include <iostream>

#include "base/error.h"
#include "convert/to_decoder.h"
#include "models/gpt.h"
#include "qat/qat_config.h"
#include "qat/quantized_transformer.h"
#include "quant/per_token.h"
#include "runtime/decoder_model_file.h"
#include "runtime/decoder_session.h"
#include "runtime/text_generation.h"

namespace lowbit {
namespace {

TEST(PerTokenFakeQuant, EqualsTheNumericsLibraryAndPassesGradientsStraightThrough) {
  torch::manual_seed(0);
  torch::Tensor x = torch::randn({3, 5, 40});
  x[1][2].zero_();  // an all-zero token
  x = x.requires_grad_();
  const torch::Tensor y = qat::fake_quantize_per_token(x);
  const torch::Tensor xc = x.detach().contiguous();
  std::vector<int8_t> q(40);
  for (int64_t r = 0; r < 15; ++r) {
    const float s = quant::quantize_token_row(xc.data_ptr<float>() + r * 40, 40, q.data());
    for (int64_t k = 0; k < 40; ++k)
      ASSERT_EQ(y.view({15, 40})[r][k].item<float>(), s * static_cast<float>(q[static_cast<size_t>(k)])) << r << " " << k;
  }
  EXPECT_EQ(y[1][2].abs().sum().item<float>(), 0.0f);
  // The largest |x| of a token gets code +-127 (s * 127 is within an ulp or two of it).
  const auto row = xc[0][0];
  const int64_t i = row.abs().argmax().item<int64_t>();
  EXPECT_FLOAT_EQ(y[0][0][i].item<float>(), row[i].item<float>());
  (y * torch::arange(120).view({3, 1, 40})).sum().backward();
  EXPECT_TRUE(torch::equal(x.grad(), torch::arange(120).view({3, 1, 40}).expand({3, 5, 40}).to(torch::kFloat32)));
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

// A QAT-prepared gpt-tiny trained `steps` Adam steps on kText (so that its predictions are not
// near-uniform ties), in eval mode.
models::Net trained_qat_model(const std::string& config_json, int steps) {
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
    const torch::Tensor loss = torch::nn::functional::cross_entropy(logits.reshape({-1, 256}), batch.narrow(1, 1, T).reshape({-1}));
    opt.zero_grad();
    loss.backward();
    opt.step();
  }
  net->eval();
  return net;
}

// Greedy next token of the LibTorch model on the last `context` tokens of `text`.
int32_t torch_next(models::Net& net, const std::vector<int32_t>& text, int64_t context, torch::Tensor* logits_out) {
  const int64_t n = std::min<int64_t>(context, static_cast<int64_t>(text.size()));
  torch::Tensor ids = torch::empty({1, n}, torch::kLong);
  for (int64_t i = 0; i < n; ++i) ids[0][i] = text[text.size() - static_cast<size_t>(n) + static_cast<size_t>(i)];
  torch::NoGradGuard no_grad;
  const torch::Tensor last = net->forward(ids)[0][n - 1].contiguous();
  if (logits_out) *logits_out = last;
  return static_cast<int32_t>(last.argmax().item<int64_t>());  // first maximum, as the runtime's argmax
}

void check_greedy_agreement(const std::string& config_json, const std::string& what) {
  models::Net net = trained_qat_model(config_json, 40);
  const models::GptOptions o = lm_options();
  const runtime::DecoderModel model = convert::to_decoder_model(net, o, what);
  // Through the file format too.
  const runtime::DecoderModel loaded = runtime::parse_decoder_model(runtime::serialize_decoder_model(model), what);
  for (const std::string isa : {"ref", ""}) {
    runtime::DecoderOptions opts;
    opts.isa = isa;
    runtime::DecoderSession session(loaded, opts);
    double worst = 0, worst_rel = 0;
    for (const std::string prompt : {"the quick ", "sphinx of b", "how vex", "zzz! "}) {
      const std::vector<int32_t> p = runtime::bytes_to_tokens(prompt);
      const runtime::GenerationResult r = runtime::generate(session, p, 64, {});
      ASSERT_EQ(r.window_prefills, 0);  // prompt + 64 <= context: every step used the KV cache
      std::vector<int32_t> text = p;
      for (size_t i = 0; i < r.tokens.size(); ++i) {
        torch::Tensor ref_logits;
        const int32_t want = torch_next(net, text, o.context, &ref_logits);
        ASSERT_EQ(r.tokens[i], want) << what << " isa '" << isa << "' prompt '" << prompt << "' step " << i;
        text.push_back(want);
      }
      // Logits of the whole text at once (prefill) against the LibTorch forward.
      text.pop_back();
      const std::vector<float> got = session.prefill(text);
      torch::Tensor ids = torch::empty({1, static_cast<int64_t>(text.size())}, torch::kLong);
      for (size_t i = 0; i < text.size(); ++i) ids[0][static_cast<int64_t>(i)] = text[i];
      torch::NoGradGuard no_grad;
      const torch::Tensor want = net->forward(ids).reshape({-1, 256}).contiguous();
      const torch::Tensor diff = (torch::from_blob(const_cast<float*>(got.data()), want.sizes()) - want).abs();
      worst = std::max(worst, diff.max().item<double>());
      worst_rel = std::max(worst_rel, diff.max().item<double>() / (1.0 + want.abs().max().item<double>()));
    }
    // Tolerance (docs/transformers.md): 1e-2 of the logit range. The float ops sum in another
    // order than LibTorch's (RMSNorm, attention, head: ~1e-6 relative); such a difference can move
    // a per-token quotient x / s_x across a rounding boundary, changing one code by 1 (one step
    // s_x = max|x_t| / 127 on one input), which later layers carry to the logits: measured up to
    // 1.8e-3 of the range (ternary). A conversion mistake (layout, scales, RoPE) moves logits by O(1).
    EXPECT_LT(worst_rel, 1e-2) << what << " isa '" << isa << "': max |logit difference| " << worst;
    std::cout << "[ info ] " << what << " isa " << runtime::isa_name(session.isa()) << ": max |logit diff| " << worst
              << " (relative " << worst_rel << ")\n";
  }
}

TEST(LmRuntime, W4Group32GreedyDecodingMatchesLibTorch) {
  check_greedy_agreement(R"({"weight_bits": 4, "weight_granularity": "group", "weight_group_size": 32})", "W4 group32");
}

TEST(LmRuntime, TernaryGreedyDecodingMatchesLibTorch) {
  check_greedy_agreement(R"({"weight_format": "ternary", "weight_granularity": "channel"})", "ternary per-channel");
}

TEST(LmRuntime, Seq2Group64WithQuantizedEmbeddingAndHeadMatchesLibTorch) {
  check_greedy_agreement(R"({"weight_format": "seq2", "weight_granularity": "group", "weight_group_size": 64,
                             "overrides": [{"pattern": "embed", "quantize": true}, {"pattern": "head", "quantize": true}]})",
                         "seq2 group64, quantized embedding and head");
}

TEST(LmRuntime, ConversionRejectsWhatTheRuntimeCannotRun) {
  torch::manual_seed(2);
  const models::GptOptions o = lm_options();
  // Static activation quantizers (a QAT config with per-tensor activations).
  models::Net net = models::make_gpt(o);
  qat::QatConfig cfg = qat::with_language_model_defaults(
      qat::QatConfig::from_json(nlohmann::json::parse(R"({"weight_bits": 4})")));
  cfg.defaults.act_granularity = "tensor";
  qat::prepare(net, cfg);
  try {
    convert::to_decoder_model(net, o);
    FAIL() << "static activation quantizers were accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("per-token"), std::string::npos) << e.what();
  }
  // A float projection.
  models::Net net2 = models::make_gpt(o);
  try {
    convert::to_decoder_model(net2, o);
    FAIL() << "an unquantized model was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("block0_attn_q"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace lowbit
