// `lowbit generate`: text from a decoder model file (.lbq, format version 2) on the integer runtime.
#include <iostream>
#include <memory>

#include "base/error.h"
#include "cli/commands.h"
#include "runtime/decoder_model_file.h"
#include "runtime/text_generation.h"

namespace lowbit::cli {
namespace {

struct GenerateArgs {
  std::string model;
  std::string prompt;
  int64_t tokens = 64;
  float temperature = 0.0f;
  int32_t top_k = 0;
  uint64_t seed = 0;
  std::string isa;
  int threads = 1;
  bool stats = false;
};

constexpr int64_t kMaxTokens = 1000000;

void generate(const GenerateArgs& a) {
  LOWBIT_CHECK(runtime::is_decoder_model_file(a.model),
               "'" + a.model + "' is not a decoder language model file (lowbit generate runs models converted from "
               "gpt-tiny; image classifiers run with `lowbit run`)");
  LOWBIT_CHECK(a.tokens >= 1 && a.tokens <= kMaxTokens,
               "--tokens " + std::to_string(a.tokens) + " is out of range; use 1 to " + std::to_string(kMaxTokens));
  runtime::DecoderOptions o;
  o.threads = a.threads;
  o.isa = a.isa;
  runtime::DecoderSession session = runtime::DecoderSession::load(a.model, o);
  runtime::SamplingOptions s;
  s.temperature = a.temperature;
  s.top_k = a.top_k;
  s.seed = a.seed;
  const runtime::GenerationResult r = runtime::generate(session, runtime::bytes_to_tokens(a.prompt), a.tokens, s);
  std::cout << runtime::tokens_to_printable(runtime::bytes_to_tokens(a.prompt)) << runtime::tokens_to_printable(r.tokens)
            << "\n";
  if (a.stats)
    std::cerr << "prompt " << a.prompt.size() << " tokens in " << r.prefill_s * 1e3 << " ms, " << r.tokens.size()
              << " generated in " << r.decode_s * 1e3 << " ms (" << r.window_prefills
              << " sliding-window prefills), isa " << runtime::isa_name(session.isa()) << ", threads "
              << session.threads() << "\n";
}

}  // namespace

void add_generate_command(CLI::App& app) {
  auto args = std::make_shared<GenerateArgs>();
  CLI::App* cmd = app.add_subcommand("generate", "Generate text with a decoder language model (.lbq from gpt-tiny)");
  cmd->add_option("model", args->model, "Decoder model file (.lbq)")->required();
  cmd->add_option("--prompt", args->prompt, "Prompt text (bytes; at most the model's context)")->required();
  cmd->add_option("--tokens", args->tokens, "Bytes to generate")->capture_default_str();
  cmd->add_option("--temperature", args->temperature, "Sampling temperature (0: greedy)")->capture_default_str();
  cmd->add_option("--top-k", args->top_k, "Sample among the K most likely bytes (0: all)")->capture_default_str();
  cmd->add_option("--seed", args->seed, "Random seed of the sampler")->capture_default_str();
  cmd->add_option("--isa", args->isa, "Kernel level: ref, avx2, avx512vnni, neon, neondot (default: LOWBIT_ISA or the best)");
  cmd->add_option("--threads", args->threads, "Threads")->check(CLI::PositiveNumber)->capture_default_str();
  cmd->add_flag("--stats", args->stats, "Print prefill / decode times to stderr");
  cmd->callback([args] { generate(*args); });
}

}  // namespace lowbit::cli
