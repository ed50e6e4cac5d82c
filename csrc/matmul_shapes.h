// Copyright © 2026 mlx-qmm contributors.
//
// The batching rule both ops share, written once so that the ops, the
// primitives' transforms and the kernels agree on it.
//
//   x  [..., M, K]  (or [K], treated as [1, K] and the M axis dropped again)
//   w  [N, *]       shared by every row of x: x's leading axes are all rows
//   w  [B..., N, *] batched: x's and w's batch axes broadcast as in matmul
//
// The primitive always sees x as [..., M, K] and, when w is batched, x and w
// (and scales/biases) broadcast to one batch shape.

#pragma once

#include <vector>

#include "mlx/array.h"
#include "mlx/utils.h"

namespace mlx_qmm {

namespace mx = mlx::core;

struct BatchedOperands {
  // x, then the weight operands (w, or w, scales, biases), broadcast.
  std::vector<mx::array> arrays;
  // Shape the primitive produces.
  mx::Shape out_shape;
  // x was a vector: the primitive's M axis (of size 1) must be dropped.
  bool squeeze_m;
};

// `tag` prefixes error messages; `n` is the number of output columns.
BatchedOperands broadcast_matmul_operands(
    const char* tag,
    const mx::array& x,
    const std::vector<mx::array>& weights,
    int n,
    mx::StreamOrDevice s);

} // namespace mlx_qmm
