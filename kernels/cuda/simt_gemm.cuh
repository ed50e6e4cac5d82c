// Copyright © 2026 mlx-qmm contributors.
//
// The CUDA-core GEMM: every case the tensor-core and matrix-vector kernels
// do not take (float32, whose products tensor cores would round to tf32;
// non-transposed weights; unaligned operands or K not a multiple of 8). It
// reads W element by element through weight_at, so one kernel serves dense
// and quantized weights, stored [N, K] or [K, N], any bits: correct
// everywhere, fast nowhere in particular.
//
// A block computes a kSimtBlockM x kSimtBlockN tile, a thread 4 x 4 of it,
// from float32 tiles of x and W staged kSimtBlockK values deep.

#pragma once

#include "kernels/cuda/affine_unpack.cuh"
#include "kernels/cuda/float_types.cuh"
#include "kernels/cuda/launch_params.h"

namespace mlx_qmm::cuda {

// W[n, k] as float32, or 0 outside the matrix. When !transpose the stored
// matrix is W^T: rows k, values along n (quantized: packed and grouped along
// n).
template <typename T, bool quantized, bool transpose>
__device__ __forceinline__ float weight_at(const MatmulArgs& a, int n, int k) {
  if (n >= a.n || k >= a.k) {
    return 0.0f;
  }
  const int row = transpose ? n : k;
  const int col = transpose ? k : n;
  const int row_length = transpose ? a.k : a.n;
  if constexpr (!quantized) {
    return to_float(static_cast<const T*>(
        a.w)[static_cast<int64_t>(row) * row_length + col]);
  } else {
    const uint32_t* words = static_cast<const uint32_t*>(a.w) +
        static_cast<int64_t>(row) * row_length * a.bits / 32;
    const uint32_t q = packed_value(words, col, a.bits);
    const int64_t g =
        static_cast<int64_t>(row) * (row_length >> a.group_size_log2) +
        (col >> a.group_size_log2);
    return fmaf(
        to_float(static_cast<const T*>(a.scales)[g]),
        magic_to_float(q),
        to_float(static_cast<const T*>(a.biases)[g]));
  }
}

template <typename T, bool quantized, bool transpose>
__global__ void __launch_bounds__(kSimtThreads) simt_gemm(const MatmulArgs a) {
  constexpr int BM = kSimtBlockM;
  constexpr int BN = kSimtBlockN;
  constexpr int BK = kSimtBlockK;
  constexpr int kPerThread = 4;
  static_assert(
      (BM / kPerThread) * (BN / kPerThread) == kSimtThreads,
      "one thread per 4 x 4 outputs");
  // Padded so that the transposed stores below spread over banks.
  __shared__ float xs[BK][BM + 4];
  __shared__ float ws[BK][BN + 4];

  const int tid = threadIdx.x;
  const int tx = tid % (BN / kPerThread);
  const int ty = tid / (BN / kPerThread);
  const int m0 = blockIdx.y * BM;
  const int n0 = blockIdx.x * BN;
  const T* x = static_cast<const T*>(a.x);

  float acc[kPerThread][kPerThread] = {};
  for (int k0 = 0; k0 < a.k; k0 += BK) {
    for (int i = tid; i < BM * BK; i += kSimtThreads) {
      // Consecutive threads take consecutive k of one row of x (x is
      // row-major) and consecutive positions along W's stored rows.
      const int r = i / BK;
      const int c = i % BK;
      const int m = m0 + r;
      const int k = k0 + c;
      xs[c][r] = (m < a.m && k < a.k)
          ? to_float(x[static_cast<int64_t>(m) * a.k + k])
          : 0.0f;
      if constexpr (transpose) {
        ws[c][r] = weight_at<T, quantized, transpose>(a, n0 + r, k);
      } else {
        const int n = i % BN;
        const int kk = i / BN;
        ws[kk][n] = weight_at<T, quantized, transpose>(a, n0 + n, k0 + kk);
      }
    }
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < BK; ++kk) {
      float xv[kPerThread];
      float wv[kPerThread];
#pragma unroll
      for (int i = 0; i < kPerThread; ++i) {
        xv[i] = xs[kk][ty * kPerThread + i];
        wv[i] = ws[kk][tx * kPerThread + i];
      }
#pragma unroll
      for (int i = 0; i < kPerThread; ++i) {
#pragma unroll
        for (int j = 0; j < kPerThread; ++j) {
          acc[i][j] = fmaf(xv[i], wv[j], acc[i][j]);
        }
      }
    }
    __syncthreads();
  }

  const T* bias = static_cast<const T*>(a.bias);
  T* out = static_cast<T*>(a.out);
#pragma unroll
  for (int i = 0; i < kPerThread; ++i) {
    const int m = m0 + ty * kPerThread + i;
#pragma unroll
    for (int j = 0; j < kPerThread; ++j) {
      const int n = n0 + tx * kPerThread + j;
      if (m < a.m && n < a.n) {
        const float b = bias ? to_float(bias[n]) : 0.0f;
        out[static_cast<int64_t>(m) * a.n + n] = from_float<T>(acc[i][j] + b);
      }
    }
  }
}

} // namespace mlx_qmm::cuda
