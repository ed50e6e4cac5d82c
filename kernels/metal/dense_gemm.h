// Copyright © 2026 mlx-qmm contributors.
//
// Tiled dense matmul (see tiled_matmul.h for the tile loop):
// y = x @ w.T (transpose, w [N, K]) or x @ w (w [K, N]), + bias.
//
// The w tile is copied from w by all threads, [k][n] in the tile: for
// x @ w.T consecutive threads read consecutive k of one row of w, for x @ w
// consecutive n of one row, so each SIMD-group-sized run of loads is
// contiguous.

#pragma once

#include <metal_stdlib>

#include "kernels/metal/tiled_matmul.h"

namespace qmm {
namespace dense_gemm {

using namespace tiled_matmul;

template <typename T, bool transpose, int tile>
struct DenseTileLoader {
  const device T* w;
  int N;
  int K;

  METAL_FUNC void load(
      threadgroup float* w_tile,
      const int n0,
      const int k0,
      const uint thread_index) const {
    constexpr int kStride = tile_stride(tile);
    // The fast index runs along w's rows: k for x @ w.T, n for x @ w.
    constexpr int kFast = transpose ? kTileK : tile;
    for (int i = thread_index; i < kTileK * tile; i += kThreads) {
      const int fast = i % kFast;
      const int slow = i / kFast;
      const int k = transpose ? fast : slow;
      const int n = transpose ? slow : fast;
      const bool inside = k0 + k < K && n0 + n < N;
      const int64_t at = transpose ? int64_t(n0 + n) * K + k0 + k
                                   : int64_t(k0 + k) * N + n0 + n;
      w_tile[k * kStride + n] = inside ? float(w[at]) : 0.0f;
    }
  }
};

} // namespace dense_gemm
} // namespace qmm
