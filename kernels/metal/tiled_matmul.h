// Copyright © 2026 mlx-qmm contributors.
//
// The tiled matmul both tiled kernels share:
//   y = x @ W + bias, with W [K, N] produced tile by tile by a loader
// (dequantized affine weights, or dense weights of either layout).
//
// Threadgroup (i, j) computes the kTileM x kTileN tile of y at rows
// j * kTileM, columns i * kTileN, walking K kTileK values at a time:
//   1. all threads copy the x tile (kTileM x kTileK) into threadgroup memory
//      as float, zeros past M and K;
//   2. the loader fills the w tile, [k][n] in threadgroup memory as float,
//      zeros past K and N;
//   3. the 2 x 2 SIMD groups multiply their 16 x 16 quarters with 8 x 8
//      simdgroup_matrix fragments, accumulating in float.
// The result goes through threadgroup memory to y, guarded at the edges of
// M and N, with the bias added.

#pragma once

#include <metal_stdlib>

#include "kernels/metal/tiled_matmul_params.h"

namespace qmm {
namespace tiled_matmul {

// Threadgroup memory of one threadgroup, declared by the kernel.
struct Tiles {
  threadgroup float* x;
  threadgroup float* w;
  threadgroup float* y;
};

// `Loader` has
//   void load(threadgroup float* w_tile, int n0, int k0, uint thread_index)
// filling the w tile for columns n0.. and K values k0.. .
template <typename T, typename Loader>
METAL_FUNC void tiled_matmul(
    const device T* x,
    thread const Loader& loader,
    const device T* bias,
    device T* y,
    const int M,
    const int N,
    const int K,
    const bool has_bias,
    const Tiles tiles,
    const uint3 threadgroup_id,
    const uint thread_index,
    const uint simd_group) {
  const int m0 = threadgroup_id.y * kTileM;
  const int n0 = threadgroup_id.x * kTileN;
  // This SIMD group's 16 x 16 quarter of the tile.
  const int quarter_m = (simd_group / kSimdgroupsN) * 2 * kFragment;
  const int quarter_n = (simd_group % kSimdgroupsN) * 2 * kFragment;

  metal::simdgroup_matrix<float, 8, 8> acc[2][2];
  for (int i = 0; i < 2; ++i) {
    for (int j = 0; j < 2; ++j) {
      acc[i][j] = metal::make_filled_simdgroup_matrix<float, 8, 8>(0.0f);
    }
  }

  for (int k0 = 0; k0 < K; k0 += kTileK) {
    metal::threadgroup_barrier(metal::mem_flags::mem_threadgroup);
    for (int i = thread_index; i < kTileM * kTileK; i += kThreads) {
      const int m = m0 + i / kTileK;
      const int k = k0 + i % kTileK;
      tiles.x[(i / kTileK) * kTileStride + i % kTileK] =
          m < M && k < K ? float(x[int64_t(m) * K + k]) : 0.0f;
    }
    loader.load(tiles.w, n0, k0, thread_index);
    metal::threadgroup_barrier(metal::mem_flags::mem_threadgroup);

    for (int kk = 0; kk < kTileK; kk += kFragment) {
      metal::simdgroup_matrix<float, 8, 8> a[2];
      metal::simdgroup_matrix<float, 8, 8> b[2];
      for (int i = 0; i < 2; ++i) {
        metal::simdgroup_load(
            a[i], tiles.x, kTileStride, ulong2(kk, quarter_m + i * kFragment));
        metal::simdgroup_load(
            b[i], tiles.w, kTileStride, ulong2(quarter_n + i * kFragment, kk));
      }
      for (int i = 0; i < 2; ++i) {
        for (int j = 0; j < 2; ++j) {
          metal::simdgroup_multiply_accumulate(
              acc[i][j], a[i], b[j], acc[i][j]);
        }
      }
    }
  }

  for (int i = 0; i < 2; ++i) {
    for (int j = 0; j < 2; ++j) {
      metal::simdgroup_store(
          acc[i][j],
          tiles.y,
          kTileStride,
          ulong2(quarter_n + j * kFragment, quarter_m + i * kFragment));
    }
  }
  metal::threadgroup_barrier(metal::mem_flags::mem_threadgroup);
  for (int i = thread_index; i < kTileM * kTileN; i += kThreads) {
    const int m = m0 + i / kTileN;
    const int n = n0 + i % kTileN;
    if (m < M && n < N) {
      const float value = tiles.y[(i / kTileN) * kTileStride + i % kTileN];
      y[int64_t(m) * N + n] = T(has_bias ? value + float(bias[n]) : value);
    }
  }
}

} // namespace tiled_matmul
} // namespace qmm
