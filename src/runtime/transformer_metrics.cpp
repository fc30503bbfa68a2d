#include "runtime/transformer_metrics.h"

#include "base/error.h"
#include "runtime/decoder_model_file.h"
#include "runtime/encoder_model_file.h"

namespace lowbit::runtime {
namespace {

// Float work per element of the float ops, counted in the units Work prices (docs/metrics.md,
// "Transformers"). Compares and subtractions count as adds, divisions as multiplies, and exp / erf
// as one multiply and one add each: a lower bound for those.
struct PerElement {
  int64_t mults, adds;
};
constexpr PerElement kRmsNorm{3, 1};    // x * x and its sum; x * rstd * w
constexpr PerElement kLayerNorm{3, 5};  // sum; (x - mean)^2 and its sum; (x - mean) * rstd * w + b
constexpr PerElement kRope{2, 1};       // per rotated element: a pair takes 4 multiplies and 2 adds
constexpr PerElement kSoftmax{3, 3};    // per score: scale, exp, normalise; max, subtract, sum
constexpr PerElement kSwiglu{3, 2};     // silu(g) * u = g / (1 + exp(-g)) * u
constexpr PerElement kGelu{4, 2};       // 0.5 x (1 + erf(x / sqrt 2))
constexpr PerElement kTokenQuant{1, 1};  // per-token int8 input: abs-max compare, x / s_t
constexpr PerElement kFakeQuant{2, 2};  // a static grid: code round(x / s) + z, value s (q - z)

void add_float(Work& w, PerElement p, int64_t n) {
  w.fp32_mults += p.mults * n;
  w.fp32_adds += p.adds * n;
}

// "int4 group32" -> "int4": the table's weights column.
std::string short_format(const QuantLinear& q) {
  const std::string f = q.format();
  return f.substr(0, f.find(' '));
}

// Collects the rows of one model: indices, totals, and the weight bits behind bits/parameter.
class Rows {
 public:
  explicit Rows(ModelMetrics& m) : m_(m) {}

  OpMetrics op(const std::string& name, const std::string& format, const std::string& math, int32_t weight_bits,
               int32_t act_bits) {
    OpMetrics o;
    o.index = static_cast<int32_t>(m_.ops.size() + 1);
    o.name = name;
    o.weight_format = format;
    o.math = math;
    o.weight_bits = weight_bits;
    o.act_bits = act_bits;
    return o;
  }
  // n float parameters (norm weights, embeddings, float linears): 4 bytes and 32 bits each.
  void float_params(OpMetrics& o, int64_t n) {
    o.params += n;
    o.weight_bytes += 4 * n;
    bits_ += 32 * n;
  }
  void quant_params(OpMetrics& o, const QuantLinear& q) {
    const int64_t n = int64_t{q.in_features} * q.out_features;
    o.params += n;
    o.weight_bytes += static_cast<int64_t>(q.packed.size() + q.scales.size() * 4);
    bits_ += n * q.bits;
  }
  // A float op the runtime runs alike in both models: same work in the integer and the FP32 columns.
  void push_float(OpMetrics o, Work w) {
    w.weight_bytes = o.weight_read_bytes;
    o.activation_bytes = w.activation_bytes;
    add_op(m_, std::move(o), w, w);
  }
  void push(OpMetrics o, const Work& w, const Work& fp32) { add_op(m_, std::move(o), w, fp32); }
  void finish() {
    m_.bits_per_parameter = m_.params ? double(bits_) / double(m_.params) : 0.0;
    m_.fp32_bytes = 4.0 * double(m_.params);
  }

