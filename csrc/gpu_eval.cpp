// Copyright © 2026 mlx-qmm contributors.
//
// GPU evaluation. Until our Metal and CUDA kernels land, the ops build stock
// MLX ops for GPU streams (see has_own_kernels in backend_info.cpp), so these
// primitives are never created on a GPU stream; reaching here is a bug.

#include <stdexcept>

#include "csrc/primitives.h"

namespace mlx_qmm {

void AffineQuantizedMatmul::eval_gpu(
    const std::vector<mx::array>&,
    mx::array&) {
  throw std::logic_error(
      "[QmmAffineQuantizedMatmul] No GPU kernel is built; GPU streams are "
      "served by stock MLX ops, so this primitive should not be on one.");
}

void DenseMatmul::eval_gpu(const std::vector<mx::array>&, mx::array&) {
  throw std::logic_error(
      "[QmmDenseMatmul] No GPU kernel is built; GPU streams are served by "
      "stock MLX ops, so this primitive should not be on one.");
}

} // namespace mlx_qmm
