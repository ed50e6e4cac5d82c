// Copyright © 2026 mlx-qmm contributors.
//
// Copies a strided view (a transposed or sliced operand, a broadcast batch)
// into a row-contiguous temporary, which the matmul kernels then read in its
// place; MLX's own copy kernels are not part of its exported API.

#pragma once

#include <cstdint>

#include "kernels/cuda/launch_params.h"

namespace mlx_qmm::cuda {

// dst[i] = src[offset of element i], element i of a row-major `shape`.
template <typename Element>
__global__ void strided_copy(const StridedCopyArgs a) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= a.size) {
    return;
  }
  int64_t rest = i;
  int64_t offset = 0;
  for (int d = a.ndim - 1; d >= 0; --d) {
    offset += (rest % a.shape[d]) * a.strides[d];
    rest /= a.shape[d];
  }
  static_cast<Element*>(a.dst)[i] = static_cast<const Element*>(a.src)[offset];
}

} // namespace mlx_qmm::cuda
