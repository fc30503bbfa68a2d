#include "runtime/text_generation.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <numeric>

#include "base/error.h"

namespace lowbit::runtime {
namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

int32_t argmax(const float* x, int32_t n) {
  int32_t best = 0;
  for (int32_t i = 1; i < n; ++i)
    if (x[i] > x[best]) best = i;
  return best;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Length of the valid UTF-8 sequence starting at s[i], or 0.
size_t utf8_length(const std::string& s, size_t i) {
  const auto c = static_cast<unsigned char>(s[i]);
  size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
  if (n == 0 || i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k)
    if ((static_cast<unsigned char>(s[i + k]) >> 6) != 0x2) return 0;
  if (n == 2 && c < 0xC2) return 0;  // overlong
  const auto c1 = static_cast<unsigned char>(s[i + 1 < s.size() ? i + 1 : i]);
  if (n == 3 && ((c == 0xE0 && c1 < 0xA0) || (c == 0xED && c1 >= 0xA0))) return 0;  // overlong, surrogates
  if (n == 4 && ((c == 0xF0 && c1 < 0x90) || c > 0xF4 || (c == 0xF4 && c1 >= 0x90))) return 0;
  return n;
}

}  // namespace

int32_t sample_token(const float* logits, int32_t vocab, const SamplingOptions& o, std::mt19937_64& rng) {
  LOWBIT_CHECK(std::isfinite(o.temperature) && o.temperature >= 0.0f,
               "temperature must be a finite number >= 0 (0: greedy), got " + std::to_string(o.temperature));
  LOWBIT_CHECK(o.top_k >= 0, "top-k must be >= 0 (0: all tokens), got " + std::to_string(o.top_k));
  if (o.temperature == 0.0f) return argmax(logits, vocab);
  std::vector<int32_t> ids(static_cast<size_t>(vocab));
  std::iota(ids.begin(), ids.end(), 0);
  std::stable_sort(ids.begin(), ids.end(), [&](int32_t a, int32_t b) { return logits[a] > logits[b]; });
  const size_t k = o.top_k > 0 ? std::min<size_t>(static_cast<size_t>(o.top_k), ids.size()) : ids.size();
  std::vector<double> p(k);
  const double top = static_cast<double>(logits[ids[0]]) / o.temperature;
  double sum = 0;
  for (size_t i = 0; i < k; ++i) sum += p[i] = std::exp(static_cast<double>(logits[ids[i]]) / o.temperature - top);
  const double u = static_cast<double>(rng() >> 11) * (1.0 / 9007199254740992.0) * sum;  // [0, sum)
  double c = 0;
  for (size_t i = 0; i < k; ++i) {
    c += p[i];
    if (u < c) return ids[i];
  }
  return ids[k - 1];
}

GenerationResult generate(DecoderSession& session, const std::vector<int32_t>& prompt, int64_t count,
                          const SamplingOptions& options) {
  const int64_t context = session.model().context;
  LOWBIT_CHECK(!prompt.empty(), "the prompt is empty; give at least one byte");
  LOWBIT_CHECK(static_cast<int64_t>(prompt.size()) <= context,
               "the prompt has " + std::to_string(prompt.size()) + " tokens (bytes), longer than the model's context of " +
                   std::to_string(context) + "; shorten it");
  LOWBIT_CHECK(count >= 1, "the number of tokens to generate must be >= 1, got " + std::to_string(count));
  const int32_t vocab = session.model().vocab;
  std::mt19937_64 rng(options.seed);
  GenerationResult r;
  std::vector<int32_t> text = prompt;
  auto t0 = std::chrono::steady_clock::now();
  std::vector<float> logits = session.prefill(prompt);
  r.prefill_s = seconds_since(t0);
  t0 = std::chrono::steady_clock::now();
  const float* last = logits.data() + (logits.size() - static_cast<size_t>(vocab));
  for (int64_t i = 0; i < count; ++i) {
    const int32_t next = sample_token(last, vocab, options, rng);
    r.tokens.push_back(next);
    text.push_back(next);
    if (i + 1 == count) break;
    if (static_cast<int64_t>(text.size()) <= context) {
      logits = session.decode(next);
    } else {
      logits = session.prefill(std::vector<int32_t>(text.end() - context, text.end()));
      ++r.window_prefills;
    }
    last = logits.data() + (logits.size() - static_cast<size_t>(vocab));
  }
  r.decode_s = seconds_since(t0);
  return r;
}

std::vector<int32_t> bytes_to_tokens(const std::string& text) {
  std::vector<int32_t> t(text.size());
  for (size_t i = 0; i < text.size(); ++i) t[i] = static_cast<unsigned char>(text[i]);
  return t;
}

std::string tokens_to_printable(const std::vector<int32_t>& tokens) {
  std::string bytes;
  for (int32_t t : tokens) bytes.push_back(static_cast<char>(t & 0xFF));
  std::string out;
  for (size_t i = 0; i < bytes.size();) {
    const size_t n = utf8_length(bytes, i);
    const auto c = static_cast<unsigned char>(bytes[i]);
    if (n == 0 || (n == 1 && ((c < 0x20 && c != '\n' && c != '\t') || c == 0x7F))) {
      char esc[8];
      std::snprintf(esc, sizeof esc, "\\x%02X", c);
      out += esc;
      ++i;
    } else {
      out.append(bytes, i, n);
      i += n;
    }
  }
  return out;
}

std::string DecoderBenchmark::to_string() const {
  char line[256];
  std::snprintf(line, sizeof line,
                "batch 1, threads %d, isa %s: prefill %lld tokens %.1f tokens/s, decode %lld tokens %.1f tokens/s", threads,
                isa.c_str(), static_cast<long long>(prompt_tokens), prefill_tokens_per_s,
                static_cast<long long>(decode_tokens), decode_tokens_per_s);
  return line;
}

DecoderBenchmark benchmark_decoder(DecoderSession& session, int64_t prompt_tokens, int64_t decode_tokens,
                                   int iterations) {
  const int64_t context = session.model().context;
  LOWBIT_CHECK(prompt_tokens >= 1 && decode_tokens >= 1 && prompt_tokens + decode_tokens <= context,
               "bench: prompt " + std::to_string(prompt_tokens) + " + decode " + std::to_string(decode_tokens) +
                   " tokens must be >= 1 each and fit the context of " + std::to_string(context));
  std::mt19937_64 rng(1);
  std::vector<int32_t> prompt(static_cast<size_t>(prompt_tokens));
  for (int32_t& t : prompt) t = static_cast<int32_t>(rng() % 256);
  std::vector<double> prefill, decode;
  for (int it = 0; it < std::max(1, iterations) + 1; ++it) {
    auto t0 = std::chrono::steady_clock::now();
    std::vector<float> logits = session.prefill(prompt);
    const double p = seconds_since(t0);
    t0 = std::chrono::steady_clock::now();
    int32_t next = argmax(logits.data() + (logits.size() - 256), 256);
    for (int64_t i = 0; i < decode_tokens; ++i) {
      logits = session.decode(next);
      next = argmax(logits.data(), 256);
    }
    const double d = seconds_since(t0);
    if (it == 0) continue;  // warm-up
    prefill.push_back(static_cast<double>(prompt_tokens) / p);
    decode.push_back(static_cast<double>(decode_tokens) / d);
  }
  DecoderBenchmark b;
  b.prompt_tokens = prompt_tokens;
  b.decode_tokens = decode_tokens;
  b.threads = session.threads();
  b.isa = isa_name(session.isa());
  b.prefill_tokens_per_s = median(prefill);
  b.decode_tokens_per_s = median(decode);
  return b;
}

}  // namespace lowbit::runtime
