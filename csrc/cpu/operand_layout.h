// Copyright © 2026 mlx-qmm contributors.
//
// Where the rows and batches of our primitives' operands are in memory
// (csrc/matmul_shapes.h defines the batching), for the CPU driver.

#pragma once

#include <cstdint>

#include "mlx/array.h"
#include "mlx/backend/common/utils.h"

namespace mlx_qmm::cpu {

namespace mx = mlx::core;

// Where the rows of an operand are: row r of the flattened leading axes.
struct RowLayout {
  mx::Shape shape; // leading axes (all but the last)
  mx::Strides strides; // their strides
  int64_t column_stride;

  explicit RowLayout(const mx::array& a)
      : shape(a.shape().begin(), a.shape().end() - 1),
        strides(a.strides().begin(), a.strides().end() - 1),
        column_stride(a.strides().back()) {}

  int64_t offset(int64_t row) const {
    return mx::elem_to_loc(static_cast<int>(row), shape, strides);
  }
};

// Offset of batch b of an operand whose last two axes are the matrix; 0 for
// a 2-D operand (shared by all batches).
inline int64_t batch_offset(const mx::array& a, int64_t b) {
  if (a.ndim() <= 2) {
    return 0;
  }
  mx::Shape shape(a.shape().begin(), a.shape().end() - 2);
  mx::Strides strides(a.strides().begin(), a.strides().end() - 2);
  return mx::elem_to_loc(static_cast<int>(b), shape, strides);
}

// out[r, n] = sum_k x[r, k] * W[n, k] (+ bias[n]) for the rows of each
// weight batch.
struct MatmulShape {
  int64_t batches; // weight batches (1 when w is 2-D)
  int64_t rows_per_batch; // rows of x multiplied by each weight batch
  int n;
  int k;

  // The problem of a primitive with inputs x [..., M, K] and w (2-D, or
  // batched like x; see csrc/matmul_shapes.h) and a non-empty output.
  static MatmulShape
  of(const mx::array& x, const mx::array& w, const mx::array& out) {
    const int n = out.shape(-1);
    const int64_t rows = out.size() / n;
    if (w.ndim() == 2) {
      return {1, rows, n, x.shape(-1)};
    }
    return {rows / x.shape(-2), x.shape(-2), n, x.shape(-1)};
  }
};

} // namespace mlx_qmm::cpu
