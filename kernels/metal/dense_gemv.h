// Copyright © 2026 mlx-qmm contributors.
//
// Dense matrix-vector product for small M: y[m, n] = x[m, :] . w[n, :] +
// bias[n], with w row-major [N, K] (x @ w.T).
//
// Layout of the work: threadgroup (i, m) computes row m of y, columns
// [i * kColumnsPerThreadgroup, (i + 1) * kColumnsPerThreadgroup). Within it
// SIMD group s owns kColumnsPerSimdgroup consecutive columns; its 32 lanes
// walk K together, lane l reading elements [k + l * kValuesPerLane,
// k + (l + 1) * kValuesPerLane) of x and of each of its rows of w, so one
// step of the SIMD group reads 32 * kValuesPerLane contiguous elements of
// every row (coalesced). Each lane keeps one float partial sum per column;
// simd_sum combines them at the end and lane 0 writes the results.
// Columns past N still take part in the simd_sum (it must be reached by
// every lane) but neither read w nor write y.

#pragma once

#include <metal_stdlib>

#include "kernels/metal/dense_gemv_params.h"

namespace qmm {
namespace dense_gemv {

template <typename T>
METAL_FUNC void dense_gemv(
    const device T* x,
    const device T* w,
    const device T* bias,
    device T* y,
    const int K,
    const int N,
    const bool has_bias,
    const uint3 threadgroup_id,
    const uint simd_group,
    const uint simd_lane) {
  const int m = threadgroup_id.y;
  const int first_column = threadgroup_id.x * kColumnsPerThreadgroup +
      simd_group * kColumnsPerSimdgroup;
  x += int64_t(m) * K;

  float sums[kColumnsPerSimdgroup] = {0.0f};
  constexpr int kStep = kSimdWidth * kValuesPerLane;
  for (int k = simd_lane * kValuesPerLane; k < K; k += kStep) {
    // The last step of a K that is not a multiple of kStep is partial.
    const int count = metal::min(kValuesPerLane, K - k);
    float xs[kValuesPerLane];
    for (int i = 0; i < kValuesPerLane; ++i) {
      xs[i] = i < count ? float(x[k + i]) : 0.0f;
    }
    for (int c = 0; c < kColumnsPerSimdgroup; ++c) {
      const int n = first_column + c;
      if (n >= N) {
        break;
      }
      const device T* row = w + int64_t(n) * K + k;
      for (int i = 0; i < count; ++i) {
        sums[c] += xs[i] * float(row[i]);
      }
    }
  }

  for (int c = 0; c < kColumnsPerSimdgroup; ++c) {
    const float total = metal::simd_sum(sums[c]);
    const int n = first_column + c;
    if (simd_lane == 0 && n < N) {
      y[int64_t(m) * N + n] = T(has_bias ? total + float(bias[n]) : total);
    }
  }
}

} // namespace dense_gemv
} // namespace qmm
