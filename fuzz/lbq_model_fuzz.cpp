// libFuzzer harness: the .lbq readers of every model kind, and session creation. Whatever the
// bytes:
//   - parse_model (op graphs: version 1, version 2 kind 1), parse_decoder_model (version 2 kind 2,
//     gpt-tiny) and parse_encoder_model (version 2 kind 3, vit-tiny) each return a model that its
//     validator accepts or throw lowbit::Error;
//   - at most one of them accepts, and it is the one the header dispatch picks
//     (lbq::bytes_have_kind, the test behind is_decoder_model_file / is_encoder_model_file that
//     `lowbit run`, `inspect`, `eval --model`, `bench` and `generate` use to choose a reader);
//   - an accepted model creates its session and runs: an op graph one item (or it is refused by
//     the resource limits with lowbit::Error), a decoder a 1-token prefill and one decoded token,
//     an encoder one image. Decoders and encoders have no resource limits of their own (a valid
//     file may ask for a 1 GiB KV cache); the harness runs only those below kMaxWork
//     multiply-accumulates and kMaxCacheBytes of KV cache, so that every execution stays fast.
//
// Most mutations would only break a checksum, so when the first byte is even the harness reseals
// the checksums first (reseal_model_bytes) and the structural checks behind them are fuzzed too.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "base/error.h"
#include "runtime/decoder_model_file.h"
#include "runtime/decoder_session.h"
#include "runtime/encoder_model_file.h"
#include "runtime/encoder_session.h"
#include "runtime/lbq_format.h"
#include "runtime/model_file.h"
#include "runtime/session.h"

namespace {

using namespace lowbit::runtime;

constexpr int64_t kMaxWork = int64_t{1} << 22;         // multiply-accumulates of one run
constexpr int64_t kMaxCacheBytes = int64_t{1} << 24;   // decoder KV cache

template <typename F>
bool accepts(F parse) {
  try {
    parse();
    return true;
  } catch (const lowbit::Error&) {
    return false;  // refused with a clear error: the expected outcome for most inputs
  }
}

void run_graph(Model model) {
  SessionOptions options;
  options.isa = "ref";  // the harness checks the loader and planning, not kernel speed
  // Small limits keep every execution fast; larger models are refused with lowbit::Error, which
  // exercises the limit checks (the seeds are 8x8 models far below them).
  options.limits.max_activation_bytes = int64_t{1} << 20;
  options.limits.max_macs = kMaxWork / 4;
  try {
    Session session(std::move(model), options);
    const auto& m = session.model();
    std::vector<float> x(static_cast<size_t>(m.in_channels) * m.in_height * m.in_width, 0.5f);
    session.run(x.data(), 1);
  } catch (const lowbit::Error&) {
    // e.g. over the resource limits
  }
}

void run_decoder(DecoderModel model) {
  const int64_t w = model.width, layers = static_cast<int64_t>(model.layers.size());
  const int64_t work = layers * (4 * w * w + 3 * w * model.hidden + 2 * w * model.context) + int64_t{model.vocab} * w;
  const int64_t cache = 2 * layers * model.context * w * 4;
  if (work > kMaxWork || cache > kMaxCacheBytes) return;
  DecoderOptions options;
  options.isa = "ref";
  DecoderSession session(std::move(model), options);  // a validated model must create its session
  const std::vector<float> logits = session.prefill({65});
  if (logits.size() != static_cast<size_t>(session.model().vocab)) __builtin_trap();
  if (session.position() < session.model().context) session.decode(66);
}

void run_encoder(EncoderModel model) {
  const int64_t w = model.width, t = model.tokens(), layers = static_cast<int64_t>(model.layers.size());
  const int64_t work =
      t * (int64_t{model.patch_features()} * w + layers * (4 * w * w + 2 * w * model.hidden + 2 * t * w)) +
      w * model.classes;
  if (work > kMaxWork) return;
  EncoderOptions options;
  options.isa = "ref";
  EncoderSession session(std::move(model), options);
  const auto& m = session.model();
  std::vector<float> image(static_cast<size_t>(m.channels) * m.image_size * m.image_size, 0.5f);
  const std::vector<float> logits = session.run(image.data(), 1);
  if (logits.size() != static_cast<size_t>(m.classes)) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string bytes(reinterpret_cast<const char*>(data), size);
  if (!bytes.empty() && (static_cast<uint8_t>(bytes[0]) & 1) == 0) reseal_model_bytes(bytes);
  Model graph;
  DecoderModel decoder;
  EncoderModel encoder;
  const bool is_graph = accepts([&] { graph = parse_model(bytes, "fuzz.lbq"); });
  const bool is_decoder = accepts([&] { decoder = parse_decoder_model(bytes, "fuzz.lbq"); });
  const bool is_encoder = accepts([&] { encoder = parse_encoder_model(bytes, "fuzz.lbq"); });
  // The dispatch: a decoder or encoder header picks that reader, anything else the op-graph reader.
  const bool says_decoder = lbq::bytes_have_kind(bytes, kDecoderFormatVersion, lbq::ModelKind::Decoder);
  const bool says_encoder = lbq::bytes_have_kind(bytes, kEncoderFormatVersion, lbq::ModelKind::Encoder);
  if ((is_decoder && !says_decoder) || (is_encoder && !says_encoder) || (is_graph && (says_decoder || says_encoder)))
    __builtin_trap();  // a reader accepted a file the dispatch sends elsewhere
  if (is_graph) run_graph(std::move(graph));
  if (is_decoder) run_decoder(std::move(decoder));
  if (is_encoder) run_encoder(std::move(encoder));
  return 0;
}
