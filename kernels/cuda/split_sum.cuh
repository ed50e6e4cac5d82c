// Copyright © 2026 mlx-qmm contributors.
//
// The second half of a K split (launch_plan.h): the warpgroup GEMM's
// blocks z = 0 .. splits - 1 each leave a float32 partial product of the
// whole output; this sums them in order, adds the bias and rounds once.

#pragma once

#include <cstdint>

#include "kernels/cuda/float_types.cuh"
#include "kernels/cuda/launch_params.h"

namespace mlx_qmm::cuda {

template <typename T>
__global__ void split_sum(const SplitSumArgs a) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= a.count) {
    return;
  }
  float sum = a.bias ? to_float(static_cast<const T*>(a.bias)[i % a.n]) : 0.0f;
  for (int z = 0; z < a.splits; ++z) {
    sum += a.partials[z * a.count + i];
  }
  static_cast<T*>(a.out)[i] = from_float<T>(sum);
}

} // namespace mlx_qmm::cuda
