// Copyright © 2026 mlx-qmm contributors.
//
// Tiled affine quantized matmul for more rows of x:
//   y = x @ dequantize(w).T (transpose) or x @ dequantize(w), + bias
//
// Threadgroup (i, j) computes the kTileM x kTileN tile of y at rows
// j * kTileM, columns i * kTileN, walking K kTileK = 32 values at a time:
//   1. all threads copy the x tile (kTileM x 32) into threadgroup memory as
//      float, zeros past M;
//   2. 32 threads each dequantize one 32-value block of w into the w tile,
//      stored as [k][n] whichever way w is packed: for x @ w.T block j is
//      row n0 + j of w (packed along K) and fills column j; for x @ w it
//      is row k0 + j of w (packed along N) and fills row j. A block lies in
//      one quantization group, so it needs one scale and one bias, and w,
//      scales and biases are each read once per tile of rows;
//   3. the 2 x 2 SIMD groups multiply their 16 x 16 quarters with 8 x 8
//      simdgroup_matrix fragments, accumulating in float.
// The result goes through threadgroup memory to y, guarded at the edges of
// M and N, with the bias added.

#pragma once

#include <metal_stdlib>

#include "kernels/metal/affine_block.h"
#include "kernels/metal/qmm_affine_params.h"

namespace qmm {
namespace qmm_affine {

// Row stride of the x, w and output tiles in threadgroup memory.
QMM_PROGRAM_CONSTANT constexpr int kTileStride = kTileK + kPad;

template <typename T, int group_size, int bits, bool transpose>
METAL_FUNC void load_w_tile(
    const device uint32_t* w,
    const device T* scales,
    const device T* biases,
    threadgroup float* w_tile,
    const int N,
    const int K,
    const int n0,
    const int k0,
    const uint block) {
  // The block's row of w, and where the block starts in it.
  const int row = transpose ? n0 + int(block) : k0 + int(block);
  const int rows = transpose ? N : K;
  const int row_length = transpose ? K : N; // values
  const int start = transpose ? k0 : n0;
  // Element (k, n) of the tile: block value c sits at k = c (x @ w.T) or
  // n = c (x @ w).
  const int value_stride = transpose ? kTileStride : 1;
  threadgroup float* out =
      w_tile + (transpose ? int(block) : int(block) * kTileStride);
  if (row >= rows) {
    for (int c = 0; c < 32; ++c) {
      out[c * value_stride] = 0.0f;
    }
    return;
  }
  const int64_t group =
      int64_t(row) * (row_length / group_size) + start / group_size;
  const float scale = float(scales[group]);
  const float bias = float(biases[group]);
  const PackedBlock<bits> q(
      w + int64_t(row) * (row_length * bits / 32) + (start / 32) * bits);
  for (int c = 0; c < 32; ++c) {
    out[c * value_stride] = scale * float(q[c]) + bias;
  }
}

template <typename T, int group_size, int bits, bool transpose>
METAL_FUNC void qmm_affine(
    const device T* x,
    const device uint32_t* w,
    const device T* scales,
    const device T* biases,
    const device T* bias,
    device T* y,
    const int M,
    const int N,
    const int K,
    const bool has_bias,
    threadgroup float* x_tile,
    threadgroup float* w_tile,
    threadgroup float* y_tile,
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
      x_tile[(i / kTileK) * kTileStride + i % kTileK] =
          m < M && k < K ? float(x[int64_t(m) * K + k]) : 0.0f;
    }
    if (thread_index < 32) {
      load_w_tile<T, group_size, bits, transpose>(
          w, scales, biases, w_tile, N, K, n0, k0, thread_index);
    }
    metal::threadgroup_barrier(metal::mem_flags::mem_threadgroup);

    for (int kk = 0; kk < kTileK; kk += kFragment) {
      metal::simdgroup_matrix<float, 8, 8> a[2];
      metal::simdgroup_matrix<float, 8, 8> b[2];
      for (int i = 0; i < 2; ++i) {
        metal::simdgroup_load(
            a[i],
            x_tile,
            kTileStride,
            ulong2(kk, quarter_m + i * kFragment));
        metal::simdgroup_load(
            b[i],
            w_tile,
            kTileStride,
            ulong2(quarter_n + i * kFragment, kk));
      }
      for (int i = 0; i < 2; ++i) {
        for (int j = 0; j < 2; ++j) {
          metal::simdgroup_multiply_accumulate(acc[i][j], a[i], b[j], acc[i][j]);
        }
      }
    }
  }

  for (int i = 0; i < 2; ++i) {
    for (int j = 0; j < 2; ++j) {
      metal::simdgroup_store(
          acc[i][j],
          y_tile,
          kTileStride,
          ulong2(quarter_n + j * kFragment, quarter_m + i * kFragment));
    }
  }
  metal::threadgroup_barrier(metal::mem_flags::mem_threadgroup);
  for (int i = thread_index; i < kTileM * kTileN; i += kThreads) {
    const int m = m0 + i / kTileN;
    const int n = n0 + i % kTileN;
    if (m < M && n < N) {
      const float value = y_tile[(i / kTileN) * kTileStride + i % kTileN];
      y[int64_t(m) * N + n] = T(has_bias ? value + float(bias[n]) : value);
    }
  }
}

} // namespace qmm_affine
} // namespace qmm
