// Copyright © 2026 mlx-qmm contributors.
//
// The tiled matmul both tiled kernels share:
//   y = x @ W + bias, with W [K, N] produced tile by tile by a loader
// (dequantized affine weights, or dense weights of either layout).
//
// Threadgroup (i, j) computes the tile x tile block of y at rows j * tile,
// columns i * tile, walking K kTileK values at a time:
//   1. all threads copy the x tile (tile x kTileK) into threadgroup memory
//      as float, zeros past M and K;
//   2. the loader fills the w tile, [k][n] in threadgroup memory as float,
//      zeros past K and N;
//   3. the 2 x 2 SIMD groups multiply their quarters with 8 x 8
//      simdgroup_matrix fragments, accumulating in float.
// The result goes through threadgroup memory (where the x and w tiles were)
// to y, guarded at the edges of M and N, with the bias added. Each element
// of w is read once per tile of rows of x, and each element of x once per
// tile of columns of y: the larger tile halves both.

#pragma once

#include <metal_stdlib>

#include "kernels/metal/tiled_matmul_params.h"

namespace qmm {
namespace tiled_matmul {

// `Loader` has
//   void load(threadgroup float* w_tile, int n0, int k0, uint thread_index)
// filling the w tile (row stride tile_stride(tile)) for columns n0.. and K
// values k0.. . `tiles` holds threadgroup_floats(tile) floats.
template <int tile, typename T, typename Loader>
METAL_FUNC void tiled_matmul(
    const device T* x,
    thread const Loader& loader,
    const device T* bias,
    device T* y,
    const int M,
    const int N,
    const int K,
    const bool has_bias,
    threadgroup float* tiles,
    const uint3 threadgroup_id,
    const uint thread_index,
    const uint simd_group) {
  constexpr int kStride = tile_stride(tile);
  constexpr int kFragments = fragments_per_simdgroup(tile);
  threadgroup float* x_tile = tiles;
  threadgroup float* w_tile = tiles + x_tile_floats(tile);
  threadgroup float* y_tile = tiles;
  const int m0 = threadgroup_id.y * tile;
  const int n0 = threadgroup_id.x * tile;
  // This SIMD group's quarter of the tile.
  const int quarter_m = (simd_group / kSimdgroupsN) * kFragments * kFragment;
  const int quarter_n = (simd_group % kSimdgroupsN) * kFragments * kFragment;

  metal::simdgroup_matrix<float, 8, 8> acc[kFragments][kFragments];
  for (int i = 0; i < kFragments; ++i) {
    for (int j = 0; j < kFragments; ++j) {
      acc[i][j] = metal::make_filled_simdgroup_matrix<float, 8, 8>(0.0f);
    }
  }

  for (int k0 = 0; k0 < K; k0 += kTileK) {
    metal::threadgroup_barrier(metal::mem_flags::mem_threadgroup);
    for (int i = thread_index; i < tile * kTileK; i += kThreads) {
      const int m = m0 + i / kTileK;
      const int k = k0 + i % kTileK;
      x_tile[(i / kTileK) * kXTileStride + i % kTileK] =
          m < M && k < K ? float(x[int64_t(m) * K + k]) : 0.0f;
    }
    loader.load(w_tile, n0, k0, thread_index);
    metal::threadgroup_barrier(metal::mem_flags::mem_threadgroup);

    for (int kk = 0; kk < kTileK; kk += kFragment) {
      metal::simdgroup_matrix<float, 8, 8> a[kFragments];
      metal::simdgroup_matrix<float, 8, 8> b[kFragments];
      for (int i = 0; i < kFragments; ++i) {
        metal::simdgroup_load(
            a[i], x_tile, kXTileStride, ulong2(kk, quarter_m + i * kFragment));
        metal::simdgroup_load(
            b[i], w_tile, kStride, ulong2(quarter_n + i * kFragment, kk));
      }
      for (int i = 0; i < kFragments; ++i) {
        for (int j = 0; j < kFragments; ++j) {
          metal::simdgroup_multiply_accumulate(
              acc[i][j], a[i], b[j], acc[i][j]);
        }
      }
    }
  }

  // The output tile overwrites the x and w tiles: every SIMD group must be
  // done reading them.
  metal::threadgroup_barrier(metal::mem_flags::mem_threadgroup);
  for (int i = 0; i < kFragments; ++i) {
    for (int j = 0; j < kFragments; ++j) {
      metal::simdgroup_store(
          acc[i][j],
          y_tile,
          kStride,
          ulong2(quarter_n + j * kFragment, quarter_m + i * kFragment));
    }
  }
  metal::threadgroup_barrier(metal::mem_flags::mem_threadgroup);
  for (int i = thread_index; i < tile * tile; i += kThreads) {
    const int m = m0 + i / tile;
    const int n = n0 + i % tile;
    if (m < M && n < N) {
      const float value = y_tile[(i / tile) * kStride + i % tile];
      y[int64_t(m) * N + n] = T(has_bias ? value + float(bias[n]) : value);
    }
  }
}

} // namespace tiled_matmul
} // namespace qmm
