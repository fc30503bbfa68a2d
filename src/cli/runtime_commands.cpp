// Commands on integer runtime model files (.lbq): `lowbit run`, `lowbit bench`, `lowbit inspect`.
// They use lowbit_runtime only (plus the IDX reader for `run`), except `bench --checkpoint`,
// which times LibTorch's evaluation of a checkpoint as the float anchor.
#include <algorithm>
#include <chrono>
#include <iomanip>
#include <optional>
#include <iostream>
#include <memory>
#include <sstream>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "cli/commands.h"
#include "data/dataset_source.h"
#include "data/fashion_mnist.h"
#include "data/idx_file.h"
#include "models/gpt.h"
#include "runtime/decoder_model_file.h"
#include "runtime/encoder_model_file.h"
#include "runtime/encoder_session.h"
#include "runtime/deployment_metrics.h"
#include "runtime/transformer_metrics.h"
#include "runtime/model_file.h"
#include "runtime/model_tools.h"
#include "runtime/text_generation.h"
#include "runtime/session.h"
#include "convert/to_runtime.h"
#include "models/imported_net.h"
#include "models/net.h"
#include "ptq/ptq.h"
#include "cli/transformer_checkpoint.h"
#include "train/checkpoint.h"
#include "train/compute_threads.h"

namespace lowbit::cli {
namespace {

const char* kFashionClasses[] = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                 "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};

struct RunArgs {
  std::string model;
  std::string idx;
  std::string data;  // any --data value (data/dataset_source.h) or one .npy array of images
  std::string split = "test";
  std::string layout = "auto";
  int64_t index = 0;
  int64_t count = 1;
  int threads = 1;
};

// An encoder model file (vit-tiny): classes and logits (float; no integer logits, the head reads
// a float LayerNorm output).
void run_encoder_model(const RunArgs& args) {
  runtime::EncoderOptions o;
  o.threads = args.threads;
  runtime::EncoderSession session = runtime::EncoderSession::load(args.model, o);
  const runtime::EncoderModel& m = session.model();
  data::RawDataset images;
  if (!args.idx.empty()) {
    data::RawImages idx = data::read_idx_images(args.idx);
    images.spec = args.idx;
    images.count = idx.count;
    images.channels = 1;
    images.height = idx.rows;
    images.width = idx.cols;
    images.u8 = std::move(idx.pixels);
  } else {
    images = data::load_raw_images(args.data, args.split, args.layout);
  }
  const std::string source = args.idx.empty() ? images.spec : args.idx;
  LOWBIT_CHECK(images.channels == m.channels && images.height == m.image_size && images.width == m.image_size,
               "'" + source + "' holds images of shape " +
                   data::shape_string({images.count, images.channels, images.height, images.width}) +
                   " (N, C, H, W); the model '" + args.model + "' expects [N, " + std::to_string(m.channels) + ", " +
                   std::to_string(m.image_size) + ", " + std::to_string(m.image_size) + "]");
  LOWBIT_CHECK(args.index >= 0 && args.index + args.count <= images.count,
               "--index " + std::to_string(args.index) + " --count " + std::to_string(args.count) + " is out of range: '" +
                   source + "' has " + std::to_string(images.count) + " images");
  const std::vector<float> x = data::planar_floats(images, args.index, args.count);
  const std::vector<float> logits = session.run(x.data(), args.count);
  for (int64_t i = 0; i < args.count; ++i) {
    const float* li = logits.data() + i * m.classes;
    int32_t cls = 0;
    for (int32_t c = 1; c < m.classes; ++c)
      if (li[c] > li[cls]) cls = c;
    std::cout << "image " << args.index + i << ": class " << cls;
    if (m.classes == 10) std::cout << " (" << kFashionClasses[cls] << ")";
    std::cout << "\n  logits:";
    for (int32_t c = 0; c < m.classes; ++c) std::cout << " " << std::setprecision(4) << li[c];
    std::cout << "\n";
  }
}

void run_model(const RunArgs& args) {
  LOWBIT_CHECK(args.idx.empty() != args.data.empty(),
               "lowbit run takes the images from --idx FILE (IDX) or --data SPEC (.npy images, .npz, a .npy folder, "
               "image folders, IDX folder), one of the two");
  if (runtime::is_encoder_model_file(args.model)) return run_encoder_model(args);
  runtime::Session session = runtime::Session::load(args.model, session_options(args.threads));
  const auto& m = session.model();
  data::RawDataset images;
  if (!args.idx.empty()) {
    data::RawImages idx = data::read_idx_images(args.idx);
    images.spec = args.idx;
    images.count = idx.count;
    images.channels = 1;
    images.height = idx.rows;
    images.width = idx.cols;
    images.u8 = std::move(idx.pixels);
  } else {
    images = data::load_raw_images(args.data, args.split, args.layout);
  }
  const std::string source = args.idx.empty() ? images.spec : args.idx;
  LOWBIT_CHECK(images.channels == m.in_channels && images.height == m.in_height && images.width == m.in_width,
               "'" + source + "' holds images of shape " +
                   data::shape_string({images.count, images.channels, images.height, images.width}) +
                   " (N, C, H, W); the model '" + args.model + "' expects [N, " + std::to_string(m.in_channels) +
                   ", " + std::to_string(m.in_height) + ", " + std::to_string(m.in_width) + "]" +
                   (images.channels != m.in_channels && images.height == m.in_width && images.channels == m.in_height
                        ? " (an NHWC array read as NCHW? pass --layout nhwc)"
                        : ""));
  LOWBIT_CHECK(args.index >= 0 && args.index + args.count <= images.count,
               "--index " + std::to_string(args.index) + " --count " + std::to_string(args.count) + " is out of range: '" +
                   source + "' has " + std::to_string(images.count) + " images");
  const std::vector<float> x = data::planar_floats(images, args.index, args.count);
  const runtime::RunResult r = session.run(x.data(), args.count);
  for (int64_t i = 0; i < args.count; ++i) {
    const int32_t cls = r.argmax[static_cast<size_t>(i)];
    std::cout << "image " << args.index + i << ": class " << cls;
    if (r.classes == 10) std::cout << " (" << kFashionClasses[cls] << ")";
    std::cout << "\n  scores:";
    for (int32_t c = 0; c < r.classes; ++c) std::cout << " " << std::setprecision(4) << r.logits[static_cast<size_t>(i * r.classes + c)];
    std::cout << "\n  integer logits:";
    for (int32_t c = 0; c < r.classes; ++c) std::cout << " " << r.int_logits[static_cast<size_t>(i * r.classes + c)];
    std::cout << "\n";
  }
}

struct BenchArgs {
  std::string model;
  std::string checkpoint;
  std::vector<int64_t> batches{1, 256};
  int threads = 2;
  int iterations = 50;
  bool json = false;
  bool profile = false;       // image models: CPU time per op
  int64_t prompt_tokens = 0;  // decoder models: 0 = half the context
  int64_t decode_tokens = 0;  // decoder models: 0 = the rest of the context
};

// Prompt / decode lengths of a decoder benchmark: the flags, or half the context each.
std::pair<int64_t, int64_t> lm_bench_lengths(const BenchArgs& a, int64_t context) {
  const int64_t p = a.prompt_tokens > 0 ? a.prompt_tokens : std::max<int64_t>(1, context / 2);
  const int64_t d = a.decode_tokens > 0 ? a.decode_tokens : std::max<int64_t>(1, context - p);
  return {p, d};
}

void print_lm_bench(const BenchArgs& a, const std::string& what, const runtime::DecoderBenchmark& b) {
  if (a.json) {
    std::cout << nlohmann::json{{"model", what}, {"batch", 1}, {"threads", b.threads}, {"isa", b.isa},
                                {"prompt_tokens", b.prompt_tokens}, {"decode_tokens", b.decode_tokens},
                                {"prefill_tokens_per_s", b.prefill_tokens_per_s},
                                {"decode_tokens_per_s", b.decode_tokens_per_s}}
                     .dump()
              << "\n";
  } else {
    std::cout << what << ": " << b.to_string() << "\n";
  }
}

// The float anchor for a language model: LibTorch's evaluation of a gpt-tiny checkpoint, batch 1.
// Prefill: one forward of the prompt. Decode: the model has no KV cache on the LibTorch side, so
// each new token is one forward of the whole text so far (what `lowbit eval` and QAT compute).
runtime::DecoderBenchmark benchmark_lm_checkpoint(models::Net& net, int64_t context, const BenchArgs& a) {
  torch::NoGradGuard no_grad;
  net->eval();
  const auto [p, d] = lm_bench_lengths(a, context);
  LOWBIT_CHECK(p + d <= context, "bench: prompt + decode tokens exceed the context of " + std::to_string(context));
  const torch::Tensor text = torch::randint(0, 256, {1, p + d}, torch::kLong);
  std::vector<double> prefill, decode;
  for (int it = 0; it < std::max(1, a.iterations) + 1; ++it) {
    auto t0 = std::chrono::steady_clock::now();
    net->forward(text.narrow(1, 0, p));
    const double tp = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    t0 = std::chrono::steady_clock::now();
    for (int64_t i = 1; i <= d; ++i) net->forward(text.narrow(1, 0, p + i));
    const double td = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (it == 0) continue;
    prefill.push_back(static_cast<double>(p) / tp);
    decode.push_back(static_cast<double>(d) / td);
  }
  std::sort(prefill.begin(), prefill.end());
  std::sort(decode.begin(), decode.end());
  runtime::DecoderBenchmark b;
  b.prompt_tokens = p;
  b.decode_tokens = d;
  b.threads = a.threads;
  b.isa = "libtorch";
  b.prefill_tokens_per_s = prefill[prefill.size() / 2];
  b.decode_tokens_per_s = decode[decode.size() / 2];
  return b;
}

// LibTorch evaluation of a checkpoint (FP32, or QAT in its fake-quantized evaluation mode) on
// random inputs in [0, 1], with the same warm-up and statistics as the runtime's benchmark.
runtime::BenchmarkResult benchmark_checkpoint(models::Net& net, int64_t batch, int threads, int iterations) {
  torch::NoGradGuard no_grad;
  net->eval();
  const torch::Tensor x = models::random_inputs(net, batch);
  for (int i = 0; i < 2; ++i) net->forward(x);
  runtime::BenchmarkResult r;
  r.batch = batch;
  r.threads = threads;
  r.isa = "libtorch";
  for (int i = 0; i < std::max(1, iterations); ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    net->forward(x);
    r.samples_ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  runtime::summarize_samples(r, 0.0);
  return r;
}

// `lowbit bench M.lbq --profile`: median CPU ms per op at each batch size (runtime::profile_model).
void profile_model_file(const BenchArgs& args) {
  runtime::SessionOptions so = session_options(args.threads);
  so.profile = true;
  runtime::Session session = runtime::Session::load(args.model, so);
  const runtime::ModelMetrics metrics = runtime::model_metrics(session.model(), {}, args.model);
  nlohmann::json profiles = nlohmann::json::array();
  for (int64_t batch : args.batches) {
    LOWBIT_CHECK(batch > 0, "--batch sizes must be positive (got " + std::to_string(batch) + ")");
    const runtime::ProfileResult p = runtime::profile_model(session, batch, args.iterations);
    nlohmann::json ops = nlohmann::json::array();
    if (!args.json)
      std::cout << args.model << ": batch " << batch << ", " << p.threads << " thread(s), " << p.isa
                << ", median CPU ms per op over " << args.iterations << " runs\n";
    for (size_t k = 0; k < p.ops.size(); ++k) {
      const runtime::OpProfile& o = p.ops[k];
      const std::string node = std::to_string(o.index) + ": " + metrics.ops[k].name;
      ops.push_back({{"index", o.index}, {"node", node}, {"kind", o.kind}, {"kernel", o.kernel}, {"ms", o.median_ms},
                     {"macs", metrics.ops[k].macs * batch}, {"weight_format", metrics.ops[k].weight_format}});
      if (!args.json) {
        std::ostringstream line;
        line << "  " << std::left << std::setw(24) << node << std::right << std::setw(10) << std::fixed
             << std::setprecision(4) << o.median_ms << " ms  " << std::setw(5) << std::setprecision(1)
             << (p.total_ms > 0 ? 100.0 * o.median_ms / p.total_ms : 0.0) << "%  " << o.kernel << "\n";
        std::cout << line.str();
      }
    }
    if (!args.json)
      std::cout << "  " << std::left << std::setw(24) << "input + output" << std::right << std::setw(10) << std::fixed
                << std::setprecision(4) << p.io_ms << " ms\n  " << std::left << std::setw(24) << "total" << std::right
                << std::setw(10) << p.total_ms << " ms\n"
                << std::defaultfloat;
    profiles.push_back({{"batch", batch}, {"ops", ops}, {"io_ms", p.io_ms}, {"total_ms", p.total_ms}});
  }
  if (args.json)
    std::cout << nlohmann::json{{"model", args.model}, {"threads", session.threads()}, {"isa", runtime::isa_name(session.isa())},
                                {"iterations", args.iterations}, {"profile", profiles}}
                     .dump()
              << "\n";
}

void bench_model(const BenchArgs& args) {
  if (args.model.empty() == args.checkpoint.empty()) {
    throw CLI::ValidationError("bench", "give a model file (.lbq) or --checkpoint, one of them");
  }
  std::optional<models::Net> net;
  if (!args.checkpoint.empty()) {
    net = train::load_net(args.checkpoint);
    lowbit::train::set_compute_threads(args.threads);
    if ((*net)->model_name() == "gpt-tiny") {
      const train::CheckpointInfo info = train::load_checkpoint(args.checkpoint);
      const int64_t context = models::GptOptions::from_json(info.config.value("lm", nlohmann::json::object())).context;
      print_lm_bench(args, args.checkpoint, benchmark_lm_checkpoint(*net, context, args));
      return;
    }
  } else if (runtime::is_decoder_model_file(args.model)) {
    runtime::DecoderOptions o;
    o.threads = args.threads;
    runtime::DecoderSession session = runtime::DecoderSession::load(args.model, o);
    const auto [p, d] = lm_bench_lengths(args, session.model().context);
    print_lm_bench(args, args.model, runtime::benchmark_decoder(session, p, d, args.iterations));
    return;
  }
  if (args.profile) {
    LOWBIT_CHECK(!net, "--profile measures the integer runtime's ops; give a model file (.lbq), not --checkpoint");
    profile_model_file(args);
    return;
  }
  nlohmann::json results = nlohmann::json::array();
  for (int64_t batch : args.batches) {
    LOWBIT_CHECK(batch > 0, "--batch sizes must be positive (got " + std::to_string(batch) + ")");
    runtime::BenchmarkResult r;
    if (net) {
      r = benchmark_checkpoint(*net, batch, args.threads, args.iterations);
    } else {
      runtime::Session session = runtime::Session::load(args.model, session_options(args.threads));
      r = runtime::benchmark_model(session, batch, args.threads, args.iterations);
    }
    if (args.json) {
      results.push_back({{"batch", r.batch}, {"threads", r.threads}, {"isa", r.isa}, {"ms_median", r.median_ms},
                         {"ms_p90", r.p90_ms}, {"ms_p99", r.p99_ms}, {"items_per_s", r.items_per_s},
                         {"gmacs_per_s", r.gmacs_per_s}});
    } else {
      std::cout << r.to_string() << "\n";
    }
  }
  const std::string what = net ? args.checkpoint : args.model;
  if (args.json) std::cout << nlohmann::json{{"model", what}, {"results", results}}.dump() << "\n";
}

struct InspectArgs {
  std::string model;
  std::string checkpoint;  // --checkpoint: metrics of the model conversion would write
  bool metrics = false;
  bool latency = false;
  bool json = false;
  int threads = 1;
  int64_t context_tokens = 0;  // decoders: positions the metrics' token attends to (0: the context)
};

nlohmann::json metrics_json(const runtime::ModelMetrics& m) {
  nlohmann::json ops = nlohmann::json::array();
  for (const runtime::OpMetrics& o : m.ops)
    ops.push_back({{"index", o.index}, {"op", o.name}, {"weight_format", o.weight_format},
                   {"weight_bits", o.weight_bits}, {"act_bits", o.act_bits}, {"params", o.params},
                   {"weight_bytes", o.weight_bytes}, {"macs", o.macs}, {"bops", o.bops},
                   {"activation_bytes", o.activation_bytes}, {"energy_nj", o.energy_pj / 1e3},
                   {"fp32_energy_nj", o.fp32_energy_pj / 1e3}, {"math", o.math}, {"float_ops", o.float_ops},
                   {"weight_read_bytes", o.weight_read_bytes}});
  return {{"ops", ops},
          {"inference", m.inference},
          {"params", m.params},
          {"weight_bytes", m.weight_bytes},
          {"file_bytes", m.file_bytes},
          {"fp32_bytes", m.fp32_bytes},
          {"bits_per_parameter", m.bits_per_parameter},
          {"macs", m.macs},
          {"bops", m.bops},
          {"energy_nj", m.energy_pj / 1e3},
          {"fp32_energy_nj", m.fp32_energy_pj / 1e3},
          {"float_macs", m.float_macs},
          {"float_ops", m.float_ops},
          {"energy_source", "Horowitz, ISSCC 2014, 45 nm; weights from 1 MB SRAM (12.5 pJ/byte), activations from 32 KB "
                            "SRAM (2.5 pJ/byte); docs/metrics.md"}};
}

void print_metrics(const InspectArgs& args, const std::string& what, const std::shared_ptr<const runtime::PreparedModel>& prepared,
                   bool fp32_checkpoint);
void print_decoder_metrics(const InspectArgs& args, const std::string& what, const runtime::DecoderModel& m,
                           bool fp32_checkpoint);
void print_encoder_metrics(const InspectArgs& args, const std::string& what, const runtime::EncoderModel& m,
                           bool fp32_checkpoint);

// The integer model of a checkpoint, converted in memory: what `lowbit convert` writes for a QAT
// or PTQ checkpoint; for an FP32 checkpoint the same graph at W8A8 (per-channel round-to-nearest
// weights, activation ranges from one batch of random images: only shapes and widths matter here).
runtime::Model model_of_checkpoint(const std::string& path, bool& fp32) {
  const train::CheckpointInfo info = train::load_checkpoint(path);
  LOWBIT_CHECK(models::is_image_classifier(info.model_name),
               "inspect --checkpoint: '" + info.path + "' is model '" + info.model_name +
                   "'; metrics cover the convertible models (" + [&] {
                     std::string s;
                     for (const auto& n : models::all_model_names()) s += (s.empty() ? "" : ", ") + n;
                     return s;
                   }() + ", or an image model imported from ONNX)");
  models::Net net = train::load_net(info.path);
  fp32 = !info.config.contains("qat");
  if (fp32) {
    torch::manual_seed(0);
    ptq::quantize_post_training(net, ptq::ptq_config(8, 8, 1), {models::random_inputs(net, 16)}, ptq::PtqOptions{});
  }
  // The description `lowbit convert` stores, so that file bytes match its file.
  return convert::to_runtime_model(net, net->model_name() + " from " + path +
                                            (fp32 ? " (FP32 checkpoint; integer columns: W8A8 stand-in)" : ""));
}

void inspect_model(const InspectArgs& args) {
  if (args.model.empty() == args.checkpoint.empty()) {
    throw CLI::ValidationError("inspect", "give a model file (.lbq) or --checkpoint, one of them");
  }
  if (!args.checkpoint.empty()) {
    LOWBIT_CHECK(args.metrics, "inspect --checkpoint goes with --metrics");
    bool fp32 = false;
    const std::string model_name = train::load_checkpoint(args.checkpoint).model_name;
    if (model_name == "gpt-tiny") {
      const runtime::DecoderModel m = decoder_of_checkpoint(args.checkpoint, fp32);
      print_decoder_metrics(args, args.checkpoint, m, fp32);
      return;
    }
    LOWBIT_CHECK(args.context_tokens == 0, "inspect: --context-tokens goes with a decoder language model (gpt-tiny)");
    if (model_name == "vit-tiny") {
      const runtime::EncoderModel m = encoder_of_checkpoint(args.checkpoint, fp32);
      print_encoder_metrics(args, args.checkpoint, m, fp32);
      return;
    }
    const auto prepared = runtime::PreparedModel::create(model_of_checkpoint(args.checkpoint, fp32));
    print_metrics(args, args.checkpoint, prepared, fp32);
    return;
  }
  LOWBIT_CHECK(args.metrics || (!args.json && !args.latency && args.context_tokens == 0),
               "inspect: --json, --latency and --context-tokens go with --metrics");
  if (runtime::is_decoder_model_file(args.model)) {
    if (args.metrics) {
      print_decoder_metrics(args, args.model, runtime::load_decoder_model(args.model), false);
      return;
    }
    runtime::DecoderSession session = runtime::DecoderSession::load(args.model);
    const std::vector<std::string> kernels = session.kernel_names();
    std::cout << args.model << ": " << session.model().name << "\n"
              << runtime::describe_decoder_model(session.model(), kernels) << "kernels (isa "
              << runtime::isa_name(session.isa()) << "):";
    for (const std::string& k : kernels) std::cout << " " << k << ";";
    std::cout << "\n";
    return;
  }
  LOWBIT_CHECK(args.context_tokens == 0, "inspect: --context-tokens goes with a decoder language model (gpt-tiny)");
  if (runtime::is_encoder_model_file(args.model)) {
    if (args.metrics) {
      print_encoder_metrics(args, args.model, runtime::load_encoder_model(args.model), false);
      return;
    }
    runtime::EncoderSession session = runtime::EncoderSession::load(args.model);
    const std::vector<std::string> kernels = session.kernel_names();
    std::cout << args.model << ": " << session.model().name << "\n"
              << runtime::describe_encoder_model(session.model(), kernels) << "kernels (isa "
              << runtime::isa_name(session.isa()) << "):";
    for (const std::string& k : kernels) std::cout << "\n  " << k;
    std::cout << "\nfloat ops (LayerNorm, attention, GELU, residual adds, token mean, linears whose input is float) "
                 "run in scalar float; integer linears read static uint8 activation codes\n";
    return;
  }
  const auto prepared = runtime::PreparedModel::load(args.model);
  const runtime::Model& m = prepared->model();
  if (!args.metrics) {
    std::cout << args.model << ": " << m.name << "\n" << runtime::describe_model(m);
    return;
  }
  print_metrics(args, args.model, prepared, false);
}

// --latency's measurements: JSON entries and text lines.
struct Latency {
  nlohmann::json json = nlohmann::json::array();
  std::vector<std::string> lines;
  void add(const runtime::BenchmarkResult& r) {
    json.push_back({{"batch", r.batch}, {"threads", r.threads}, {"isa", r.isa}, {"ms_median", r.median_ms},
                    {"ms_p90", r.p90_ms}, {"items_per_s", r.items_per_s}});
    lines.push_back(r.to_string());
  }
};

// The metrics as a table or JSON, for every model kind.
void emit_metrics(const InspectArgs& args, const std::string& what, const std::string& name,
                  const runtime::ModelMetrics& metrics, bool fp32_checkpoint, const Latency& latency) {
  if (args.json) {
    nlohmann::json j = metrics_json(metrics);
    j["model"] = what;
    j["name"] = name;
    if (metrics.context_tokens > 0) j["context_tokens"] = metrics.context_tokens;
    if (!args.checkpoint.empty()) j["fp32_checkpoint"] = fp32_checkpoint;
    if (!latency.lines.empty()) j["latency"] = latency.json;
    std::cout << j.dump(2) << "\n";
    return;
  }
  std::cout << what << ": " << name << "\n" << runtime::metrics_table(metrics);
  if (fp32_checkpoint)
    std::cout << "(an FP32 checkpoint: its figures are the FP32 columns; the integer columns are the same graph at "
                 "8-bit weights, what `lowbit ptq --wbits 8 --abits 8` (gpt-tiny: `lowbit convert --wbits 8 "
                 "--group-size 0`) and `lowbit convert` would give)\n";
  else if (!args.checkpoint.empty())
    std::cout << "(converted in memory: the model `lowbit convert --checkpoint " << args.checkpoint << "` writes)\n";
  for (const std::string& l : latency.lines) std::cout << "latency: " << l << "\n";
}

void print_metrics(const InspectArgs& args, const std::string& what, const std::shared_ptr<const runtime::PreparedModel>& prepared,
                   bool fp32_checkpoint) {
  const runtime::Model& m = prepared->model();
  const runtime::ModelMetrics metrics = runtime::model_metrics(m, {}, what);
  Latency latency;
  if (args.latency) {
    runtime::Session session(prepared, session_options(args.threads));
    for (int64_t batch : {int64_t{1}, int64_t{256}})
      latency.add(runtime::benchmark_model(session, batch, args.threads, batch == 1 ? 200 : 10));
  }
  emit_metrics(args, what, m.name, metrics, fp32_checkpoint, latency);
}

// Decoders: per-token metrics at --context-tokens; --latency: prefill and decode tokens/s as
// `lowbit bench` measures them (half the context each).
void print_decoder_metrics(const InspectArgs& args, const std::string& what, const runtime::DecoderModel& m,
                           bool fp32_checkpoint) {
  const runtime::ModelMetrics metrics = runtime::decoder_metrics(m, args.context_tokens, {}, what);
  Latency latency;
  if (args.latency) {
    runtime::DecoderOptions o;
    o.threads = args.threads;
    runtime::DecoderSession session(m, o);
    const int64_t p = std::max<int64_t>(1, m.context / 2), d = std::max<int64_t>(1, m.context - p);
    const runtime::DecoderBenchmark b = runtime::benchmark_decoder(session, p, d, 20);
    latency.json.push_back({{"batch", 1}, {"threads", b.threads}, {"isa", b.isa}, {"prompt_tokens", b.prompt_tokens},
                            {"decode_tokens", b.decode_tokens}, {"prefill_tokens_per_s", b.prefill_tokens_per_s},
                            {"decode_tokens_per_s", b.decode_tokens_per_s}});
    latency.lines.push_back(b.to_string());
  }
  emit_metrics(args, what, m.name, metrics, fp32_checkpoint, latency);
}

// Encoders: per-image metrics; --latency: batches of 1 and 256 random images, as for the op graphs.
void print_encoder_metrics(const InspectArgs& args, const std::string& what, const runtime::EncoderModel& m,
                           bool fp32_checkpoint) {
  const runtime::ModelMetrics metrics = runtime::encoder_metrics(m, {}, what);
  Latency latency;
  if (args.latency) {
    runtime::EncoderOptions o;
    o.threads = args.threads;
    runtime::EncoderSession session(m, o);
    const int64_t image = int64_t{m.channels} * m.image_size * m.image_size;
    for (int64_t batch : {int64_t{1}, int64_t{256}}) {
      const std::vector<float> x(static_cast<size_t>(batch * image), 0.5f);
      runtime::BenchmarkResult r;
      r.batch = batch;
      r.threads = session.threads();
      r.isa = runtime::isa_name(session.isa());
      for (int i = 0; i < 2; ++i) session.run(x.data(), batch);
      for (int i = 0; i < (batch == 1 ? 200 : 10); ++i) {
        const auto t0 = std::chrono::steady_clock::now();
        session.run(x.data(), batch);
        r.samples_ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
      }
      runtime::summarize_samples(r, static_cast<double>(metrics.macs));
      latency.add(r);
    }
  }
  emit_metrics(args, what, m.name, metrics, fp32_checkpoint, latency);
}

}  // namespace

void add_runtime_commands(CLI::App& app) {
  auto run_args = std::make_shared<RunArgs>();
  CLI::App* run = app.add_subcommand("run", "Classify images (an IDX file, a .npy array or any --data value) with an integer model (.lbq)");
  run->add_option("model", run_args->model, "Model file (.lbq)")->required();
  run->add_option("--idx", run_args->idx, "IDX image file (.gz or raw), e.g. t10k-images-idx3-ubyte.gz");
  run->add_option("--data", run_args->data,
                  "Images instead of --idx: one .npy array [N, H, W], [N, C, H, W] or [N, H, W, C] (uint8 0..255 or "
                  "float32 in [0, 1]), or any --data value (.npz, .npy folder, image folders, IDX folder; --split)");
  run->add_option("--split", run_args->split, "With --data: test or train")
      ->check(CLI::IsMember({"test", "train"}))->capture_default_str();
  run->add_option("--layout", run_args->layout, "With --data: nchw, nhwc or auto (channels are the axis of size 1 or 3)")
      ->check(CLI::IsMember({"auto", "nchw", "nhwc"}))->capture_default_str();
  run->add_option("--index", run_args->index, "First image")->capture_default_str();
  run->add_option("--count", run_args->count, "Number of images")->check(CLI::PositiveNumber)->capture_default_str();
  run->add_option("--threads", run_args->threads, "Threads")->check(CLI::PositiveNumber)->capture_default_str();
  run->callback([run_args] { run_model(*run_args); });

  auto bench_args = std::make_shared<BenchArgs>();
  CLI::App* bench = app.add_subcommand(
      "bench", "Latency and throughput of an integer model (.lbq), or of a checkpoint on LibTorch, on random inputs");
  bench->add_option("model", bench_args->model, "Model file (.lbq)");
  bench->add_option("--checkpoint", bench_args->checkpoint,
                    "Time LibTorch's evaluation of this checkpoint instead (the float anchor)");
  bench->add_option("--batch", bench_args->batches, "Batch sizes, comma separated")->delimiter(',')->capture_default_str();
  bench->add_option("--threads", bench_args->threads, "Threads")->check(CLI::PositiveNumber)->capture_default_str();
  bench->add_option("--iterations", bench_args->iterations, "Timed runs per batch size")->check(CLI::PositiveNumber)->capture_default_str();
  bench->add_flag("--profile", bench_args->profile,
                  "Median CPU time per op (image models; each --batch), for per-layer latency");
  bench->add_flag("--json", bench_args->json, "One JSON object with batch, ms_median, items_per_s per entry");
  bench->add_option("--prompt-tokens", bench_args->prompt_tokens,
                    "Decoder models: prompt length for the prefill timing (default: half the context)");
  bench->add_option("--decode-tokens", bench_args->decode_tokens,
                    "Decoder models: tokens decoded one at a time after the prompt (default: the rest of the context)");
  bench->callback([bench_args] { bench_model(*bench_args); });

  auto inspect_args = std::make_shared<InspectArgs>();
  CLI::App* inspect = app.add_subcommand("inspect", "Layers, shapes, bits, size and bits per parameter of a model file");
  inspect->add_option("model", inspect_args->model, "Model file (.lbq)");
  inspect->add_option("--checkpoint", inspect_args->checkpoint,
                      "With --metrics: a checkpoint instead (QAT / PTQ: converted in memory; FP32: FP32 figures, "
                      "with the graph at 8-bit weights beside them); image models, vit-tiny, gpt-tiny");
  inspect->add_flag("--metrics", inspect_args->metrics,
                    "Deployment metrics per op and in total: params, bytes, bits/param, MACs, BOPs, energy estimate "
                    "(FP32 alongside; docs/metrics.md)");
  inspect->add_flag("--latency", inspect_args->latency,
                    "With --metrics: also measure latency at batch 1 and 256 on this machine");
  inspect->add_option("--threads", inspect_args->threads, "With --latency: threads (default 1)");
  inspect->add_option("--context-tokens", inspect_args->context_tokens,
                      "With --metrics, decoder models: the metrics' token attends to this many positions (KV cache "
                      "length + 1; default: the model's context)")
      ->check(CLI::PositiveNumber);
  inspect->add_flag("--json", inspect_args->json, "With --metrics: one JSON object instead of the table");
  inspect->callback([inspect_args] { inspect_model(*inspect_args); });
}

}  // namespace lowbit::cli
