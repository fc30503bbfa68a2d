#include "convert/integer_simulation.h"

#include <limits>
#include <map>

#include "base/error.h"
#include "quant/add_requantize.h"
#include "quant/input_normalisation.h"
#include "quant/quantize.h"
#include "quant/requantize.h"

namespace lowbit::convert {
namespace {

using runtime::ActQParams;
using runtime::Op;
using runtime::OpKind;

torch::Tensor weight_tensor(const Op& op) {
  const int64_t n = op.weight_count();
  std::vector<double> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[static_cast<size_t>(i)] = op.weight.value(static_cast<size_t>(i));
  torch::Tensor w = torch::from_blob(v.data(), {n}, torch::kFloat64).clone();
  if (op.kind == OpKind::Linear) return w.view({op.out_channels, op.in_channels});
  return w.view({op.out_channels, op.in_channels / op.groups, op.kernel_h, op.kernel_w});
}

// acc (float64 holding exact integers, [N, C, ...]) -> int64 codes via quant::requantize with a
// per-channel multiplier; `channel_multiplier(c, element)` picks it.
template <typename MultiplierOf>
torch::Tensor requantize_tensor(const torch::Tensor& acc_double, const ActQParams& out, MultiplierOf multiplier_of,
                                const std::string& op_name) {
  const torch::Tensor acc = acc_double.contiguous();
  const int64_t n = acc.numel();
  const int64_t channels = acc.size(1);
  const int64_t inner = n / (acc.size(0) * channels);
  torch::Tensor y = torch::empty(acc.sizes(), torch::kInt64);
  const double* a = acc.data_ptr<double>();
  int64_t* yp = y.data_ptr<int64_t>();
  at::parallel_for(0, n, 4096, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const double v = a[i];
      LOWBIT_CHECK(v >= std::numeric_limits<int32_t>::min() && v <= std::numeric_limits<int32_t>::max(),
                   "integer simulation: " + op_name + ": an accumulator overflows int32 (" + std::to_string(v) +
                       "); the runtime cannot represent this layer");
      const int64_t c = (i / inner) % channels;
      yp[i] = quant::requantize(static_cast<int32_t>(v), multiplier_of(c, i), out.zero_point, out.qmin, out.qmax);
    }
  });
  return y;
}

torch::Tensor centred(const torch::Tensor& codes, const ActQParams& q) {
  return (codes - q.zero_point).to(torch::kFloat64);
}

torch::Tensor conv_or_linear_acc(const Op& op, const torch::Tensor& x, const ActQParams& in_q) {
  const torch::Tensor w = weight_tensor(op);
  const torch::Tensor bias = torch::tensor(std::vector<double>(op.bias_q.begin(), op.bias_q.end()), torch::kFloat64);
  if (op.kind == OpKind::Linear) {
    const torch::Tensor xc = centred(x, in_q).reshape({x.size(0), -1});
    return torch::addmm(bias, xc, w.t()).view({x.size(0), op.out_channels, 1, 1});
  }
  return torch::conv2d(centred(x, in_q), w, bias, {op.stride_h, op.stride_w}, {op.pad_h, op.pad_w},
                       {op.dilation_h, op.dilation_w}, op.groups);
}

// Sum of (x - z) over each pooling window and the number of real (non-padding) elements in it.
std::pair<torch::Tensor, torch::Tensor> window_sums(const Op& op, const torch::Tensor& x, const ActQParams& q) {
  const torch::Tensor xc = centred(x, q);
  if (op.kind == OpKind::GlobalAvgPool) {
    const torch::Tensor sum = xc.sum({2, 3}, true);
    return {sum, torch::full_like(sum, static_cast<double>(x.size(2) * x.size(3)))};
  }
  auto sum_pool = [&](const torch::Tensor& t) {
    return torch::avg_pool2d(t, {op.kernel_h, op.kernel_w}, {op.stride_h, op.stride_w}, {op.pad_h, op.pad_w},
                             /*ceil_mode=*/false, /*count_include_pad=*/true, /*divisor_override=*/1);
  };
  return {sum_pool(xc), sum_pool(torch::ones_like(xc))};
}

}  // namespace