 private:
  ModelMetrics& m_;
  int64_t bits_ = 0;
};

// A float op on `rows` x `n` elements with `weights` float parameters read once.
void float_op(Rows& rows, const std::string& name, int64_t weights, PerElement per, int64_t elements,
              int64_t activation_bytes) {
  OpMetrics o = rows.op(name, weights ? "f32" : "-", "float", weights ? 32 : 0, 32);
  rows.float_params(o, weights);
  o.weight_read_bytes = 4 * weights;
  Work w;
  add_float(w, per, elements);
  w.activation_bytes = activation_bytes;
  rows.push_float(std::move(o), w);
}

// The row of a float product over r rows, in inputs, out outputs: float MACs, 32 x 32 bit operations.
OpMetrics float_linear_row(Rows& rows, const std::string& name, const std::string& format, int32_t weight_bits,
                           int64_t r, int64_t in, int64_t out) {
  OpMetrics o = rows.op(name, format, "float", weight_bits, 32);
  o.macs = r * in * out;
  o.bops = o.macs * 32 * 32;
  return o;
}

// --- decoder -------------------------------------------------------------------------------------

// A decoder projection for one token: per-token int8 codes (act bits 8) times the packed weights,
// one int32 accumulator per weight group, then the float epilogue y = s_x * sum_g s_w[o, g] acc[o, g].
// `quantizes`: this row also carries the per-token quantization of its input (q for q/k/v, gate for
// gate/up: the runtime quantizes a shared input once).
void projection(Rows& rows, const std::string& name, const QuantLinear& q, bool quantizes) {
  const int64_t in = q.in_features, out = q.out_features;
  OpMetrics o = rows.op(name, short_format(q), "integer", q.bits, 8);
  rows.quant_params(o, q);
  o.weight_read_bytes = o.weight_bytes;
  o.macs = in * out;
  o.bops = o.macs * q.bits * 8;
  Work w;
  w.int_macs = o.macs;
  w.act_bits = 8;
  w.weight_bits = q.bits;
  add_float(w, {1, 1}, out * q.groups());  // s_w[o, g] * acc, summed
  w.fp32_mults += out;                      // * s_x
  w.activation_bytes = in + 4 * out;        // int8 codes read, float output written
  if (quantizes) {
    add_float(w, kTokenQuant, in);
    w.activation_bytes += 4 * in + in;  // float input read, codes written
  }
  w.weight_bytes = o.weight_read_bytes;
  o.activation_bytes = w.activation_bytes;
  Work f;  // FP32: a float multiply-add per MAC, float weights and activations
  f.fp32_macs = o.macs;
  f.weight_bytes = 4 * o.params;
  f.activation_bytes = 4 * (in + out);
  rows.push(std::move(o), w, f);
}

}  // namespace

ModelMetrics decoder_metrics(const DecoderModel& m, int64_t context_tokens, const EnergyTable& t,
                             const std::string& where) {
  validate_decoder_model(m, where);
  const int64_t T = context_tokens == 0 ? m.context : context_tokens;
  LOWBIT_CHECK(T >= 1 && T <= m.context, where + ": a context of " + std::to_string(context_tokens) +
                                             " tokens is outside [1, " + std::to_string(m.context) +
                                             "] (the model's context)");
  ModelMetrics r;
  r.table = t;
  r.file_bytes = static_cast<int64_t>(serialize_decoder_model(m).size());
  r.context_tokens = T;
  r.inference = "one generated token at position " + std::to_string(T - 1) + ", attending to T = " +
                std::to_string(T) + " positions (KV cache of " + std::to_string(T - 1) + " earlier tokens; context " +
                std::to_string(m.context) + ")";
  Rows rows(r);
  const int64_t d = m.width, f = m.hidden, V = m.vocab, H = m.heads;
  {
    // The embedding reads one row of its float table per token and writes the float residual stream.
    OpMetrics o = rows.op("embed", "f32", "float", 32, 0);
    rows.float_params(o, V * d);
    o.weight_read_bytes = 4 * d;
    Work w;
    w.activation_bytes = 4 * d;
    rows.push_float(std::move(o), w);
  }
  for (size_t l = 0; l < m.layers.size(); ++l) {
    const DecoderLayer& L = m.layers[l];
    const std::string p = "block" + std::to_string(l) + "_";
    float_op(rows, p + "norm1", d, kRmsNorm, d, 8 * d);
    projection(rows, p + "attn_q", L.q, true);
    projection(rows, p + "attn_k", L.k, false);
    projection(rows, p + "attn_v", L.v, false);
    {
      // RoPE on q and k, then per head q . k over T cached keys, softmax, and the weighted sum of T
      // cached values: 2 T d float MACs. Memory: q, k, v read, k and v written into the cache, the
      // cache's T keys and values read, the output written.
      OpMetrics o = float_linear_row(rows, p + "attn", "-", 0, 1, 2 * T, d);
      Work w;
      w.fp32_macs = o.macs;
      add_float(w, kRope, 2 * d);
      add_float(w, kSoftmax, H * T);
      w.activation_bytes = 4 * (3 * d + 2 * d + 2 * T * d + d);
      rows.push_float(std::move(o), w);
    }
    projection(rows, p + "attn_o", L.o, true);
    float_op(rows, p + "add1", 0, {0, 1}, d, 12 * d);
    float_op(rows, p + "norm2", d, kRmsNorm, d, 8 * d);
    projection(rows, p + "mlp_gate", L.gate, true);
    projection(rows, p + "mlp_up", L.up, false);
    float_op(rows, p + "swiglu", 0, kSwiglu, f, 12 * f);
    projection(rows, p + "mlp_down", L.down, true);
    float_op(rows, p + "add2", 0, {0, 1}, d, 12 * d);
  }
  float_op(rows, "norm_f", d, kRmsNorm, d, 8 * d);
  if (m.head_quantized) {
    projection(rows, "head", m.head_q, true);
  } else {
    OpMetrics o = float_linear_row(rows, "head", "f32", 32, 1, d, V);
    rows.float_params(o, V * d);
    o.weight_read_bytes = 4 * V * d;
    Work w;
    w.fp32_macs = o.macs;
    w.activation_bytes = 4 * (d + V);
    rows.push_float(std::move(o), w);
  }
  rows.finish();
  return r;
}

namespace {

// --- encoder -------------------------------------------------------------------------------------

// An encoder linear over `r` rows (tokens). Integer (input on a static grid, quantized weights):
// a x w-bit MACs, then per output s_x * sum_g s_w[o, g] acc[o, g] + bias in float. Otherwise float
// MACs with the dequantized (or float) weights the runtime holds, 4 bytes each. Then GELU and the
// output grid when the layer has them. `writes_codes`: the output codes are stored for an integer
// consumer (fc1 -> fc2).
void encoder_linear(Rows& rows, const std::string& name, const EncoderLinear& l, int64_t r, bool writes_codes) {
  const int64_t in = l.in_features, out = l.out_features, bias = static_cast<int64_t>(l.bias.size());
  const bool integer = l.integer();
  OpMetrics o;
  if (integer) {
    int32_t abits = 1;
    while ((int64_t{1} << abits) <= l.input_grid.qmax) ++abits;
    o = rows.op(name, short_format(l.w), "integer", l.w.bits, abits);
    o.macs = r * in * out;
    o.bops = o.macs * l.w.bits * abits;
  } else {
    o = float_linear_row(rows, name, l.quantized ? short_format(l.w) : "f32", l.quantized ? l.w.bits : 32, r, in, out);
  }
  if (l.quantized) {
    rows.quant_params(o, l.w);
  } else {
    rows.float_params(o, in * out);
  }
  rows.float_params(o, bias);
  o.weight_read_bytes = integer ? o.weight_bytes : 4 * (in * out + bias);
  Work w, f;
  if (integer) {
    w.int_macs = o.macs;
    w.act_bits = o.act_bits;
    w.weight_bits = o.weight_bits;
    add_float(w, {1, 1}, r * out * l.w.groups());  // s_w[o, g] * acc, summed
    w.fp32_mults += r * out;                        // * s_x
    w.activation_bytes = r * in + 4 * r * out;      // input codes read, float output written
  } else {
    w.fp32_macs = o.macs;
    w.activation_bytes = 4 * r * (in + out);
  }
  w.fp32_adds += bias ? r * out : 0;
  f.fp32_macs = o.macs;
  f.fp32_adds = bias ? r * out : 0;
  if (l.gelu) {
    add_float(w, kGelu, r * out);
    add_float(f, kGelu, r * out);
  }
  if (l.has_output_grid) add_float(w, kFakeQuant, r * out);
  if (writes_codes) w.activation_bytes += r * out;
  w.weight_bytes = o.weight_read_bytes;
  o.activation_bytes = w.activation_bytes;
  f.weight_bytes = 4 * o.params;
  f.activation_bytes = 4 * r * (in + out);
  rows.push(std::move(o), w, f);
}

// A residual add over n elements, with its output grid (fake quantization) in the integer model.
void residual_add(Rows& rows, const std::string& name, int64_t n, bool grid) {
  OpMetrics o = rows.op(name, "-", "float", 0, 32);
  Work w, f;
  w.fp32_adds = f.fp32_adds = n;
  if (grid) add_float(w, kFakeQuant, n);
  w.activation_bytes = f.activation_bytes = 12 * n;  // two float inputs read, one written
  o.activation_bytes = w.activation_bytes;
  rows.push(std::move(o), w, f);
}

}  // namespace

ModelMetrics encoder_metrics(const EncoderModel& m, const EnergyTable& t, const std::string& where) {
  validate_encoder_model(m, where);
  ModelMetrics r;
  r.table = t;
  r.file_bytes = static_cast<int64_t>(serialize_encoder_model(m).size());
  r.inference = "one image (" + std::to_string(m.tokens()) + " tokens)";
  Rows rows(r);
  const int64_t N = m.tokens(), d = m.width, H = m.heads, pixels = N * m.patch_features();
  {
    // The image: quantized onto the input grid (codes written once, as for the op graphs) or kept
    // float; the FP32 model writes it as floats.
    OpMetrics o = rows.op("input", "-", "float", 0, 32);
    Work w, f;
    if (m.input_quantized) add_float(w, kFakeQuant, pixels);
    w.activation_bytes = m.input_quantized ? pixels : 4 * pixels;
    f.activation_bytes = 4 * pixels;
    o.activation_bytes = w.activation_bytes;
    rows.push(std::move(o), w, f);
  }
  encoder_linear(rows, "patch_embed", m.patch_embed, N, false);
  float_op(rows, "tokens", N * d, {0, 1}, N * d, 8 * N * d);  // + position
  for (size_t l = 0; l < m.layers.size(); ++l) {
    const EncoderLayer& L = m.layers[l];
    const std::string p = "block" + std::to_string(l) + "_";
    float_op(rows, p + "norm1", 2 * d, kLayerNorm, N * d, 8 * N * d);
    encoder_linear(rows, p + "attn_q", L.q, N, false);
    encoder_linear(rows, p + "attn_k", L.k, N, false);
    encoder_linear(rows, p + "attn_v", L.v, N, false);
    {
      // Every token against every token, per head: N^2 d MACs for the scores and N^2 d for the
      // values; q, k, v read and the output written.
      OpMetrics o = float_linear_row(rows, p + "attn", "-", 0, N, 2 * N, d);
      Work w;
      w.fp32_macs = o.macs;
      add_float(w, kSoftmax, H * N * N);
      w.activation_bytes = 16 * N * d;
      rows.push_float(std::move(o), w);
    }
    encoder_linear(rows, p + "attn_o", L.o, N, false);
    residual_add(rows, p + "add1", N * d, L.has_add1_grid);
    float_op(rows, p + "norm2", 2 * d, kLayerNorm, N * d, 8 * N * d);
    encoder_linear(rows, p + "mlp_fc1", L.fc1, N, L.fc2.integer());
    encoder_linear(rows, p + "mlp_fc2", L.fc2, N, false);
    residual_add(rows, p + "add2", N * d, L.has_add2_grid);
  }
  {
    // Mean over tokens: N d adds and d multiplies.
    OpMetrics o = rows.op("pool", "-", "float", 0, 32);
    Work w;
    w.fp32_adds = N * d;
    w.fp32_mults = d;
    w.activation_bytes = 4 * (N * d + d);
    rows.push_float(std::move(o), w);
  }
  float_op(rows, "norm_f", 2 * d, kLayerNorm, d, 8 * d);
  encoder_linear(rows, "head", m.head, 1, false);
  rows.finish();
  return r;
}

}  // namespace lowbit::runtime
