// Copyright © 2026 mlx-qmm contributors.
//
// Gathers a strided view (a transposed or sliced operand) into row-contiguous
// memory before a matmul kernel reads it: the matmul kernels read each
// matrix row-contiguous (launch_plan.h). Thread i copies element i of the
// output, reading it at sum(index[axis] * strides[axis]). Elements are
// copied as unsigned integers of their width, whatever their type.

#pragma once

#include <metal_stdlib>

#include "kernels/metal/strided_copy_params.h"

namespace qmm {
namespace strided_copy {

template <typename T>
METAL_FUNC void strided_copy(
    const device T* in,
    device T* out,
    const int ndim,
    const constant int* shape,
    const constant int64_t* strides,
    const int64_t size,
    const uint3 threadgroup_id,
    const uint thread_index) {
  const int64_t i = int64_t(threadgroup_id.x) * kThreads + thread_index;
  if (i >= size) {
    return;
  }
  int64_t rest = i;
  int64_t at = 0;
  for (int axis = ndim - 1; axis >= 0; --axis) {
    at += (rest % shape[axis]) * strides[axis];
    rest /= shape[axis];
  }
  out[i] = in[at];
}

} // namespace strided_copy
} // namespace qmm