IntegerOutputs simulate_integer(const runtime::Model& model, const torch::Tensor& images,
                                std::vector<torch::Tensor>* codes) {
  runtime::validate_model(model, "model");
  torch::NoGradGuard no_grad;
  LOWBIT_CHECK(images.dim() == 4 && images.size(1) == model.in_channels && images.size(2) == model.in_height &&
                   images.size(3) == model.in_width,
               "integer simulation: expected images [N, " + std::to_string(model.in_channels) + ", " +
                   std::to_string(model.in_height) + ", " + std::to_string(model.in_width) + "]");
  // Value 0: the quantized input.
  const torch::Tensor img = images.contiguous().to(torch::kFloat32);
  torch::Tensor input = torch::empty(img.sizes(), torch::kInt64);
  {
    const float* src = img.data_ptr<float>();
    int64_t* dst = input.data_ptr<int64_t>();
    const ActQParams& q = model.input;
    if (model.input_mean.empty()) {
      for (int64_t i = 0; i < img.numel(); ++i) dst[i] = quant::quantize_integer(src[i], q.scale, q.zero_point, q.qmin, q.qmax);
    } else {  // the model's input normalisation first: images come in [0, 1], as to the runtime's Session
      const int64_t channels = img.size(1), plane = img.size(2) * img.size(3);
      for (int64_t i = 0; i < img.numel(); ++i) {
        const size_t c = static_cast<size_t>((i / plane) % channels);
        const float x = quant::normalise_input(src[i], model.input_mean[c], model.input_std[c]);
        dst[i] = quant::quantize_integer(x, q.scale, q.zero_point, q.qmin, q.qmax);
      }
    }
  }
  std::vector<torch::Tensor> values{input};
  std::vector<ActQParams> value_q{model.input};
  IntegerOutputs result;

  for (size_t op_index = 0; op_index < model.ops.size(); ++op_index) {
    const Op& op = model.ops[op_index];
    const std::string op_name = "op " + std::to_string(op_index + 1) + " (" + runtime::op_kind_name(op.kind) + ")";
    const torch::Tensor& x = values.at(static_cast<size_t>(op.inputs.at(0)));
    const ActQParams& in_q = value_q.at(static_cast<size_t>(op.inputs.at(0)));
    torch::Tensor y;
    switch (op.kind) {
      case OpKind::Conv2d:
      case OpKind::Linear: {
        const torch::Tensor acc = conv_or_linear_acc(op, x, in_q);
        if (op.output_layer) {
          result.int_logits = acc.reshape({acc.size(0), -1}).to(torch::kInt64);
          const torch::Tensor scale = torch::tensor(op.out_scale, torch::kFloat32);
          // (float)acc * out_scale in float32, exactly as the runtime computes it
          result.logits = result.int_logits.to(torch::kFloat32) * scale.view({1, -1});
          y = result.int_logits;
        } else {
          y = requantize_tensor(acc, op.out, [&](int64_t c, int64_t) { return op.multipliers[static_cast<size_t>(c)]; }, op_name);
        }
        break;
      }
      case OpKind::MaxPool2d:
        y = torch::max_pool2d(x.to(torch::kFloat64), {op.kernel_h, op.kernel_w}, {op.stride_h, op.stride_w},
                              {op.pad_h, op.pad_w})
                .to(torch::kInt64);
        break;
      case OpKind::AvgPool2d:
      case OpKind::GlobalAvgPool: {
        auto [sum, count] = window_sums(op, x, in_q);
        const torch::Tensor cnt = count.contiguous();
        const double* cp = cnt.data_ptr<double>();
        std::map<int64_t, quant::FixedPointMultiplier> by_count;
        for (int64_t i = 0; i < cnt.numel(); ++i) {
          const int64_t c = static_cast<int64_t>(cp[i]);
          if (!by_count.count(c))
            by_count[c] = quant::make_fixed_point_multiplier(double(in_q.scale) / (double(op.out.scale) * c));
        }
        y = requantize_tensor(sum, op.out,
                              [&](int64_t, int64_t i) { return by_count.at(static_cast<int64_t>(cp[i])); }, op_name);
        break;
      }
      case OpKind::Add: {
        const torch::Tensor& b = values.at(static_cast<size_t>(op.inputs.at(1)));
        const ActQParams& qb = value_q.at(static_cast<size_t>(op.inputs.at(1)));
        const quant::AddMultipliers m =
            quant::make_add_multipliers(double(in_q.scale) / op.out.scale, double(qb.scale) / op.out.scale);
        const torch::Tensor a = (x - in_q.zero_point).contiguous();
        const torch::Tensor bc = (b - qb.zero_point).contiguous();
        y = torch::empty(a.sizes(), torch::kInt64);
        const int64_t* ap = a.data_ptr<int64_t>();
        const int64_t* bp = bc.data_ptr<int64_t>();
        int64_t* yp = y.data_ptr<int64_t>();
        for (int64_t i = 0; i < a.numel(); ++i)
          yp[i] = quant::requantize_add(static_cast<int32_t>(ap[i]), static_cast<int32_t>(bp[i]), m, op.out.zero_point,
                                        op.out.qmin, op.out.qmax);
        break;
      }
      case OpKind::Flatten:
        y = x.reshape({x.size(0), -1, 1, 1});
        break;
      case OpKind::Concat: {
        std::vector<torch::Tensor> parts;
        for (size_t k = 0; k < op.inputs.size(); ++k) {
          const torch::Tensor table = torch::tensor(
              std::vector<int64_t>(op.table.begin() + 256 * k, op.table.begin() + 256 * (k + 1)), torch::kInt64);
          const torch::Tensor& part = values[static_cast<size_t>(op.inputs[k])];
          parts.push_back(table.index({part.reshape({-1})}).view(part.sizes()));
        }
        y = torch::cat(parts, 1);
        break;
      }
      case OpKind::Lookup: {
        const torch::Tensor table = torch::tensor(std::vector<int64_t>(op.table.begin(), op.table.end()), torch::kInt64);
        y = table.index({x.reshape({-1})}).view(x.sizes());
        break;
      }
    }
    values.push_back(y);
    value_q.push_back(op.out);
  }
  LOWBIT_CHECK(result.logits.defined(), "integer simulation: the model has no output layer");
  result.predictions = result.logits.argmax(1);  // first maximum: ties go to the lowest index
  if (codes) *codes = std::move(values);
  return result;
}

}  // namespace lowbit::convert
