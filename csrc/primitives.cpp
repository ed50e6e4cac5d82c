// Copyright © 2026 mlx-qmm contributors.
//
// The transforms of our primitives (jvp, vjp, vmap) and their bookkeeping.
// Evaluation lives with the backends: cpu/qmm_affine.cpp, cpu/dense_matmul.cpp
// and gpu_eval.cpp.

#include "csrc/primitives.h"

#include <algorithm>
#include <functional>
#include <numeric>
#include <sstream>
#include <stdexcept>

#include "csrc/ops.h"
#include "csrc/quantized_format.h"
#include "mlx/ops.h"

namespace mlx_qmm {

namespace {

// Sum of the cotangent over every axis but the last: the gradient of a bias
// broadcast along the rows.
mx::array bias_gradient(const mx::array& cotangent, mx::Stream s) {
  std::vector<int> axes(cotangent.ndim() - 1);
  std::iota(axes.begin(), axes.end(), 0);
  return mx::sum(cotangent, axes, false, s);
}

// Gradient of the (dequantized or dense) weight matrix, in w's own layout:
// [.., N, K] for transpose, [.., K, N] otherwise. A 2-D w is shared by all of
// x's rows, so their contributions are summed.
mx::array weight_gradient(
    const mx::array& x,
    const mx::array& cotangent,
    int w_ndim,
    bool transpose,
    mx::Stream s) {
  mx::array a = x;
  mx::array g = cotangent;
  if (w_ndim == 2) {
    a = mx::reshape(x, {-1, x.shape(-1)}, s);
    g = mx::reshape(cotangent, {-1, cotangent.shape(-1)}, s);
  }
  return transpose
      ? matmul(mx::swapaxes(g, -1, -2, s), a, false, std::nullopt, s)
      : matmul(mx::swapaxes(a, -1, -2, s), g, false, std::nullopt, s);
}

// Lines the operands of a vmapped matmul up so that one call of the op on them
// computes every vmapped instance at once: each operand gets the vmapped axis
// first (size 1 where it is not vmapped), and the weight operands and x get
// the same number of batch axes, so that matmul broadcasting pairs instance v
// of x with instance v of the weights.
//
// `operands` are x then the weight operands (which share one batch shape);
// the bias, if any, is not among them.
std::vector<mx::array> align_vmapped_operands(
    const std::vector<mx::array>& operands,
    const std::vector<int>& axes,
    mx::Stream s) {
  auto per_sample_batch_rank = [&](size_t i) {
    return static_cast<int>(operands[i].ndim()) - 2 - (axes[i] >= 0 ? 1 : 0);
  };
  bool weights_vmapped = false;
  for (size_t i = 1; i < operands.size(); ++i) {
    weights_vmapped |= axes[i] >= 0;
  }
  if (!weights_vmapped && operands[1].ndim() == 2) {
    // A 2-D w is shared by every row of x: the instances are just more rows.
    std::vector<mx::array> aligned = operands;
    aligned[0] = mx::moveaxis(operands[0], axes[0], 0, s);
    return aligned;
  }
  int x_rank = per_sample_batch_rank(0);
  int w_rank = per_sample_batch_rank(1);
  int rank = std::max(x_rank, w_rank);

  int instances = 1;
  for (size_t i = 1; i < operands.size(); ++i) {
    if (axes[i] >= 0) {
      instances = operands[i].shape(axes[i]);
    }
  }

  std::vector<mx::array> aligned;
  for (size_t i = 0; i < operands.size(); ++i) {
    mx::array a = axes[i] >= 0 ? mx::moveaxis(operands[i], axes[i], 0, s)
                               : mx::expand_dims(operands[i], 0, s);
    if (i > 0 && axes[i] < 0) {
      // The weight operands must share one batch shape (w's): a shared one
      // is repeated, without a copy, for every instance.
      auto shape = a.shape();
      shape[0] = instances;
      a = mx::broadcast_to(a, shape, s);
    }
    int missing = rank - (i == 0 ? x_rank : w_rank);
    if (missing > 0) {
      std::vector<int> new_axes(missing);
      std::iota(new_axes.begin(), new_axes.end(), 1);
      a = mx::expand_dims(a, new_axes, s);
    }
    aligned.push_back(a);
  }
  return aligned;
}

// The vmap of a matmul primitive whose inputs are `num_operands` operands (x,
// then the weight operands) and, if `has_bias`, a bias [N]. `op(operands,
// bias)` builds the op on them. Every instance is computed by one call of the
// op; the result has the instance axis first.
std::pair<std::vector<mx::array>, std::vector<int>> vmap_matmul(
    const std::vector<mx::array>& inputs,
    const std::vector<int>& axes,
    size_t num_operands,
    bool has_bias,
    mx::Stream s,
    const std::function<mx::array(
        const std::vector<mx::array>&,
        const std::optional<mx::array>&)>& op) {
  std::vector<mx::array> operands(
      inputs.begin(), inputs.begin() + num_operands);
  std::vector<int> operand_axes(axes.begin(), axes.begin() + num_operands);
  bool operands_vmapped = std::any_of(
      operand_axes.begin(), operand_axes.end(), [](int a) { return a >= 0; });
  if (operands_vmapped) {
    operands = align_vmapped_operands(operands, operand_axes, s);
  }

  // A bias shared by all instances is fused; a vmapped one [V, N] is added
  // afterwards, broadcast over the rows.
  std::optional<mx::array> fused_bias;
  std::optional<mx::array> vmapped_bias;
  if (has_bias && axes.back() < 0) {
    fused_bias = inputs.back();
  } else if (has_bias) {
    vmapped_bias = mx::moveaxis(inputs.back(), axes.back(), 0, s);
  }

  auto out = op(operands, fused_bias);
  if (!operands_vmapped) {
    // Only the bias is vmapped: the product has no instance axis yet.
    out = mx::expand_dims(out, 0, s);
  }
  if (vmapped_bias) {
    mx::Shape shape(out.ndim(), 1);
    shape.front() = vmapped_bias->shape(0);
    shape.back() = vmapped_bias->shape(1);
    out = mx::add(out, mx::reshape(*vmapped_bias, shape, s), s);
  }
  return {{out}, {0}};
}

} // namespace

// ------------------------- AffineQuantizedMatmul -------------------------

std::vector<mx::array> AffineQuantizedMatmul::vjp(
    const std::vector<mx::array>& primals,
    const std::vector<mx::array>& cotangents,
    const std::vector<int>& argnums,
    const std::vector<mx::array>&) {
  const auto s = stream();
  const auto& x = primals[0];
  const auto& w = primals[1];
  const auto& scales = primals[2];
  const auto& biases = primals[3];
  const auto& g = cotangents[0];

  std::optional<mx::array> grouped_weight_grad;
  auto weight_grad_by_group = [&]() {
    if (!grouped_weight_grad) {
      auto dw = weight_gradient(x, g, w.ndim(), transpose_, s);
      grouped_weight_grad = mx::unflatten(dw, -1, {-1, group_size_}, s);
    }
    return *grouped_weight_grad;
  };

  std::vector<mx::array> vjps;
  for (int arg : argnums) {
    switch (arg) {
      case 0:
        vjps.push_back(quantized_matmul(
            g,
            w,
            scales,
            biases,
            !transpose_,
            group_size_,
            bits_,
            "affine",
            std::nullopt,
            s));
        break;
      case 1:
        throw std::invalid_argument(
            "[QmmAffineQuantizedMatmul::vjp] There is no gradient with "
            "respect to the quantized weights w.");
      case 2: {
        // d(scale * q + bias)/d(scale) = q: dequantize with unit scales.
        auto q = mx::dequantize(
            w,
            mx::ones_like(scales, s),
            mx::zeros_like(biases, s),
            group_size_,
            bits_,
            "affine",
            std::nullopt,
            scales.dtype(),
            s);
        q = mx::unflatten(q, -1, {-1, group_size_}, s);
        vjps.push_back(
            mx::sum(mx::multiply(weight_grad_by_group(), q, s), -1, false, s));
        break;
      }
      case 3:
        vjps.push_back(mx::sum(weight_grad_by_group(), -1, false, s));
        break;
      default:
        vjps.push_back(bias_gradient(g, s));
    }
  }
  return vjps;
}

std::vector<mx::array> AffineQuantizedMatmul::jvp(
    const std::vector<mx::array>& primals,
    const std::vector<mx::array>& tangents,
    const std::vector<int>& argnums) {
  const auto s = stream();
  const auto& x = primals[0];
  const auto& w = primals[1];
  const auto& scales = primals[2];
  const auto& biases = primals[3];

  std::optional<mx::array> result;
  auto accumulate = [&result, s](const mx::array& term) {
    result = result ? mx::add(*result, term, s) : term;
  };
  std::optional<mx::array> scales_tangent;
  std::optional<mx::array> biases_tangent;
  for (size_t i = 0; i < argnums.size(); ++i) {
    switch (argnums[i]) {
      case 0:
        accumulate(quantized_matmul(
            tangents[i],
            w,
            scales,
            biases,
            transpose_,
            group_size_,
            bits_,
            "affine",
            std::nullopt,
            s));
        break;
      case 1:
        throw std::invalid_argument(
            "[QmmAffineQuantizedMatmul::jvp] There is no derivative with "
            "respect to the quantized weights w.");
      case 2:
        scales_tangent = tangents[i];
        break;
      case 3:
        biases_tangent = tangents[i];
        break;
      default:
        accumulate(mx::broadcast_to(tangents[i], output_shapes(primals)[0], s));
    }
  }
  if (scales_tangent || biases_tangent) {
    // The dequantized weight is linear in (scales, biases): its tangent is the
    // dequantization with the tangents in their place.
    auto w_tangent = mx::dequantize(
        w,
        scales_tangent.value_or(mx::zeros_like(scales, s)),
        biases_tangent.value_or(mx::zeros_like(biases, s)),
        group_size_,
        bits_,
        "affine",
        std::nullopt,
        scales.dtype(),
        s);
    accumulate(matmul(x, w_tangent, transpose_, std::nullopt, s));
  }
  return {*result};
}

std::pair<std::vector<mx::array>, std::vector<int>> AffineQuantizedMatmul::vmap(
    const std::vector<mx::array>& inputs,
    const std::vector<int>& axes) {
  const auto s = stream();
  return vmap_matmul(
      inputs,
      axes,
      4,
      has_bias_,
      s,
      [&](const std::vector<mx::array>& a,
          const std::optional<mx::array>& bias) {
        return quantized_matmul(
            a[0],
            a[1],
            a[2],
            a[3],
            transpose_,
            group_size_,
            bits_,
            "affine",
            bias,
            s);
      });
}

bool AffineQuantizedMatmul::is_equivalent(const mx::Primitive& other) const {
  const auto& o = static_cast<const AffineQuantizedMatmul&>(other);
  return group_size_ == o.group_size_ && bits_ == o.bits_ &&
      transpose_ == o.transpose_ && has_bias_ == o.has_bias_;
}

std::vector<mx::Shape> AffineQuantizedMatmul::output_shapes(
    const std::vector<mx::array>& inputs) {
  const auto& w = inputs[1];
  auto shape = inputs[0].shape();
  shape.back() = transpose_ ? w.shape(-2) : w.shape(-1) * kWordBits / bits_;
  return {shape};
}

// ------------------------------ DenseMatmul ------------------------------

std::vector<mx::array> DenseMatmul::vjp(
    const std::vector<mx::array>& primals,
    const std::vector<mx::array>& cotangents,
    const std::vector<int>& argnums,
    const std::vector<mx::array>&) {
  const auto s = stream();
  const auto& x = primals[0];
  const auto& w = primals[1];
  const auto& g = cotangents[0];
  std::vector<mx::array> vjps;
  for (int arg : argnums) {
    switch (arg) {
      case 0:
        vjps.push_back(matmul(g, w, !transpose_, std::nullopt, s));
        break;
      case 1:
        vjps.push_back(weight_gradient(x, g, w.ndim(), transpose_, s));
        break;
      default:
        vjps.push_back(bias_gradient(g, s));
    }
  }
  return vjps;
}

std::vector<mx::array> DenseMatmul::jvp(
    const std::vector<mx::array>& primals,
    const std::vector<mx::array>& tangents,
    const std::vector<int>& argnums) {
  const auto s = stream();
  std::optional<mx::array> result;
  for (size_t i = 0; i < argnums.size(); ++i) {
    mx::array term = [&]() {
      switch (argnums[i]) {
        case 0:
          return matmul(tangents[i], primals[1], transpose_, std::nullopt, s);
        case 1:
          return matmul(primals[0], tangents[i], transpose_, std::nullopt, s);
        default:
          return mx::broadcast_to(tangents[i], output_shapes(primals)[0], s);
      }
    }();
    result = result ? mx::add(*result, term, s) : term;
  }
  return {*result};
}

std::pair<std::vector<mx::array>, std::vector<int>> DenseMatmul::vmap(
    const std::vector<mx::array>& inputs,
    const std::vector<int>& axes) {
  const auto s = stream();
  return vmap_matmul(
      inputs,
      axes,
      2,
      has_bias_,
      s,
      [&](const std::vector<mx::array>& a,
          const std::optional<mx::array>& bias) {
        return matmul(a[0], a[1], transpose_, bias, s);
      });
}

bool DenseMatmul::is_equivalent(const mx::Primitive& other) const {
  const auto& o = static_cast<const DenseMatmul&>(other);
  return transpose_ == o.transpose_ && has_bias_ == o.has_bias_;
}

std::vector<mx::Shape> DenseMatmul::output_shapes(
    const std::vector<mx::array>& inputs) {
  const auto& w = inputs[1];
  auto shape = inputs[0].shape();
  shape.back() = transpose_ ? w.shape(-2) : w.shape(-1);
  return {shape};
}

} // namespace mlx_qmm
