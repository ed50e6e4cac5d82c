// Copyright © 2026 mlx-qmm contributors.
//
// Matrix-vector products for up to kMatvecMaxRows rows of x against
// transposed weights (w [N, K]): decode, where the time is one pass over
// the weights and the goal is the memory bandwidth.
//
// Layout of the work. A warp owns kMatvecRowsPerWarp consecutive rows of w
// and walks their K axis in chunks (quantized: 32 values, `bits` words, or
// 16 values at 8 bits, matvec_chunk_values; dense: 8 elements, 16 or 32
// bytes); lane l takes chunks l, l + 32, l + 64, ..., so each load
// instruction of the warp reads 32 consecutive chunks of one row (512
// bytes at 4 and 8 bits: coalesced 16-byte loads). A lane first issues the
// loads of kUnroll chunks for all its rows, then computes. Each x chunk a
// lane loads (L1 resident: x is small) serves all the warp's rows. The
// lanes' partial sums meet in a butterfly reduction at the end.
//
// Quantized chunks never unpack to memory: per chunk (inside one group) a
// lane accumulates sum x * q with q the raw integer, and folds in the
// group's scale and bias once:
//   sum_k x_k (s q_k + b) = s * sum_k x_k q_k + b * sum_k x_k.

#pragma once

#include "kernels/cuda/affine_unpack.cuh"
#include "kernels/cuda/float_types.cuh"
#include "kernels/cuda/launch_params.h"

namespace mlx_qmm::cuda {

// The `words_held` words of one packed block of values (`bits` words for a
// 32-value block), with the widest loads the block's alignment allows: a
// block starts at byte 4 * words_held * b of a row that starts at byte
// 4 * bits * K / 32 (K a multiple of 32).
template <int words_held>
__device__ __forceinline__ void load_block_words(
    const uint32_t* src,
    uint32_t (&words)[words_held]) {
  if constexpr (words_held % 4 == 0) {
#pragma unroll
    for (int i = 0; i < words_held / 4; ++i) {
      const uint4 v = load_weights_16(src + 4 * i);
      words[4 * i] = v.x;
      words[4 * i + 1] = v.y;
      words[4 * i + 2] = v.z;
      words[4 * i + 3] = v.w;
    }
  } else if constexpr (words_held % 2 == 0) {
#pragma unroll
    for (int i = 0; i < words_held / 2; ++i) {
      const uint2 v = load_weights_8(src + 2 * i);
      words[2 * i] = v.x;
      words[2 * i + 1] = v.y;
    }
  } else {
#pragma unroll
    for (int i = 0; i < words_held; ++i) {
      words[i] = load_weights_4(src + i);
    }
  }
}

// Quantized rows: a chunk is `values` values of a row inside one group
// (32: one block, `bits` words; fewer where a block is wider than one
// 16-byte load) and its group's scale and bias.
template <typename T, int bits, int values = 32>
struct AffineRows {
  static constexpr int kChunkValues = values;
  static constexpr int kWords = values * bits / 32;
  static_assert(
      values % 8 == 0 && 32 % values == 0 && kWords * 32 == values * bits);
  // Chunks a lane loads before computing: registers allow four chunks of
  // up to four words (one 16-byte load each) and two of the wider ones.
  // (The streaming kernel loads one: occupancy hides the latency there.)
  static constexpr int kUnroll = kWords <= 4 ? 4 : 2;

  struct Chunk {
    uint32_t words[kWords];
    float scale;
    float bias;
  };

  __device__ static Chunk load(const MatmulArgs& a, int row, int chunk) {
    Chunk c;
    const int64_t row_words = static_cast<int64_t>(a.k) * bits / 32;
    const uint32_t* src = static_cast<const uint32_t*>(a.w) + row * row_words +
        static_cast<int64_t>(chunk) * kWords;
    load_block_words<kWords>(src, c.words);
    const int groups = a.k >> a.group_size_log2;
    const int64_t g = static_cast<int64_t>(row) * groups +
        ((chunk * kChunkValues) >> a.group_size_log2);
    c.scale = to_float(static_cast<const T*>(a.scales)[g]);
    c.bias = to_float(static_cast<const T*>(a.biases)[g]);
    return c;
  }

  template <int kRows, int kRowsPerWarp>
  __device__ static void accumulate(
      const MatmulArgs& a,
      const Chunk (&chunks)[kRowsPerWarp],
      int chunk,
      float (&acc)[kRows][kRowsPerWarp]) {
    const T* x = static_cast<const T*>(a.x) + chunk * kChunkValues;
    float dot[kRows][kRowsPerWarp] = {};
    float x_sum[kRows] = {};
#pragma unroll
    for (int i = 0; i < kChunkValues / 8; ++i) {
      float q[kRowsPerWarp][8];
#pragma unroll
      for (int r = 0; r < kRowsPerWarp; ++r) {
        unpack_octet<bits>(block_octet_window<bits>(chunks[r].words, i), q[r]);
      }
#pragma unroll
      for (int m = 0; m < kRows; ++m) {
        if (m < a.m) {
          float xv[8];
          load8(x + static_cast<int64_t>(m) * a.k + 8 * i, xv);
#pragma unroll
          for (int t = 0; t < 8; ++t) {
            x_sum[m] += xv[t];
#pragma unroll
            for (int r = 0; r < kRowsPerWarp; ++r) {
              dot[m][r] = fmaf(xv[t], q[r][t], dot[m][r]);
            }
          }
        }
      }
    }
#pragma unroll
    for (int m = 0; m < kRows; ++m) {
#pragma unroll
      for (int r = 0; r < kRowsPerWarp; ++r) {
        acc[m][r] = fmaf(
            chunks[r].scale,
            dot[m][r],
            fmaf(chunks[r].bias, x_sum[m], acc[m][r]));
      }
    }
  }
};

// The chunk of the matrix-vector kernels' quantized rows: 16 values at 8
// bits, so that a lane's chunk is one 16-byte load and each load
// instruction of a warp reads 512 consecutive bytes of a row. With whole
// 32-byte blocks a warp's two loads each took every other 16 bytes of
// 1 KB, and every 32-byte sector was requested from L2 twice.
constexpr int matvec_chunk_values(int bits) {
  return bits == 8 ? 16 : 32;
}

// Dense rows: a chunk is 8 elements (one 16-byte load, two for float32).
template <typename T>
struct DenseRows {
  static constexpr int kChunkValues = 8;
  static constexpr int kUnroll = sizeof(T) == 2 ? 4 : 2;

