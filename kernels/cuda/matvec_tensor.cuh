// Copyright © 2026 mlx-qmm contributors.
//
// Decode (one row of x) against 4-bit weights, float16 / bfloat16: the
// streaming matrix-vector kernel's memory pattern (matvec.cuh: a warp owns
// kMatvecRowsPerWarp rows, lane l loads the 16-byte block l, l + 32, ... of
// each, 512 contiguous bytes of a row a load instruction), with three
// changes:
//  - the products on tensor cores: 3.3 instructions a weight value where
//    the CUDA-core arithmetic took 5.1 (Nsight Compute: 6.0 M warp
//    instructions against 9.4 M at 14336 x 4096);
//  - each block's scales and biases copied into shared memory first, in 16
//    bytes a thread (its rows' share of each array is one contiguous run),
//    where each lane loaded 2 bytes of each row a trip; that pattern took a
//    pass over these weights from 12.4 to 15.2 us in
//    experiments/dram_patterns.cu;
//  - the next trip's words loaded before this trip's products, at 72
//    registers and kMatvecTensorBlocksPerSM blocks an SM (7: 14336 rows are
//    still one wave), where the streaming kernel had one trip in flight.
//
// The product is a diagonal. An m16n8k16 product sums, for entry (m, n),
// over 16 positions k; lane (g = lane / 4, t = lane % 4) holds A at rows g
// and g + 8 and B at column g, both at positions 2t, 2t + 1, 2t + 8,
// 2t + 9. Here every lane puts its own values there: A rows g and g + 8
// get 4 dequantized weights each of its block of two of the warp's rows,
// and B column g the 4 values of x at the same places of K. Entries (g, g)
// and (g + 8, g) then sum lanes (g, 0..3)'s 16 products of each row; the
// other entries mix one lane's x with another lane's weights and are
// dropped. Each lane's block is 32 values: 8 products a row pair, 16 a
// trip for the warp's four rows.
//
// Within a block, word j holds values 8j .. 8j + 7 (nibble i is value
// 8j + i); shifted right by 4i and masked it yields the pair (i, i + 4),
// which dequantize_nibble_pair turns into s q + z in T (one rounding, as
// skinny_gemm). So word j makes two products: pairs 0, 1 (values 0, 4 and
// 1, 5) and pairs 2, 3 (2, 6 and 3, 7), with x's octet permuted to match
// (nibble_pair_order). The scale can't wait until after the product (one
// LOP3 a pair instead of three instructions): the four lanes of a column
// hold four consecutive blocks, two or four groups at group sizes 32 and
// 64.

#pragma once

#include "kernels/cuda/affine_unpack.cuh"
#include "kernels/cuda/float_types.cuh"
#include "kernels/cuda/launch_params.h"
#include "kernels/cuda/matvec.cuh"
#include "kernels/cuda/mma.cuh"

