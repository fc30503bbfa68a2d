// libFuzzer harness: the .lbq loader and session creation. Whatever the bytes, parse_model either
// returns a model that validate_model accepts or throws lowbit::Error; a model it accepts must
// create a Session (or be refused by the resource limits with lowbit::Error) and run one item.
//
// Most mutations would only break a checksum, so when the first byte is even the harness reseals
// the checksums first (reseal_model_bytes) and the structural checks behind them are fuzzed too.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "base/error.h"
#include "runtime/model_file.h"
#include "runtime/session.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string bytes(reinterpret_cast<const char*>(data), size);
  if (!bytes.empty() && (static_cast<uint8_t>(bytes[0]) & 1) == 0) lowbit::runtime::reseal_model_bytes(bytes);
  lowbit::runtime::Model model;
  try {
    model = lowbit::runtime::parse_model(bytes, "fuzz.lbq");
  } catch (const lowbit::Error&) {
    return 0;  // refused with a clear error: the expected outcome for most inputs
  }
  lowbit::runtime::SessionOptions options;
  options.isa = "ref";  // the harness checks the loader and planning, not kernel speed
  // Small limits keep every execution fast; larger models are refused with lowbit::Error, which
  // exercises the limit checks (the seeds are 8x8 models far below them).
  options.limits.max_activation_bytes = int64_t{1} << 20;
  options.limits.max_macs = int64_t{1} << 20;
  try {
    lowbit::runtime::Session session(std::move(model), options);
    const auto& m = session.model();
    std::vector<float> x(static_cast<size_t>(m.in_channels) * m.in_height * m.in_width, 0.5f);
    session.run(x.data(), 1);
  } catch (const lowbit::Error&) {
    return 0;  // e.g. over the resource limits
  }
  return 0;
}
