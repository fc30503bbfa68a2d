// Text generation and timing on a DecoderSession: sampling (greedy, temperature, top-k), the
// sliding context window, and the prefill / decode benchmark behind `lowbit generate` and
// `lowbit bench` for decoder models.
#pragma once
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "runtime/decoder_session.h"

namespace lowbit::runtime {

struct SamplingOptions {
  float temperature = 0.0f;  // 0: greedy (argmax, ties to the lowest id)
  int32_t top_k = 0;         // 0: the whole vocabulary
  uint64_t seed = 0;
};

// The next token from logits [vocab]: greedy at temperature 0; otherwise softmax(logits / T)
// over the top_k largest (ties to the lower id), computed in double, sampled with one 53-bit
// uniform draw from `rng` (std::mt19937_64: the same seed gives the same text on every machine).
int32_t sample_token(const float* logits, int32_t vocab, const SamplingOptions& o, std::mt19937_64& rng);

struct GenerationResult {
  std::vector<int32_t> tokens;  // the generated tokens (not the prompt)
  double prefill_s = 0;         // the first prefill
  double decode_s = 0;          // everything after it
  int64_t window_prefills = 0;  // prefills of a sliding window (the text outgrew the context)
};

// Generates `count` tokens after `prompt` (1 to context tokens). While the text fits the context,
// each step decodes one token with the KV cache; beyond it, each step runs the last `context`
// tokens again (a sliding window, the window LibTorch's evaluation of the model sees).
GenerationResult generate(DecoderSession& session, const std::vector<int32_t>& prompt, int64_t count,
                          const SamplingOptions& options);

// Bytes -> token ids, and tokens -> printable text: valid UTF-8 sequences as they are, every
// other byte (and control bytes other than newline and tab) as \xHH.
std::vector<int32_t> bytes_to_tokens(const std::string& text);
std::string tokens_to_printable(const std::vector<int32_t>& tokens);

struct DecoderBenchmark {
  int64_t prompt_tokens = 0, decode_tokens = 0;
  int threads = 0;
  std::string isa;
  double prefill_tokens_per_s = 0;  // median over iterations
  double decode_tokens_per_s = 0;
  std::string to_string() const;
};

// Batch 1: a random prompt of `prompt_tokens`, then `decode_tokens` greedy decode steps (their
// sum at most the context), repeated `iterations` times after one warm-up; medians.
DecoderBenchmark benchmark_decoder(DecoderSession& session, int64_t prompt_tokens, int64_t decode_tokens,
                                   int iterations);

}  // namespace lowbit::runtime
