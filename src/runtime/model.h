// The in-memory integer model: what the LibTorch-side converter fills and what a .lbq file holds.
//
// A model is a graph over numbered values. Value 0 is the quantized input image (uint8 codes,
// shape [C, H, W] per item, qparams `Model::input`); op i produces value i + 1 and lists the values
// it reads in `Op::inputs` (each < i + 1). Every value except an output layer's is a uint8 tensor
// with per-tensor (scale, zero_point) and a clamp range [qmin, qmax] (ReLU / ReLU6 fused as a
// narrower clamp range). The last op must be an output layer (Conv2d/Linear with
// output_layer = true): its int32 accumulators are the integer logits.
//
// Arithmetic of every op is written down in docs/runtime.md; the scalar reference kernels in
// runtime/kernels/ref_kernels.h are its executable specification.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "quant/add_requantize.h"
#include "quant/quant_spec.h"
#include "quant/requantize.h"

namespace lowbit::runtime {

// Numeric values are part of the file format: never renumber.
enum class OpKind : uint32_t {
  Conv2d = 1,         // inputs {x}; weight [O, C/groups, KH, KW]
  Linear = 2,         // inputs {x} with H = W = 1; weight [O, I]
  MaxPool2d = 3,      // inputs {x}; output qparams equal the input's
  AvgPool2d = 4,      // inputs {x}; count excludes padding
  GlobalAvgPool = 5,  // inputs {x}; output [C, 1, 1]
  Add = 6,            // inputs {a, b} of equal shape
  Flatten = 7,        // inputs {x}; [C, H, W] -> [C*H*W, 1, 1] in C-major (PyTorch) order
  Lookup = 8,         // inputs {x}; y = table[x] element-wise (sigmoid, LeakyReLU, ...: quant/pointwise_function.h)
  Concat = 9,         // inputs {x0, x1, ...} (2..kMaxConcatInputs) of equal H, W; output channels in input order,
                      // each input requantized to the output's grid (quant::requantize_concat_code)
};
constexpr size_t kMaxConcatInputs = 64;
const char* op_kind_name(OpKind k);

// Quantization of one uint8 activation tensor: real = scale * (q - zero_point), q in [qmin, qmax].
struct ActQParams {
  float scale = 1.0f;
  int32_t zero_point = 0;
  int32_t qmin = 0;    // for an op's output: act_min (ReLU fused: max(qmin, zero_point))
  int32_t qmax = 255;  // for an op's output: act_max
  bool operator==(const ActQParams& o) const {
    return scale == o.scale && zero_point == o.zero_point && qmin == o.qmin && qmax == o.qmax;
  }
};

// Signed weight codes packed with quant::pack_codes (b-bit two's complement, little end first),
// in PyTorch order ([O, C/groups, KH, KW] or [O, I]). Value of a code c: Integer grid c, Odd grid
// 2c + 1. int8: bits 8 Integer; int4: 4 Integer; ternary: 2 Integer with codes {-1,0,1};
// binary: 1 Odd ({-1,+1}); SEQ 2-bit: 2 Odd ({-3,-1,1,3}).
struct WeightTensor {
  int32_t bits = 8;
  quant::Grid grid = quant::Grid::Integer;
  std::vector<uint8_t> packed;
  // Value of element i (unpacks one code; for reference kernels and tools, not hot loops).
  int32_t value(size_t i) const;
};

struct Op {
  OpKind kind = OpKind::Conv2d;
  std::vector<int32_t> inputs;

  // Conv2d and pools (MaxPool2d, AvgPool2d): window geometry.
  int32_t kernel_h = 1, kernel_w = 1;
  int32_t stride_h = 1, stride_w = 1;
  int32_t pad_h = 0, pad_w = 0;
  int32_t groups = 1;  // Conv2d only; depthwise: groups = in_channels = out_channels
  // Conv2d only: tap (kh, kw) reads input row oh * stride_h - pad_h + kh * dilation_h (and the same
  // for columns). Files of format version 1 have no such field: 1.
  int32_t dilation_h = 1, dilation_w = 1;

  // Conv2d and Linear.
  int32_t in_channels = 0;   // Linear: in_features
  int32_t out_channels = 0;  // Linear: out_features
  WeightTensor weight;
  std::vector<int32_t> bias_q;  // [O]: round_half_even(bias / (s_x * s_w[o])), clamped to int32
  // Hidden layer: M[o] = make_fixed_point_multiplier(s_x * s_w[o] / s_y), one per output channel.
  std::vector<quant::FixedPointMultiplier> multipliers;
  // Output layer: no requantization; float logit = (float)acc[o] * out_scale[o], out_scale = s_x * s_w[o].
  bool output_layer = false;
  std::vector<float> out_scale;

