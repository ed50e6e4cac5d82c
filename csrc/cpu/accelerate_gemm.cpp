// Copyright © 2026 mlx-qmm contributors.

#include "csrc/cpu/accelerate_gemm.h"

#ifdef __APPLE__

#include <Accelerate/Accelerate.h>

#include "csrc/cpu/kernels.h"

namespace mlx_qmm::cpu {

bool accelerate_dense_gemm(
    const std::vector<mx::array>& inputs,
    mx::array& out,
    bool transpose,
    bool has_bias) {
  const auto& x = inputs[0];
  const auto& w = inputs[1];
  if (out.dtype() != mx::float32 || w.ndim() != 2 ||
      !x.flags().row_contiguous) {
    return false;
  }
  const int n = out.shape(-1);
  const int k = x.shape(-1);
  const int m = static_cast<int>(out.size() / n);
  if (transpose && m <= kGemvMaxRows) {
    return false;
  }
  // w as stored: [N, K] for x @ w.T, [K, N] for x @ w; a column-contiguous
  // w is the other orientation's row-contiguous matrix.
  bool w_transposed = transpose;
  int ldw;
  if (w.flags().row_contiguous) {
    ldw = w.shape(1);
  } else if (w.flags().col_contiguous) {
    w_transposed = !transpose;
    ldw = w.shape(0);
  } else {
    return false;
  }
  float* c = out.data<float>();
  float beta = 0.0f;
  if (has_bias) {
    // C starts as the bias in every row; sgemm adds x @ W to it.
    const auto& bias = inputs.back();
    const float* b = bias.data<float>();
    const int64_t stride = bias.strides()[0];
    for (int r = 0; r < m; ++r) {
      for (int j = 0; j < n; ++j) {
        c[static_cast<int64_t>(r) * n + j] = b[j * stride];
      }
    }
    beta = 1.0f;
  }
  cblas_sgemm(
      CblasRowMajor,
      CblasNoTrans,
      w_transposed ? CblasTrans : CblasNoTrans,
      m,
      n,
      k,
      1.0f,
      x.data<float>(),
      k,
      w.data<float>(),
      ldw,
      beta,
      c,
      n);
  return true;
}

} // namespace mlx_qmm::cpu

#else

namespace mlx_qmm::cpu {

bool accelerate_dense_gemm(
    const std::vector<mx::array>&,
    mx::array&,
    bool,
    bool) {
  return false;
}

} // namespace mlx_qmm::cpu

#endif
