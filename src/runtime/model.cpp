#include "runtime/model.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "base/error.h"
#include "quant/bias_quantize.h"
#include "quant/bit_packing.h"
#include "quant/quantize.h"
#include "quant/rounding.h"
#include "runtime/weight_format.h"

namespace lowbit::runtime {

const char* op_kind_name(OpKind k) {
  switch (k) {
    case OpKind::Conv2d: return "conv2d";
    case OpKind::Linear: return "linear";
    case OpKind::MaxPool2d: return "maxpool2d";
    case OpKind::AvgPool2d: return "avgpool2d";
    case OpKind::GlobalAvgPool: return "global_avgpool";
    case OpKind::Add: return "add";
    case OpKind::Flatten: return "flatten";
    case OpKind::Lookup: return "lookup";
    case OpKind::Concat: return "concat";
  }
  return "unknown";
}

int32_t WeightTensor::value(size_t i) const {
  const size_t per_byte = 8 / static_cast<size_t>(bits);
  const int32_t c = quant::sign_extend(packed[i / per_byte] >> ((i % per_byte) * bits), bits);
  return grid == quant::Grid::Odd ? 2 * c + 1 : c;
}

int64_t Op::weight_count() const {
  if (kind == OpKind::Conv2d)
    return groups > 0 ? int64_t{out_channels} * (in_channels / groups) * kernel_h * kernel_w : 0;
  if (kind == OpKind::Linear) return int64_t{out_channels} * in_channels;
  return 0;
}

namespace {

constexpr int32_t kMaxDim = 1 << 16;           // channels, features, height, width
constexpr int64_t kMaxValueSize = int64_t{1} << 28;  // elements of one value per item

struct Checker {
  const std::string& where;
  std::string ctx;
  void operator()(bool ok, const std::string& what) const {
    if (!ok) throw Error(where + ": " + ctx + what);
  }
};

void check_act(const Checker& check, const ActQParams& q, const std::string& name) {
  check(std::isfinite(q.scale) && q.scale > 0.0f,
        name + " scale " + std::to_string(q.scale) + " must be finite and > 0");
  check(q.qmin >= 0 && q.qmin <= q.qmax && q.qmax <= 255,
        name + " range [" + std::to_string(q.qmin) + ", " + std::to_string(q.qmax) +
            "] must satisfy 0 <= qmin <= qmax <= 255 (uint8 activations)");
  check(q.zero_point >= 0 && q.zero_point <= 255,
        name + " zero point " + std::to_string(q.zero_point) + " must be in [0, 255]");
}

int32_t window_out(int32_t in, int32_t k, int32_t s, int32_t p) { return (in + 2 * p - k) / s + 1; }

// The rows (columns) a window of `k` taps `d` apart spans: d * (k - 1) + 1.
int32_t dilated_extent(int32_t k, int32_t d) { return d * (k - 1) + 1; }

void check_window(const Checker& check, const Op& op, const ValueShape& in) {
  check(op.kernel_h >= 1 && op.kernel_w >= 1 && op.kernel_h <= 255 && op.kernel_w <= 255,
        "kernel " + std::to_string(op.kernel_h) + "x" + std::to_string(op.kernel_w) + " must be in 1..255");
  check(op.stride_h >= 1 && op.stride_w >= 1 && op.stride_h <= 255 && op.stride_w <= 255,
        "stride " + std::to_string(op.stride_h) + "x" + std::to_string(op.stride_w) + " must be in 1..255");
  check(op.dilation_h >= 1 && op.dilation_w >= 1 && op.dilation_h <= 255 && op.dilation_w <= 255,
        "dilation " + std::to_string(op.dilation_h) + "x" + std::to_string(op.dilation_w) + " must be in 1..255");
  check(op.kind == OpKind::Conv2d || (op.dilation_h == 1 && op.dilation_w == 1),
        "dilation " + std::to_string(op.dilation_h) + "x" + std::to_string(op.dilation_w) + " is for conv2d only");
  const int32_t eh = dilated_extent(op.kernel_h, op.dilation_h), ew = dilated_extent(op.kernel_w, op.dilation_w);
  check(op.pad_h >= 0 && op.pad_w >= 0 && op.pad_h < eh && op.pad_w < ew,
        "padding " + std::to_string(op.pad_h) + "x" + std::to_string(op.pad_w) + " must be >= 0 and < the (dilated) kernel " +
            std::to_string(eh) + "x" + std::to_string(ew));
  check(in.h + 2 * op.pad_h >= eh && in.w + 2 * op.pad_w >= ew,
        "kernel " + std::to_string(eh) + "x" + std::to_string(ew) + " is larger than the padded input " +
            std::to_string(in.h + 2 * op.pad_h) + "x" + std::to_string(in.w + 2 * op.pad_w));
}

void check_weights(const Checker& check, const Op& op) {
  const WeightTensor& w = op.weight;
  const bool odd = w.grid == quant::Grid::Odd;
  check(w.grid == quant::Grid::Integer || odd, "weight grid " + std::to_string(static_cast<int>(w.grid)) + " is unknown");
  const WeightFormat* format = find_weight_format(w.bits, w.grid);
  check(format != nullptr && format->runtime_kernels, "weight bits " + std::to_string(w.bits) + " with the " +
                                                          (odd ? "Odd" : "Integer") + " grid must be " +
                                                          weight_bits_list(w.grid));
  const int64_t n = op.weight_count();
  check(static_cast<int64_t>(w.packed.size()) == static_cast<int64_t>(quant::packed_size(static_cast<size_t>(n), w.bits)),
        "weight holds " + std::to_string(w.packed.size()) + " bytes, expected " +
            std::to_string(quant::packed_size(static_cast<size_t>(n), w.bits)) + " for " + std::to_string(n) +
            " codes of " + std::to_string(w.bits) + " bits");
  const size_t O = static_cast<size_t>(op.out_channels);
  check(op.bias_q.size() == O, "bias has " + std::to_string(op.bias_q.size()) + " entries, expected " + std::to_string(O));
  if (op.output_layer) {
    check(op.out_scale.size() == O, "output layer has " + std::to_string(op.out_scale.size()) +
                                        " out_scale entries, expected " + std::to_string(O));
    for (size_t o = 0; o < O; ++o)
      check(std::isfinite(op.out_scale[o]), "out_scale[" + std::to_string(o) + "] is not finite");
    check(op.multipliers.empty(), "output layer must not have requantization multipliers");
  } else {
    check(op.multipliers.size() == O, "has " + std::to_string(op.multipliers.size()) +
                                          " requantization multipliers, expected " + std::to_string(O));
    for (size_t o = 0; o < O; ++o) {
      const auto& m = op.multipliers[o];
      check(m.shift >= 0 && m.shift <= 62 && m.multiplier >= 0,
            "multiplier[" + std::to_string(o) + "] = (" + std::to_string(m.multiplier) + ", shift " +
                std::to_string(m.shift) + ") is invalid: need multiplier >= 0 and shift in 0..62");
    }
    check(op.out_scale.empty(), "hidden layer must not have out_scale (set output_layer for the last layer)");
  }
}

}  // namespace

std::vector<ValueShape> validate_model(const Model& m, const std::string& where) {
  Checker check{where, ""};
  check(m.in_channels >= 1 && m.in_channels <= kMaxDim && m.in_height >= 1 && m.in_height <= kMaxDim &&
            m.in_width >= 1 && m.in_width <= kMaxDim,
        "input shape [" + std::to_string(m.in_channels) + ", " + std::to_string(m.in_height) + ", " +
            std::to_string(m.in_width) + "] must have every dimension in 1.." + std::to_string(kMaxDim));
  std::vector<ValueShape> shapes{{m.in_channels, m.in_height, m.in_width}};
  check(shapes[0].size() <= kMaxValueSize, "input is too large");
  check_act(check, m.input, "input");
  check(m.input_mean.size() == m.input_std.size() &&
            (m.input_mean.empty() || m.input_mean.size() == static_cast<size_t>(m.in_channels)),
        "input normalisation has " + std::to_string(m.input_mean.size()) + " means and " +
            std::to_string(m.input_std.size()) + " standard deviations; expected none or one per input channel (" +
            std::to_string(m.in_channels) + ")");
  for (size_t c = 0; c < m.input_mean.size(); ++c)
    check(std::isfinite(m.input_mean[c]) && std::isfinite(m.input_std[c]) && m.input_std[c] > 0.0f,
          "input normalisation of channel " + std::to_string(c) + " (mean " + std::to_string(m.input_mean[c]) +
              ", std " + std::to_string(m.input_std[c]) + ") must be finite with std > 0");
  check(!m.ops.empty(), "model has no ops");
  std::vector<const ActQParams*> qp{&m.input};
  for (size_t i = 0; i < m.ops.size(); ++i) {
    const Op& op = m.ops[i];
    check.ctx = "op " + std::to_string(i) + " (" + op_kind_name(op.kind) + "): ";
    check(op.kind >= OpKind::Conv2d && op.kind <= OpKind::Concat,
          "op kind " + std::to_string(static_cast<uint32_t>(op.kind)) + " is unknown");
    if (op.kind == OpKind::Concat) {
      check(op.inputs.size() >= 2 && op.inputs.size() <= kMaxConcatInputs,
            "reads " + std::to_string(op.inputs.size()) + " values, expected 2.." + std::to_string(kMaxConcatInputs));
    } else {
      const size_t want_inputs = op.kind == OpKind::Add ? 2 : 1;
      check(op.inputs.size() == want_inputs, "reads " + std::to_string(op.inputs.size()) + " values, expected " +
                                                 std::to_string(want_inputs));
    }
    for (int32_t v : op.inputs) {
      check(v >= 0 && static_cast<size_t>(v) <= i, "input value " + std::to_string(v) + " is not produced before this op (op i may read values 0.." + std::to_string(i) + ")");
      check(v == 0 || !m.ops[v - 1].output_layer, "reads the int32 output of output layer op " + std::to_string(v - 1));
    }
    check(op.output_layer == (i + 1 == m.ops.size()) || !op.output_layer,
          "only the last op may be an output layer");
    check(op.kind == OpKind::Lookup || op.kind == OpKind::Concat || op.table.empty(), "only a lookup or concat op has a table");
    check(op.kind == OpKind::Conv2d || (op.dilation_h == 1 && op.dilation_w == 1),
          "dilation " + std::to_string(op.dilation_h) + "x" + std::to_string(op.dilation_w) + " is for conv2d only");
    const ValueShape in = shapes[op.inputs[0]];
    const ActQParams& in_q = *qp[op.inputs[0]];
    ValueShape out;
    if (op.has_weights()) {
      check(op.in_channels >= 1 && op.in_channels <= kMaxDim && op.out_channels >= 1 && op.out_channels <= kMaxDim,
            "channels " + std::to_string(op.in_channels) + " -> " + std::to_string(op.out_channels) + " must be in 1.." +
                std::to_string(kMaxDim));
      check(op.in_channels == in.c, "expects " + std::to_string(op.in_channels) + " input channels but its input value " +
                                       std::to_string(op.inputs[0]) + " has " + std::to_string(in.c));
      if (op.kind == OpKind::Conv2d) {
        check(op.groups >= 1 && op.in_channels % op.groups == 0 && op.out_channels % op.groups == 0,
              "groups " + std::to_string(op.groups) + " must divide in_channels " + std::to_string(op.in_channels) +
                  " and out_channels " + std::to_string(op.out_channels));
        check_window(check, op, in);
        check(int64_t{op.in_channels / op.groups} * op.kernel_h * op.kernel_w <= (1 << 20), "reduction length is too large");
        out = {op.out_channels, window_out(in.h, dilated_extent(op.kernel_h, op.dilation_h), op.stride_h, op.pad_h),
               window_out(in.w, dilated_extent(op.kernel_w, op.dilation_w), op.stride_w, op.pad_w)};
      } else {
        check(in.h == 1 && in.w == 1, "input has spatial size " + std::to_string(in.h) + "x" + std::to_string(in.w) +
                                          "; insert a flatten op before a linear op");
        out = {op.out_channels, 1, 1};
      }
      check_weights(check, op);
    } else {
      check(!op.output_layer, "only conv2d or linear can be an output layer");
      switch (op.kind) {
        case OpKind::MaxPool2d:
        case OpKind::AvgPool2d:
          check_window(check, op, in);
          out = {in.c, window_out(in.h, op.kernel_h, op.stride_h, op.pad_h), window_out(in.w, op.kernel_w, op.stride_w, op.pad_w)};
          break;
        case OpKind::GlobalAvgPool: out = {in.c, 1, 1}; break;
        case OpKind::Flatten: out = {static_cast<int32_t>(in.size()), 1, 1}; break;
        case OpKind::Add:
          check(shapes[op.inputs[1]] == in, "inputs have different shapes");
          break;
        case OpKind::Concat: {
          out = in;
          out.c = 0;
          for (size_t k = 0; k < op.inputs.size(); ++k) {
            const ValueShape s = shapes[op.inputs[k]];
            check(s.h == in.h && s.w == in.w, "input " + std::to_string(k) + " is " + std::to_string(s.h) + "x" +
                                                   std::to_string(s.w) + ", input 0 is " + std::to_string(in.h) + "x" +
                                                   std::to_string(in.w) + ": concatenated values need equal H and W");
            out.c += s.c;
            check(out.c <= kMaxDim, "output has more than " + std::to_string(kMaxDim) + " channels");
          }
          check(op.table.size() == 256 * op.inputs.size(), "table has " + std::to_string(op.table.size()) +
                                                                " entries, expected 256 per input (" +
                                                                std::to_string(256 * op.inputs.size()) + ")");
          for (size_t q = 0; q < op.table.size(); ++q)
            check(op.table[q] >= op.out.qmin && op.table[q] <= op.out.qmax,
                  "table[" + std::to_string(q) + "] = " + std::to_string(op.table[q]) + " is outside the output range [" +
                      std::to_string(op.out.qmin) + ", " + std::to_string(op.out.qmax) + "]");
          break;
        }
        case OpKind::Lookup:
          check(op.table.size() == 256, "table has " + std::to_string(op.table.size()) + " entries, expected 256");
          for (size_t q = 0; q < op.table.size(); ++q)
            check(op.table[q] >= op.out.qmin && op.table[q] <= op.out.qmax,
                  "table[" + std::to_string(q) + "] = " + std::to_string(op.table[q]) + " is outside the output range [" +
                      std::to_string(op.out.qmin) + ", " + std::to_string(op.out.qmax) + "]");
          break;
        default: break;
      }
      if (op.kind == OpKind::Add || op.kind == OpKind::Lookup) out = in;
    }
    check(out.size() >= 1 && out.size() <= kMaxValueSize && out.c <= kMaxValueSize, "output is too large or empty");
    if (!op.output_layer) {
      check_act(check, op.out, "output");
      if (op.kind == OpKind::MaxPool2d || op.kind == OpKind::Flatten)
        check(op.out.scale == in_q.scale && op.out.zero_point == in_q.zero_point,
              "output scale/zero point must equal the input's (" + std::to_string(in_q.scale) + ", " +
                  std::to_string(in_q.zero_point) + ")");
      // Multipliers computed at load time must be representable: check them here.
      try {
        if (op.kind == OpKind::AvgPool2d || op.kind == OpKind::GlobalAvgPool) {
          const double count = op.kind == OpKind::GlobalAvgPool ? double(in.h) * in.w : double(op.kernel_h) * op.kernel_w;
          quant::make_fixed_point_multiplier(double(in_q.scale) / (double(op.out.scale) * count));
          quant::make_fixed_point_multiplier(double(in_q.scale) / double(op.out.scale));
        } else if (op.kind == OpKind::Add) {
          quant::make_add_multipliers(double(in_q.scale) / op.out.scale, double(qp[op.inputs[1]]->scale) / op.out.scale);
        }
      } catch (const Error& e) {
        check(false, e.what());
      }
    }
    check(i + 1 < m.ops.size() || op.output_layer, "the last op must be a conv2d or linear output layer (output_layer = true)");
    shapes.push_back(out);
    qp.push_back(&op.out);
  }
  return shapes;
}

int64_t activation_bytes_per_item(const Model& m, const std::vector<ValueShape>& shapes) {
  int64_t bytes = 0, padded = 0;
  for (size_t v = 0; v + 1 < shapes.size(); ++v) bytes += shapes[v].size();  // uint8 values
  bytes += 4 * shapes.back().size();                                          // int32 logits
  for (const Op& op : m.ops)
    if (op.kind == OpKind::Conv2d) {
      const ValueShape in = shapes[op.inputs[0]];
      padded = std::max(padded, 2 * (int64_t{in.h} + 2 * op.pad_h) * (int64_t{in.w} + 2 * op.pad_w) * in.c);
    }
  return bytes + padded;
}

int64_t macs_per_item(const Model& m, const std::vector<ValueShape>& shapes) {
  int64_t macs = 0;
  for (size_t i = 0; i < m.ops.size(); ++i)
    if (m.ops[i].has_weights()) macs += m.ops[i].weight_count() * shapes[i + 1].h * shapes[i + 1].w;
  return macs;
}

namespace {

int64_t limit_from_env(const char* name, int64_t fallback, int64_t unit) {
  const char* env = std::getenv(name);
  if (env == nullptr || *env == '\0') return fallback;
  char* end = nullptr;
  const long long v = std::strtoll(env, &end, 10);
  LOWBIT_CHECK(end != env && *end == '\0' && v >= 1 && v <= (int64_t{1} << 32),
               std::string(name) + "='" + env + "' is not a whole number >= 1");
  return static_cast<int64_t>(v) * unit;
}

std::string in_units(int64_t v, int64_t unit, const char* name) {
  char text[64];
  std::snprintf(text, sizeof text, "%.1f %s", static_cast<double>(v) / static_cast<double>(unit), name);
  return text;
}

}  // namespace

ResourceLimits default_resource_limits() {
  ResourceLimits l;
  l.max_activation_bytes = limit_from_env("LOWBIT_MAX_ACTIVATION_MB", l.max_activation_bytes, int64_t{1} << 20);
  l.max_macs = limit_from_env("LOWBIT_MAX_GMACS", l.max_macs, int64_t{1} << 30);
  return l;
}

void check_resource_limits(const Model& m, const std::vector<ValueShape>& shapes, const ResourceLimits& limits,
                           const std::string& where) {
  const int64_t bytes = activation_bytes_per_item(m, shapes), macs = macs_per_item(m, shapes);
  LOWBIT_CHECK(bytes <= limits.max_activation_bytes,
               where + ": the model needs " + in_units(bytes, int64_t{1} << 20, "MiB") +
                   " of activations per item (input [" + std::to_string(m.in_channels) + ", " +
                   std::to_string(m.in_height) + ", " + std::to_string(m.in_width) + "]), more than the limit of " +
                   in_units(limits.max_activation_bytes, int64_t{1} << 20, "MiB") +
                   "; if the model is meant to be this large, raise the limit with LOWBIT_MAX_ACTIVATION_MB=<MiB> "
                   "(C++: SessionOptions::limits.max_activation_bytes)");
  LOWBIT_CHECK(macs <= limits.max_macs,
               where + ": the model needs " + in_units(macs, int64_t{1} << 30, "G") +
                   " multiply-accumulates per item, more than the limit of " + in_units(limits.max_macs, int64_t{1} << 30, "G") +
                   "; if the model is meant to be this large, raise the limit with LOWBIT_MAX_GMACS=<G> "
                   "(C++: SessionOptions::limits.max_macs)");
}

Op make_conv2d(int32_t input, int32_t in_channels, int32_t out_channels, int32_t kernel, int32_t stride, int32_t pad,
               int32_t groups, int32_t dilation) {
  Op op;
  op.kind = OpKind::Conv2d;
  op.dilation_h = op.dilation_w = dilation;
  op.inputs = {input};
  op.in_channels = in_channels;
  op.out_channels = out_channels;
  op.kernel_h = op.kernel_w = kernel;
  op.stride_h = op.stride_w = stride;
  op.pad_h = op.pad_w = pad;
  op.groups = groups;
  return op;
}

Op make_linear(int32_t input, int32_t in_features, int32_t out_features) {
  Op op;
  op.kind = OpKind::Linear;
  op.inputs = {input};
  op.in_channels = in_features;
  op.out_channels = out_features;
  return op;
}

static Op make_window(OpKind kind, int32_t input, int32_t kernel, int32_t stride, int32_t pad) {
  Op op;
  op.kind = kind;
  op.inputs = {input};
  op.kernel_h = op.kernel_w = kernel;
  op.stride_h = op.stride_w = stride;
  op.pad_h = op.pad_w = pad;
  return op;
}

Op make_max_pool(int32_t input, int32_t kernel, int32_t stride, int32_t pad) {
  return make_window(OpKind::MaxPool2d, input, kernel, stride, pad);
}
Op make_avg_pool(int32_t input, int32_t kernel, int32_t stride, int32_t pad) {
  return make_window(OpKind::AvgPool2d, input, kernel, stride, pad);
}
Op make_global_avg_pool(int32_t input) { return make_window(OpKind::GlobalAvgPool, input, 1, 1, 0); }
Op make_add(int32_t a, int32_t b) {
  Op op;
  op.kind = OpKind::Add;
  op.inputs = {a, b};
  return op;
}
Op make_concat(const std::vector<int32_t>& inputs) {
  Op op;
  op.kind = OpKind::Concat;
  op.inputs = inputs;
  return op;
}
Op make_flatten(int32_t input) { return make_window(OpKind::Flatten, input, 1, 1, 0); }
Op make_lookup(int32_t input, const std::vector<uint8_t>& table) {
  Op op = make_window(OpKind::Lookup, input, 1, 1, 0);
  op.table = table;
  return op;
}

void set_weight_values(WeightTensor& w, int32_t bits, quant::Grid grid, const std::vector<int32_t>& values) {
  std::vector<int8_t> codes(values.size());
  for (size_t i = 0; i < values.size(); ++i) {
    const int32_t v = values[i];
    if (grid == quant::Grid::Odd) {
      LOWBIT_CHECK(v % 2 != 0, "weight value " + std::to_string(v) + " at index " + std::to_string(i) + " is not odd (Odd grid)");
      codes[i] = static_cast<int8_t>(quant::odd_code_of(v));
    } else {
      LOWBIT_CHECK(v >= -128 && v <= 127, "weight value " + std::to_string(v) + " does not fit in int8");
      codes[i] = static_cast<int8_t>(v);
    }
  }
  w.bits = bits;
  w.grid = grid;
  w.packed = quant::pack_codes(codes, bits);
}

static std::vector<int32_t> quantize_bias(float s_x, const std::vector<float>& s_w, const std::vector<float>& bias) {
  std::vector<int32_t> q(s_w.size(), 0);
  for (size_t o = 0; o < s_w.size(); ++o) q[o] = quant::quantize_bias(o < bias.size() ? bias[o] : 0.0f, s_x, s_w[o]);
  return q;
}

void set_requantization(Op& op, float s_x, const std::vector<float>& s_w, const std::vector<float>& bias, ActQParams out) {
  op.output_layer = false;
  op.out = out;
  op.bias_q = quantize_bias(s_x, s_w, bias);
  op.multipliers.clear();
  for (float sw : s_w) op.multipliers.push_back(quant::make_fixed_point_multiplier(double(s_x) * sw / out.scale));
  op.out_scale.clear();
}

void set_output_layer(Op& op, float s_x, const std::vector<float>& s_w, const std::vector<float>& bias) {
  op.output_layer = true;
  op.bias_q = quantize_bias(s_x, s_w, bias);
  op.multipliers.clear();
  op.out_scale.clear();
  for (float sw : s_w) op.out_scale.push_back(s_x * sw);
}

}  // namespace lowbit::runtime
