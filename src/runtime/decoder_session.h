// Running a decoder language model (decoder_model.h): prefill a prompt, then decode one token at
// a time with a KV cache. The ops live in runtime/ops/ (embedding, rmsnorm, attention with RoPE
// and the cache, swiglu, dynamic-quant linear); this class only sequences them and owns the
// buffers and the cache.
//
// Threads: one DecoderSession must not run on two threads at once (its cache and buffers). Several
// sessions may share one PreparedDecoder (the model with its projections prepared once, never
// changed afterwards) and run concurrently: one session per conversation or worker thread.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "runtime/cpu_features.h"
#include "runtime/decoder_model.h"

namespace lowbit::runtime {

struct DecoderOptions {
  int threads = 1;   // worker threads including the caller; <= 0: hardware concurrency
  std::string isa;   // "", "ref", "avx2", ...: as SessionOptions::isa ("" = LOWBIT_ISA or the best)
  // Ops (projections, attention, float head) with fewer multiply-accumulates per call run on the
  // calling thread (< 0: 2^23, about 40 us of one core's VNNI token GEMM). Below that a split saves
  // less than it risks: on a shared machine a preempted worker holding a task stalls the whole
  // call (docs/runtime.md, "Decoder models"). gpt-tiny: gate+up is split from 93 tokens on.
  int64_t min_parallel_macs = -1;
};

// A decoder model with its projections prepared for one instruction set; immutable, shareable.
class PreparedDecoder {
 public:
  static std::shared_ptr<const PreparedDecoder> create(DecoderModel model, const std::string& isa = "");
  static std::shared_ptr<const PreparedDecoder> load(const std::string& path, const std::string& isa = "");
  ~PreparedDecoder();
  PreparedDecoder(const PreparedDecoder&) = delete;
  PreparedDecoder& operator=(const PreparedDecoder&) = delete;
  const DecoderModel& model() const;
  Isa isa() const;

 private:
  friend class DecoderSession;
  PreparedDecoder();
  struct Parts;  // the prepared projections and the RoPE table (decoder_session.cpp)
  std::unique_ptr<Parts> parts_;
};

class DecoderSession {
 public:
  explicit DecoderSession(DecoderModel model, DecoderOptions options = {});
  // A session over a shared prepared model; options.isa, when set, must be the model's level.
  explicit DecoderSession(std::shared_ptr<const PreparedDecoder> model, DecoderOptions options = {});
  ~DecoderSession();
  DecoderSession(DecoderSession&&) noexcept;
  DecoderSession& operator=(DecoderSession&&) noexcept;
  static DecoderSession load(const std::string& path, DecoderOptions options = {});

  // Clears the cache, runs `tokens` (1 to context of them) and returns the logits of every
  // position, [tokens.size(), vocab].
  std::vector<float> prefill(const std::vector<int32_t>& tokens);
  // Appends one token at position() (< context) using the cache; returns its logits [vocab].
  std::vector<float> decode(int32_t token);
  void reset();
  int64_t position() const;  // tokens in the cache

  const DecoderModel& model() const;
  Isa isa() const;
  int threads() const;
  // The kernels the session runs: the integer GEMM's symbol name first, then the float ops.
  std::vector<std::string> kernel_names() const;

 private:
  std::vector<float> forward(const int32_t* tokens, int64_t n);
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace lowbit::runtime