namespace mlx_qmm::cuda {

// A lane's 32-value block of one row: its 4 words, and its group's scale
// and bias as a pair of T each (the raw 16 bits twice).
struct MatvecTensorChunk {
  uint32_t words[4];
  uint32_t scale2;
  uint32_t bias2;
};

// Where one row's blocks are: its words in global memory, its scales and
// biases in the block's shared copy.
struct MatvecTensorRow {
  const uint32_t* words;
  const uint16_t* scales; // shared
  const uint16_t* biases; // shared
};

// The scales and biases of the block's rows of W into shared memory,
// [scale, bias][row][group]: the block's rows are consecutive, so each
// array's share is one contiguous run (16-byte aligned: a block's 16 rows
// of g groups start at a multiple of 32 g bytes),
// copied 16 bytes a thread, the run's tail (where N ends it off a 16-byte
// boundary) 2 bytes a thread. Why: loaded per lane and trip, 2 bytes of
// each of 4 rows, they took a pass over the 4-bit 14336 x 4096 weights in
// this pattern from 12.4 to 15.2 us (experiments/dram_patterns.cu).
__device__ __forceinline__ void copy_block_affine(
    const MatmulArgs& a,
    int row0,
    uint16_t* shared_scales,
    uint16_t* shared_biases) {
  constexpr int kPieceValues = 8;
  const int groups = a.k >> a.group_size_log2;
  const int rows = min(kMatvecRowsPerBlock, a.n - row0);
  const int values = rows * groups;
  const int pieces = values / kPieceValues;
  const int64_t first = static_cast<int64_t>(row0) * groups;
  const uint16_t* scales = static_cast<const uint16_t*>(a.scales) + first;
  const uint16_t* biases = static_cast<const uint16_t*>(a.biases) + first;
  for (int i = threadIdx.x; i < pieces; i += blockDim.x) {
    copy_async<16>(
        shared_scales + i * kPieceValues, scales + i * kPieceValues, true);
    copy_async<16>(
        shared_biases + i * kPieceValues, biases + i * kPieceValues, true);
  }
  copy_async_commit();
  const int tail = pieces * kPieceValues + threadIdx.x;
  if (tail < values) {
    shared_scales[tail] = __ldg(scales + tail);
    shared_biases[tail] = __ldg(biases + tail);
  }
}

// The products of one trip: each lane's block `chunk` of the warp's rows
// against x (zeros for x where the lane is past the last block).
template <typename T, int R>
__device__ __forceinline__ void matvec_tensor_trip(
    const MatmulArgs& a,
    const MatvecTensorChunk (&loaded)[R],
    int chunk,
    bool valid,
    float (&c)[R / 2][4]) {
  const uint4* x = reinterpret_cast<const uint4*>(
      static_cast<const T*>(a.x) + static_cast<int64_t>(chunk) * 32);
#pragma unroll
  for (int j = 0; j < 4; ++j) {
    const uint4 u = valid ? __ldg(x + j) : make_uint4(0, 0, 0, 0);
    // x pairs (0 4) (1 5) (2 6) (3 7) of octet j.
    uint32_t xp[4];
    nibble_pair_order(u.x, u.z, xp[0], xp[1]);
    nibble_pair_order(u.y, u.w, xp[2], xp[3]);
#pragma unroll
    for (int p = 0; p < 2; ++p) {
      const uint32_t b[2] = {xp[2 * p], xp[2 * p + 1]};
#pragma unroll
      for (int h = 0; h < R / 2; ++h) {
        // Rows 2h (A rows g) and 2h + 1 (A rows g + 8).
        const MatvecTensorChunk& w0 = loaded[2 * h];
        const MatvecTensorChunk& w1 = loaded[2 * h + 1];
        const uint32_t af[4] = {
            dequantize_nibble_pair<T>(
                w0.words[j] >> (8 * p), w0.scale2, w0.bias2),
            dequantize_nibble_pair<T>(
                w1.words[j] >> (8 * p), w1.scale2, w1.bias2),
            dequantize_nibble_pair<T>(
                w0.words[j] >> (8 * p + 4), w0.scale2, w0.bias2),
            dequantize_nibble_pair<T>(
                w1.words[j] >> (8 * p + 4), w1.scale2, w1.bias2)};
        mma_16816<T>(c[h], af, b);
      }
    }
  }
}

// out[0, n] for kMatvecRowsPerBlock rows of W; M = 1, K a multiple of 32.
template <typename T>
__global__ void __launch_bounds__(kMatvecWarps * 32, kMatvecTensorBlocksPerSM)
    matvec_tensor(const MatmulArgs a) {
  constexpr int R = kMatvecRowsPerWarp;
  const int lane = threadIdx.x % 32;
  const int g = lane / 4;
  const int t = lane % 4;
  const int row0 = blockIdx.x * kMatvecRowsPerBlock;
  const int local_row = (threadIdx.x / 32) * R;
  const int first_row = row0 + local_row;
  const int chunks = a.k / 32;

  extern __shared__ __align__(16) uint16_t shared_affine[];
  const int groups = a.k >> a.group_size_log2;
  uint16_t* shared_scales = shared_affine;
  uint16_t* shared_biases = shared_affine + kMatvecRowsPerBlock * groups;
  const int64_t row_words = static_cast<int64_t>(a.k) / 8;
  MatvecTensorRow rows[R];
#pragma unroll
  for (int r = 0; r < R; ++r) {
    rows[r].words = static_cast<const uint32_t*>(a.w) +
        min(first_row + r, a.n - 1) * row_words;
    rows[r].scales = shared_scales + (local_row + r) * groups;
    rows[r].biases = shared_biases + (local_row + r) * groups;
  }

  // Lanes past the last block in the last trip load the last block (their
  // products use zeros for x), rows past N the last row (never written),
  // so that the loads stay unconditional. Trip 0's weights are in flight
  // while the block copies its scales and biases.
  auto load_words = [&](int chunk, MatvecTensorChunk(&loaded)[R]) {
#pragma unroll
    for (int r = 0; r < R; ++r) {
      load_block_words<4>(rows[r].words + chunk * 4, loaded[r].words);
    }
  };
  MatvecTensorChunk even[R];
  MatvecTensorChunk odd[R];
  load_words(min(lane, chunks - 1), even);
  copy_block_affine(a, row0, shared_scales, shared_biases);
  copy_async_wait<0>();
  __syncthreads();
  float c[R / 2][4] = {};
  // One trip: its words are in `now`; the next trip's go into `next`
  // before this one's products.
  auto trip =
      [&](int c0, MatvecTensorChunk(&now)[R], MatvecTensorChunk(&next)[R]) {
        if (c0 + 32 < chunks) {
          load_words(min(c0 + 32 + lane, chunks - 1), next);
        }
        const bool valid = c0 + lane < chunks;
        const int chunk = min(c0 + lane, chunks - 1);
        const int group = (chunk * 32) >> a.group_size_log2;
        // __byte_perm selector that repeats bytes 0 and 1.
        constexpr uint32_t kLowHalfTwice = 0x1010u;
#pragma unroll
        for (int r = 0; r < R; ++r) {
          now[r].scale2 = __byte_perm(rows[r].scales[group], 0, kLowHalfTwice);
          now[r].bias2 = __byte_perm(rows[r].biases[group], 0, kLowHalfTwice);
        }
        matvec_tensor_trip<T, R>(a, now, chunk, valid, c);
      };
  for (int c0 = 0; c0 < chunks; c0 += 64) {
    trip(c0, even, odd);
    if (c0 + 32 < chunks) {
      trip(c0 + 32, odd, even);
    }
  }

  // Entries (g, g) and (g + 8, g) of each product: rows 2h and 2h + 1 in
  // lane (g, g / 2), elements g % 2 and 2 + g % 2.
  float sums[R];
#pragma unroll
  for (int r = 0; r < R; ++r) {
    const float* row_pair = c[r / 2] + 2 * (r % 2);
    sums[r] = t == g / 2 ? (g % 2 == 0 ? row_pair[0] : row_pair[1]) : 0.0f;
#pragma unroll
    for (int offset = 16; offset > 0; offset /= 2) {
      sums[r] += __shfl_xor_sync(0xFFFFFFFFu, sums[r], offset);
    }
  }
#pragma unroll
  for (int r = 0; r < R; ++r) {
    const int n = first_row + r;
    if (lane == r && n < a.n) {
      float v = sums[r];
      if (a.bias) {
        v += to_float(static_cast<const T*>(a.bias)[n]);
      }
      static_cast<T*>(a.out)[n] = from_float<T>(v);
    }
  }
}

} // namespace mlx_qmm::cuda