  using Chunk = Raw8<T>;

  __device__ static Chunk load(const MatmulArgs& a, int row, int chunk) {
    return load_raw8(
        static_cast<const T*>(a.w) + static_cast<int64_t>(row) * a.k +
        chunk * kChunkValues);
  }

  template <int kRows, int kRowsPerWarp>
  __device__ static void accumulate(
      const MatmulArgs& a,
      const Chunk (&chunks)[kRowsPerWarp],
      int chunk,
      float (&acc)[kRows][kRowsPerWarp]) {
    float wv[kRowsPerWarp][8];
#pragma unroll
    for (int r = 0; r < kRowsPerWarp; ++r) {
      widen8(chunks[r], wv[r]);
    }
    const T* x = static_cast<const T*>(a.x) + chunk * kChunkValues;
#pragma unroll
    for (int m = 0; m < kRows; ++m) {
      if (m < a.m) {
        float xv[8];
        load8(x + static_cast<int64_t>(m) * a.k, xv);
#pragma unroll
        for (int r = 0; r < kRowsPerWarp; ++r) {
#pragma unroll
          for (int t = 0; t < 8; ++t) {
            acc[m][r] = fmaf(xv[t], wv[r][t], acc[m][r]);
          }
        }
      }
    }
  }
};

// out[m, n] for m < a.m <= kRows, n < a.n; a.k a multiple of the chunk.
// The two kernels below differ in their register bound and in the chunks
// a lane loads before computing (Rows::kUnroll, or one when streaming).
template <typename T, class Rows, int kRows, bool kStreaming>
__device__ __forceinline__ void matvec_rows(const MatmulArgs& a) {
  constexpr int R = kMatvecRowsPerWarp;
  constexpr int U = kStreaming ? 1 : Rows::kUnroll;
  const int lane = threadIdx.x % 32;
  const int first_row =
      blockIdx.x * kMatvecRowsPerBlock + (threadIdx.x / 32) * R;
  const int chunks = a.k / Rows::kChunkValues;

  // Each lane issues the loads of kUnroll chunks of all its rows before it
  // computes any: kUnroll * kMatvecRowsPerWarp independent 16-byte loads
  // in flight per lane. (Issuing the next batch's loads before computing
  // the current one measured slower on the H100: 24 us against 19 us at
  // 14336 x 4096, 4 bits; see bench/cuda_kernels.md.)
  float acc[kRows][R] = {};
  for (int c0 = lane; c0 < chunks; c0 += 32 * U) {
    typename Rows::Chunk loaded[U][R];
#pragma unroll
    for (int u = 0; u < U; ++u) {
      // Past the last chunk or row, reload a valid one (its result is
      // dropped) so that the loads stay unconditional.
      const int c = min(c0 + 32 * u, chunks - 1);
#pragma unroll
      for (int r = 0; r < R; ++r) {
        loaded[u][r] = Rows::load(a, min(first_row + r, a.n - 1), c);
      }
    }
#pragma unroll
    for (int u = 0; u < U; ++u) {
      if (c0 + 32 * u < chunks) {
        Rows::template accumulate<kRows, R>(a, loaded[u], c0 + 32 * u, acc);
      }
    }
  }

#pragma unroll
  for (int m = 0; m < kRows; ++m) {
#pragma unroll
    for (int r = 0; r < R; ++r) {
#pragma unroll
      for (int offset = 16; offset > 0; offset /= 2) {
        acc[m][r] += __shfl_xor_sync(0xFFFFFFFFu, acc[m][r], offset);
      }
    }
  }
  // Every lane holds every sum; lane m * R + r writes out[m, row r].
#pragma unroll
  for (int m = 0; m < kRows; ++m) {
#pragma unroll
    for (int r = 0; r < R; ++r) {
      const int n = first_row + r;
      if (lane == m * R + r && m < a.m && n < a.n) {
        float v = acc[m][r];
        if (a.bias) {
          v += to_float(static_cast<const T*>(a.bias)[n]);
        }
        static_cast<T*>(a.out)[static_cast<int64_t>(m) * a.n + n] =
            from_float<T>(v);
      }
    }
  }
}

// One row of 16-bit x: at most 65536 / (kMatvecBlocksPerSM * kMatvecWarps
// * 32) registers. float32 x and more rows take what they need (under the
// bound float32 spilled).
template <typename T, class Rows, int kRows>
__global__ void __launch_bounds__(
    kMatvecWarps * 32,
    kRows == 1 && sizeof(T) == 2 ? kMatvecBlocksPerSM : 1)
    matvec(const MatmulArgs a) {
  matvec_rows<T, Rows, kRows, false>(a);
}

// matvec_streams cases (launch_params.h).
template <typename T, class Rows, int kRows>
__global__ void __launch_bounds__(kMatvecWarps * 32, kMatvecStreamingBlocks)
    matvec_streaming(const MatmulArgs a) {
  matvec_rows<T, Rows, kRows, true>(a);
}

} // namespace mlx_qmm::cuda
