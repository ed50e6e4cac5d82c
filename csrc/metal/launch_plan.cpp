// Copyright © 2026 mlx-qmm contributors.

#include "csrc/metal/launch_plan.h"

#include <vector>

#include "kernels/metal/dense_gemv_params.h"
#include "kernels/metal/qmv_affine_params.h"
#include "kernels/metal/tiled_matmul_params.h"

namespace mlx_qmm::metal {

namespace {

std::string type_name(mx::Dtype dtype) {
  switch (dtype) {
    case mx::float32:
      return "float32";
    case mx::float16:
      return "float16";
    case mx::bfloat16:
      return "bfloat16";
    default:
      return "";
  }
}

// What every Metal kernel so far needs: a float type, a 2-D w shared by all
// rows of x, row-contiguous operands and a non-empty output.
bool served_by_metal_kernels(
    const std::vector<mx::array>& inputs,
    const mx::array& out) {
  if (type_name(out.dtype()).empty() || inputs[1].ndim() != 2 ||
      out.size() == 0) {
    return false;
  }
  for (const auto& a : inputs) {
    if (!a.flags().row_contiguous) {
      return false;
    }
  }
  return true;
}

// Binds the primitive's inputs, in order, to `input_buffers`, then its bias
// (the next input, if any) to `bias_buffer`, its output to `output_buffer`,
// and sets the has-bias function constant.
void bind_operands(
    LaunchPlan& plan,
    const std::vector<int>& input_buffers,
    int bias_buffer,
    int output_buffer,
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
  plan.constants.push_back({has_bias_constant, has_bias ? 1u : 0u});
}

std::string affine_suffix(const std::string& type, int group_size, int bits) {
  return type + "_gs_" + std::to_string(group_size) + "_b_" +
      std::to_string(bits);
}

// The matrix-vector kernel: x @ w.T for one row of x.
LaunchPlan plan_qmv_affine(
    const std::string& suffix,
    int n,
    int k,
    int64_t rows,
    bool has_bias) {
  namespace qmv = qmm::qmv_affine;
  LaunchPlan plan;
  plan.kernel = "qmv_affine_" + suffix;
  plan.grid = {
      static_cast<uint32_t>(
          (n + qmv::kRowsPerThreadgroup - 1) / qmv::kRowsPerThreadgroup),
      static_cast<uint32_t>(rows),
      1};
  plan.threadgroup = {qmv::kSimdWidth, qmv::kSimdgroups, 1};
  bind_operands(
      plan,
      {qmv::kBufferX, qmv::kBufferW, qmv::kBufferScales, qmv::kBufferBiases},
      qmv::kBufferBias,
      qmv::kBufferY,
      qmv::kHasBiasConstant,
      has_bias);
  plan.buffers.push_back(BufferBinding::of_value<int32_t>(qmv::kBufferK, k));
  plan.buffers.push_back(BufferBinding::of_value<int32_t>(qmv::kBufferN, n));
  return plan;
}

// A tiled kernel (tiled_matmul.h), either transpose: inputs x, w[, scales,
// biases][, bias].
LaunchPlan plan_tiled_matmul(
    const std::string& kernel,
    bool quantized,
    int n,
    int k,
    int64_t rows,
    bool has_bias) {
  namespace tiled = qmm::tiled_matmul;
  LaunchPlan plan;
  plan.kernel = kernel;
  plan.grid = {
      static_cast<uint32_t>((n + tiled::kTileN - 1) / tiled::kTileN),
      static_cast<uint32_t>((rows + tiled::kTileM - 1) / tiled::kTileM),
      1};
  plan.threadgroup = {tiled::kThreads, 1, 1};
  std::vector<int> inputs = {tiled::kBufferX, tiled::kBufferW};
  if (quantized) {
    inputs.push_back(tiled::kBufferScales);
    inputs.push_back(tiled::kBufferBiases);
  }
  bind_operands(
      plan,
      inputs,
      tiled::kBufferBias,
      tiled::kBufferY,
      tiled::kHasBiasConstant,
      has_bias);
  plan.buffers.push_back(BufferBinding::of_value<int32_t>(
      tiled::kBufferM, static_cast<int32_t>(rows)));
  plan.buffers.push_back(BufferBinding::of_value<int32_t>(tiled::kBufferN, n));
  plan.buffers.push_back(BufferBinding::of_value<int32_t>(tiled::kBufferK, k));
  return plan;
}

} // namespace

std::optional<LaunchPlan> plan_dense_matmul(
    const std::vector<mx::array>& inputs,
    const mx::array& out,
    bool transpose,
    bool has_bias) {
  namespace gemv = qmm::dense_gemv;
  const auto& x = inputs[0];
  const std::string type = type_name(out.dtype());
  if (!served_by_metal_kernels(inputs, out)) {
    return std::nullopt;
  }
  const int n = out.shape(-1);
  const int k = x.shape(-1);
  const int64_t rows = out.size() / n;
  if (!transpose || rows > kGemvMaxRows) {
    return plan_tiled_matmul(
        (transpose ? "dense_gemm_t_" : "dense_gemm_n_") + type,
        false,
        n,
        k,
        rows,
        has_bias);
  }

  LaunchPlan plan;
  plan.kernel = "dense_gemv_" + type;
  plan.grid = {
      static_cast<uint32_t>(
          (n + gemv::kColumnsPerThreadgroup - 1) /
          gemv::kColumnsPerThreadgroup),
      static_cast<uint32_t>(rows),
      1};
  plan.threadgroup = {gemv::kSimdWidth, gemv::kSimdgroups, 1};
  bind_operands(
      plan,
      {gemv::kBufferX, gemv::kBufferW},
      gemv::kBufferBias,
      gemv::kBufferY,
      gemv::kHasBiasConstant,
      has_bias);
  plan.buffers.push_back(BufferBinding::of_value<int32_t>(gemv::kBufferK, k));
  plan.buffers.push_back(BufferBinding::of_value<int32_t>(gemv::kBufferN, n));
  return plan;
}

std::optional<LaunchPlan> plan_quantized_matmul(
    const std::vector<mx::array>& inputs,
    const mx::array& out,
    int group_size,
    int bits,
    bool transpose,
    bool has_bias) {
  const auto& x = inputs[0];
  const std::string type = type_name(out.dtype());
  if (!served_by_metal_kernels(inputs, out)) {
    return std::nullopt;
  }
  const int n = out.shape(-1);
  const int k = x.shape(-1);
  const int64_t rows = out.size() / n;
  const std::string suffix = affine_suffix(type, group_size, bits);
  if (transpose && rows <= kQmvMaxRows) {
    return plan_qmv_affine(suffix, n, k, rows, has_bias);
  }
  return plan_tiled_matmul(
      (transpose ? "qmm_affine_t_" : "qmm_affine_n_") + suffix,
      true,
      n,
      k,
      rows,
      has_bias);
}

} // namespace mlx_qmm::metal