  // Lookup: 256 output codes, indexed by the input code; each within [out.qmin, out.qmax].
  std::vector<uint8_t> table;

  // Output activation quantization (all ops except an output layer). For MaxPool2d and Flatten
  // it must equal the input's.
  ActQParams out;

  // Number of weight elements (O * C/groups * KH * KW, or O * I); 0 for ops without weights.
  int64_t weight_count() const;
  bool has_weights() const { return kind == OpKind::Conv2d || kind == OpKind::Linear; }
};

struct Model {
  int32_t in_channels = 1, in_height = 1, in_width = 1;
  ActQParams input;  // quantization of the float input: q = quantize_integer(x, scale, zp, qmin, qmax)
  // Per-channel normalisation of the float input before it is quantized, as training applied it:
  // x' = (x - input_mean[c]) / input_std[c] in float32. Both empty (no normalisation) or both of
  // size in_channels. Files of format version 1 have none.
  std::vector<float> input_mean, input_std;
  std::vector<Op> ops;
  std::string name;  // free text, e.g. "reference CNN W8A8"

  // Appends an op and returns the number of the value it produces.
  int32_t add(Op op) {
    ops.push_back(std::move(op));
    return static_cast<int32_t>(ops.size());
  }
};

// Per-item shape of a value ([C, H, W]); the output layer's value holds int32.
struct ValueShape {
  int32_t c = 0, h = 0, w = 0;
  int64_t size() const { return int64_t{c} * h * w; }
  bool operator==(const ValueShape& o) const { return c == o.c && h == o.h && w == o.w; }
};

// Checks every field, count, range, input index and shape; throws lowbit::Error naming
// `where` (a file name or "model"), the op index and what is wrong. Returns shapes of all values.
std::vector<ValueShape> validate_model(const Model& m, const std::string& where = "model");

// What one item (one input image) may cost a Session, checked before anything is allocated: a
// valid model file of a few hundred bytes can otherwise ask for gigabytes of activations (an
// input of 1 x 16384 x 16384) or hours of arithmetic. Defaults suit models up to ImageNet scale;
// raise them with the environment variables below or SessionOptions.
struct ResourceLimits {
  int64_t max_activation_bytes = int64_t{256} << 20;  // per item: all values + int32 logits + conv scratch
  int64_t max_macs = int64_t{64} << 30;               // per item: conv / linear multiply-accumulates
};
// Defaults, overridden by LOWBIT_MAX_ACTIVATION_MB and LOWBIT_MAX_GMACS (whole numbers >= 1;
// anything else throws naming the variable).
ResourceLimits default_resource_limits();
// Bytes of activations one item needs while the model runs (values, logits, the largest padded
// convolution input widened to int16) and its multiply-accumulates.
int64_t activation_bytes_per_item(const Model& m, const std::vector<ValueShape>& shapes);
int64_t macs_per_item(const Model& m, const std::vector<ValueShape>& shapes);
// Throws lowbit::Error naming `where`, the limit, the model's need and how to raise the limit.
void check_resource_limits(const Model& m, const std::vector<ValueShape>& shapes, const ResourceLimits& limits,
                           const std::string& where);

// ---- Builder helpers for the converter (fill the returned Op's tensors, then Model::add) ----
Op make_conv2d(int32_t input, int32_t in_channels, int32_t out_channels, int32_t kernel, int32_t stride,
               int32_t pad, int32_t groups = 1, int32_t dilation = 1);
Op make_linear(int32_t input, int32_t in_features, int32_t out_features);
Op make_max_pool(int32_t input, int32_t kernel, int32_t stride, int32_t pad = 0);
Op make_avg_pool(int32_t input, int32_t kernel, int32_t stride, int32_t pad = 0);
Op make_global_avg_pool(int32_t input);
Op make_add(int32_t a, int32_t b);
Op make_concat(const std::vector<int32_t>& inputs);
Op make_flatten(int32_t input);
Op make_lookup(int32_t input, const std::vector<uint8_t>& table);

// Packs weight values (Integer: codes; Odd: odd values 2c+1) into `w` with quant::pack_codes.
void set_weight_values(WeightTensor& w, int32_t bits, quant::Grid grid, const std::vector<int32_t>& values);
// Hidden layer quantization from float scales (the converter's formulas, documented above).
void set_requantization(Op& op, float s_x, const std::vector<float>& s_w, const std::vector<float>& bias,
                        ActQParams out);
// Output layer from float scales.
void set_output_layer(Op& op, float s_x, const std::vector<float>& s_w, const std::vector<float>& bias);

}  // namespace lowbit::runtime
