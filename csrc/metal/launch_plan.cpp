// Copyright © 2026 mlx-qmm contributors.

#include "csrc/metal/launch_plan.h"

#include <vector>

#include "csrc/metal/kernel_selection.h"
#include "kernels/metal/dense_gemv_params.h"
#include "kernels/metal/launch_params.h"
#include "kernels/metal/qmv_affine_params.h"
#include "kernels/metal/strided_copy_params.h"
#include "kernels/metal/tiled_matmul_params.h"

namespace mlx_qmm::metal {

namespace {

using qmm::kOffsetBiases;
using qmm::kOffsetScales;
using qmm::kOffsetsPerBatch;
using qmm::kOffsetW;
using qmm::kOffsetX;
using qmm::kOffsetY;

// The dtype's name in host names, and its Metal type.
struct TypeNames {
  std::string host;
  std::string metal;
};

std::optional<TypeNames> type_names(mx::Dtype dtype) {
  switch (dtype) {
    case mx::float32:
      return TypeNames{"float32", "float"};
    case mx::float16:
      return TypeNames{"float16", "half"};
    case mx::bfloat16:
      return TypeNames{"bfloat16", "bfloat"};
    default:
      return std::nullopt;
  }
}

// Last axis contiguous and, for a matrix, rows one after the other: the
// layout every kernel reads (size-1 axes have any stride).
bool matrix_contiguous(const mx::array& a) {
  const int d = a.ndim();
  const bool columns = a.shape(d - 1) == 1 || a.strides()[d - 1] == 1;
  if (d == 1) {
    return columns;
  }
  return columns &&
      (a.shape(d - 2) == 1 || a.strides()[d - 2] == a.shape(d - 1));
}

uint32_t ceil_div(int64_t a, int64_t b) {
  return static_cast<uint32_t>((a + b - 1) / b);
}

// strided_copy of inputs[input] into a row-contiguous temporary.
LaunchPlan plan_strided_copy(const mx::array& a, int input) {
  namespace copy = qmm::strided_copy;
  LaunchPlan plan;
  const std::string bits = std::to_string(a.itemsize() * 8);
  const std::string type = a.itemsize() == 2 ? "uint16_t" : "uint32_t";
  plan.kernel = "strided_copy_" + bits;
  plan.source = "copy";
  plan.instantiation = "qmm::strided_copy::strided_copy_kernel<" + type + ">";
  plan.grid = {ceil_div(static_cast<int64_t>(a.size()), copy::kThreads), 1, 1};
  plan.threadgroup = {copy::kThreads, 1, 1};
  plan.copy_of_input = input;
  plan.buffers.push_back(BufferBinding::of_input(copy::kBufferIn, input));
  plan.buffers.push_back(BufferBinding::of_output(copy::kBufferOut));
  plan.buffers.push_back(
      BufferBinding::of_value<int32_t>(copy::kBufferNdim, a.ndim()));
  BufferBinding shape{copy::kBufferShape, BufferBinding::Source::Bytes, -1, {}};
  BufferBinding strides{
      copy::kBufferStrides, BufferBinding::Source::Bytes, -1, {}};
  for (int axis = 0; axis < static_cast<int>(a.ndim()); ++axis) {
    const int32_t size = a.shape(axis);
    const int64_t stride = a.strides()[axis];
    const auto* s = reinterpret_cast<const uint8_t*>(&size);
    const auto* t = reinterpret_cast<const uint8_t*>(&stride);
    shape.bytes.insert(shape.bytes.end(), s, s + sizeof(size));
    strides.bytes.insert(strides.bytes.end(), t, t + sizeof(stride));
  }
  plan.buffers.push_back(std::move(shape));
  plan.buffers.push_back(std::move(strides));
  plan.buffers.push_back(BufferBinding::of_value<int64_t>(
      copy::kBufferSize, static_cast<int64_t>(a.size())));
  return plan;
}

mx::Strides row_contiguous_strides(const mx::Shape& shape) {
  mx::Strides strides(shape.size(), 1);
  for (int i = static_cast<int>(shape.size()) - 2; i >= 0; --i) {
    strides[i] = strides[i + 1] * shape[i + 1];
  }
  return strides;
}

// How a matmul's operands lie in memory, as the kernels see it: `batches`
// launches of [rows, K] x W -> [rows, N], each at its row of the offsets
// table (launch_params.h).
struct MatmulLayout {
  int n;
  int k;
  int64_t rows;
  int64_t batches;
  std::vector<int64_t> offsets;
  std::vector<LaunchPlan> input_copies;
};

// `operands` inputs (x, w[, scales, biases]) have batch offsets; a bias
// after them is one vector shared by all batches.
MatmulLayout layout_matmul(
    const std::vector<mx::array>& inputs,
    const mx::array& out,
    int operands) {
  MatmulLayout layout;
  layout.n = out.shape(-1);
  layout.k = inputs[0].shape(-1);
  std::vector<mx::Strides> strides;
  for (int i = 0; i < static_cast<int>(inputs.size()); ++i) {
    if (matrix_contiguous(inputs[i])) {
      strides.push_back(inputs[i].strides());
    } else {
      layout.input_copies.push_back(plan_strided_copy(inputs[i], i));
      strides.push_back(row_contiguous_strides(inputs[i].shape()));
    }
  }

  // x's rows are one run of rows (as they are after a copy): with a shared
  // w, one launch covers all of them.
  const auto& x = inputs[0];
  const bool x_is_one_run = x.flags().row_contiguous ||
      (!layout.input_copies.empty() &&
       layout.input_copies[0].copy_of_input == 0);
  if (inputs[1].ndim() == 2 && x_is_one_run) {
    layout.rows = out.size() / layout.n;
    layout.batches = 1;
    layout.offsets.assign(kOffsetsPerBatch, 0);
    return layout;
  }

  // One launch per batch of the output, each operand at the offset of its
  // (right-aligned, possibly broadcast) batch axes.
  const mx::Shape batch(out.shape().begin(), out.shape().end() - 2);
  layout.rows = out.shape(-2);
  layout.batches = out.size() / (layout.rows * layout.n);
  layout.offsets.assign(layout.batches * kOffsetsPerBatch, 0);
  const int operand_slots[] = {
      kOffsetX, kOffsetW, kOffsetScales, kOffsetBiases};
  for (int64_t b = 0; b < layout.batches; ++b) {
    int64_t* row = layout.offsets.data() + b * kOffsetsPerBatch;
    row[kOffsetY] = b * layout.rows * layout.n;
    int64_t rest = b;
    for (int axis = static_cast<int>(batch.size()) - 1; axis >= 0; --axis) {
      const int64_t index = rest % batch[axis];
      rest /= batch[axis];
      const int from_end = static_cast<int>(batch.size()) - axis;
      for (int i = 0; i < operands; ++i) {
        const int a_axis = inputs[i].ndim() - 2 - from_end;
        if (a_axis >= 0 && inputs[i].shape(a_axis) > 1) {
          row[operand_slots[i]] += index * strides[i][a_axis];
        }
      }
    }
  }
  return layout;
}

// Binds the primitive's inputs, in order, to `input_buffers`, then its bias
// (the next input, if any) to `bias_buffer`, its output to `output_buffer`
// and the batch offsets to `offsets_buffer`, and sets the has-bias function
// constant.
void bind_operands(
    LaunchPlan& plan,
    const MatmulLayout& layout,
    const std::vector<int>& input_buffers,
    int bias_buffer,
    int output_buffer,
    int offsets_buffer,
    int has_bias_constant,
    bool has_bias) {
  int input = 0;
  for (int buffer : input_buffers) {
    plan.buffers.push_back(BufferBinding::of_input(buffer, input++));
  }
  if (has_bias) {
    plan.buffers.push_back(BufferBinding::of_input(bias_buffer, input));
  }
  plan.buffers.push_back(BufferBinding::of_output(output_buffer));
  BufferBinding offsets{offsets_buffer, BufferBinding::Source::Bytes, -1, {}};
  offsets.bytes.resize(layout.offsets.size() * sizeof(int64_t));
  std::memcpy(
      offsets.bytes.data(), layout.offsets.data(), offsets.bytes.size());
  plan.buffers.push_back(std::move(offsets));
  plan.constants.push_back({has_bias_constant, has_bias ? 1u : 0u});
  plan.input_copies = layout.input_copies;
}

LaunchPlan plan_qmv_affine(
    const MatmulLayout& layout,
    const TypeNames& type,
    int group_size,
    int bits,
    bool has_bias) {
  namespace qmv = qmm::qmv_affine;
  LaunchPlan plan;
  const std::string params =
      std::to_string(group_size) + ", " + std::to_string(bits);
  plan.kernel = "qmv_affine_" + type.host + "_gs_" +
      std::to_string(group_size) + "_b_" + std::to_string(bits);
  plan.source = "quantized";
  plan.instantiation =
      "qmm::qmv_affine::qmv_affine_kernel<" + type.metal + ", " + params + ">";
  plan.grid = {
      ceil_div(layout.n, qmv::kRowsPerThreadgroup),
      static_cast<uint32_t>(layout.rows),
      static_cast<uint32_t>(layout.batches)};
  plan.threadgroup = {qmv::kSimdWidth, qmv::kSimdgroups, 1};
  bind_operands(
      plan,
      layout,
      {qmv::kBufferX, qmv::kBufferW, qmv::kBufferScales, qmv::kBufferBiases},
      qmv::kBufferBias,
      qmv::kBufferY,
      qmv::kBufferBatchOffsets,
      qmv::kHasBiasConstant,
      has_bias);
  plan.buffers.push_back(
      BufferBinding::of_value<int32_t>(qmv::kBufferK, layout.k));
  plan.buffers.push_back(
      BufferBinding::of_value<int32_t>(qmv::kBufferN, layout.n));
  return plan;
}

LaunchPlan plan_dense_gemv(
    const MatmulLayout& layout,
    const TypeNames& type,
    bool has_bias) {
  namespace gemv = qmm::dense_gemv;
  LaunchPlan plan;
  plan.kernel = "dense_gemv_" + type.host;
  plan.source = "dense";
  plan.instantiation = "qmm::dense_gemv::dense_gemv_kernel<" + type.metal + ">";
  plan.grid = {
      ceil_div(layout.n, gemv::kColumnsPerThreadgroup),
      static_cast<uint32_t>(layout.rows),
      static_cast<uint32_t>(layout.batches)};
  plan.threadgroup = {gemv::kSimdWidth, gemv::kSimdgroups, 1};
  bind_operands(
      plan,
      layout,
      {gemv::kBufferX, gemv::kBufferW},
      gemv::kBufferBias,
      gemv::kBufferY,
      gemv::kBufferBatchOffsets,
      gemv::kHasBiasConstant,
      has_bias);
  plan.buffers.push_back(
      BufferBinding::of_value<int32_t>(gemv::kBufferK, layout.k));
  plan.buffers.push_back(
      BufferBinding::of_value<int32_t>(gemv::kBufferN, layout.n));
  return plan;
}

// A tiled kernel (tiled_matmul.h), either transpose: inputs x, w[, scales,
// biases][, bias]. `kernel` and `instantiation` name it.
LaunchPlan plan_tiled_matmul(
    const MatmulLayout& layout,
    int tile,
    std::string kernel,
    std::string source,
    std::string instantiation,
    bool quantized,
    bool has_bias) {
  namespace tiled = qmm::tiled_matmul;
  LaunchPlan plan;
  plan.kernel = std::move(kernel);
  plan.source = std::move(source);
  plan.instantiation = std::move(instantiation);
  plan.grid = {
      ceil_div(layout.n, tile),
      ceil_div(layout.rows, tile),
      static_cast<uint32_t>(layout.batches)};
  plan.threadgroup = {tiled::kThreads, 1, 1};
  std::vector<int> inputs = {tiled::kBufferX, tiled::kBufferW};
  if (quantized) {
    inputs.push_back(tiled::kBufferScales);
    inputs.push_back(tiled::kBufferBiases);
  }
  bind_operands(
      plan,
      layout,
      inputs,
      tiled::kBufferBias,
      tiled::kBufferY,
      tiled::kBufferBatchOffsets,
      tiled::kHasBiasConstant,
      has_bias);
  plan.buffers.push_back(BufferBinding::of_value<int32_t>(
      tiled::kBufferM, static_cast<int32_t>(layout.rows)));
  plan.buffers.push_back(
      BufferBinding::of_value<int32_t>(tiled::kBufferN, layout.n));
  plan.buffers.push_back(
      BufferBinding::of_value<int32_t>(tiled::kBufferK, layout.k));
  return plan;
}

std::string bool_name(bool value) {
  return value ? "true" : "false";
}

} // namespace

std::optional<LaunchPlan> plan_dense_matmul(
    const std::vector<mx::array>& inputs,
    const mx::array& out,
    bool transpose,
    bool has_bias) {
  const auto type = type_names(out.dtype());
  if (!type || out.size() == 0) {
    return std::nullopt;
  }
  const auto layout = layout_matmul(inputs, out, 2);
  const auto& rule = select_kernel(false, transpose, layout.rows);
  if (rule.kernel == MetalKernel::DenseGemv) {
    return plan_dense_gemv(layout, *type, has_bias);
  }
  const std::string tile = std::to_string(rule.tile);
  return plan_tiled_matmul(
      layout,
      rule.tile,
      std::string("dense_gemm_") + (transpose ? "t_" : "n_") + type->host +
          "_tile_" + tile,
      "dense",
      "qmm::dense_gemm::dense_gemm_kernel<" + type->metal + ", " +
          bool_name(transpose) + ", " + tile + ">",
      false,
      has_bias);
}

std::optional<LaunchPlan> plan_quantized_matmul(
    const std::vector<mx::array>& inputs,
    const mx::array& out,
    int group_size,
    int bits,
    bool transpose,
    bool has_bias) {
  const auto type = type_names(out.dtype());
  if (!type || out.size() == 0) {
    return std::nullopt;
  }
  const auto layout = layout_matmul(inputs, out, 4);
  const auto& rule = select_kernel(true, transpose, layout.rows);
  if (rule.kernel == MetalKernel::QmvAffine) {
    return plan_qmv_affine(layout, *type, group_size, bits, has_bias);
  }
  const std::string tile = std::to_string(rule.tile);
  return plan_tiled_matmul(
      layout,
      rule.tile,
      std::string("qmm_affine_") + (transpose ? "t_" : "n_") + type->host +
          "_gs_" + std::to_string(group_size) + "_b_" + std::to_string(bits) +
          "_tile_" + tile,
      "quantized",
      "qmm::qmm_affine::qmm_affine_kernel<" + type->metal + ", " +
          std::to_string(group_size) + ", " + std::to_string(bits) + ", " +
          bool_name(transpose) + ", " + tile + ">",
      true,
      has_bias);
}

} // namespace mlx_qmm::metal
