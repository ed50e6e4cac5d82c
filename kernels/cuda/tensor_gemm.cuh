// Copyright © 2026 mlx-qmm contributors.
//
// The tensor-core GEMM (float16 / bfloat16, transposed weights w [N, K]):
// out = x @ W^T (+ bias) with W dense or affine quantized; tiles and shared
// memory in tensor_tiles.h.
//
// Per K step of kBlockK values, with kStages steps in flight:
//   1. cp.async copies the x tile and the w tile (raw bit stream when
//      quantized) into the stage kStages - 1 steps ahead;
//   2. quantized only: the block unpacks this step's bit stream into one
//      shared w tile of T, eight values a thread at a time (w_hat = s q + b
//      in float32, rounded once, as mx.dequantize does), then synchronises;
//   3. each warp loads its fragments with ldmatrix and issues
//      m16n8k16 products into float32 accumulators.
// Both tiles are stored k-contiguous ([rows][kBlockK + pad]), which is
// exactly the row-major A and column-major B fragment order of mma, so plain
// (non-transposing) ldmatrix serves both.
//
// Edges: rows of x past M, rows of w past N and values past K are
// zero-filled by the copies (and by the unpacker), so partial tiles need no
// other branch than the epilogue's store guard. K must be a multiple of 8
// and every operand 16-byte aligned (the launch plan checks).

#pragma once

#include "kernels/cuda/affine_unpack.cuh"
#include "kernels/cuda/float_types.cuh"
#include "kernels/cuda/mma.cuh"
#include "kernels/cuda/tensor_tiles.h"

namespace mlx_qmm::cuda {

// f(i) for i < kCount spread over the block's threads, unrolled.
template <int kCount, int kThreads, class F>
__device__ __forceinline__ void for_each_slot(int tid, F&& f) {
#pragma unroll
  for (int j = 0; j < (kCount + kThreads - 1) / kThreads; ++j) {
    const int i = tid + j * kThreads;
    if (kCount % kThreads == 0 || i < kCount) {
      f(i);
    }
  }
}

// bits == 0: dense weights.
template <typename T, int bits, TensorTile tile>
__global__ void __launch_bounds__(tensor_tile_shape(tile).threads())
    tensor_gemm(const MatmulArgs a) {
  constexpr TensorTileShape kShape = tensor_tile_shape(tile);
  constexpr int BM = kShape.block_m;
  constexpr int BN = kShape.block_n;
  constexpr int BK = kTensorBlockK;
  constexpr int kStages = kShape.stages;
  constexpr int kThreads = kShape.threads();
  constexpr int kWarpM = BM / kShape.warps_m;
  constexpr int kWarpN = BN / kShape.warps_n;
  constexpr int MI = kWarpM / 16;
  constexpr int NI = kWarpN / 8;
  static_assert(NI % 2 == 0, "B fragments load two n8 blocks at a time");
  constexpr int RE = tensor_row_elements();
  constexpr bool kQuantized = bits != 0;
  constexpr int PW = kQuantized ? packed_row_words(bits) : 0;
  constexpr int kChunks = BK / 8; // 16-byte chunks of a tile row

  extern __shared__ __align__(16) unsigned char shared[];
  T* x_tiles = reinterpret_cast<T*>(shared);
  unsigned char* w_region = shared + kStages * BM * RE * sizeof(T);
  // Quantized: the raw stages, then the one dequantized tile.
  uint32_t* packed_tiles = reinterpret_cast<uint32_t*>(w_region);
  T* dense_tiles = reinterpret_cast<T*>(w_region);
  T* w_hat = reinterpret_cast<T*>(w_region + kStages * BN * PW * 4);
  // [stage][row][group of the step][scale, bias]
  constexpr int kGroups = kTensorGroupsPerStep;
  T* scale_tiles = w_hat + BN * RE;

  const int tid = threadIdx.x;
  const int lane = tid % 32;
  const int warp = tid / 32;
  const int warp_m = warp / kShape.warps_n;
  const int warp_n = warp % kShape.warps_n;
  const int m0 = blockIdx.y * BM;
  const int n0 = blockIdx.x * BN;
  const int k_steps = (a.k + BK - 1) / BK;
  const T* x = static_cast<const T*>(a.x);

  auto load_step = [&](int stage, int step) {
    const int k0 = step * BK;
    T* xs = x_tiles + stage * BM * RE;
    for_each_slot<BM * kChunks, kThreads>(tid, [&](int i) {
      const int r = i / kChunks;
      const int k = k0 + (i % kChunks) * 8;
      const bool valid = m0 + r < a.m && k < a.k;
      copy_async<16>(
          xs + r * RE + (i % kChunks) * 8,
          valid ? x + static_cast<int64_t>(m0 + r) * a.k + k : x,
          valid);
    });
    if constexpr (!kQuantized) {
      const T* w = static_cast<const T*>(a.w);
      T* ws = dense_tiles + stage * BN * RE;
      for_each_slot<BN * kChunks, kThreads>(tid, [&](int i) {
        const int r = i / kChunks;
        const int k = k0 + (i % kChunks) * 8;
        const bool valid = n0 + r < a.n && k < a.k;
        copy_async<16>(
            ws + r * RE + (i % kChunks) * 8,
            valid ? w + static_cast<int64_t>(n0 + r) * a.k + k : w,
            valid);
      });
    } else {
      // 4- and 8-bit rows are whole 16-byte copies (K is a multiple of
      // 32); other widths are only 4-byte aligned.
      constexpr int kCopyBytes = (bits == 4 || bits == 8) ? 16 : 4;
      constexpr int kCopyWords = kCopyBytes / 4;
      constexpr int kCopies = BK * bits / 32 / kCopyWords;
      const uint32_t* w = static_cast<const uint32_t*>(a.w);
      const int64_t row_words = static_cast<int64_t>(a.k) * bits / 32;
      const int64_t first_word = static_cast<int64_t>(k0) * bits / 32;
      uint32_t* ws = packed_tiles + stage * BN * PW;
      for_each_slot<BN * kCopies, kThreads>(tid, [&](int i) {
        const int r = i / kCopies;
        const int64_t word = first_word + (i % kCopies) * kCopyWords;
        const bool valid = n0 + r < a.n && word < row_words;
        copy_async<kCopyBytes>(
            ws + r * PW + (i % kCopies) * kCopyWords,
            valid ? w + static_cast<int64_t>(n0 + r) * row_words + word : w,
            valid);
      });
    }
  };

  // Quantized: the scales and biases of a step are read into registers
  // with ordinary loads one iteration before they are stored to their
  // stage, so their latency overlaps a whole step instead of stalling the
  // unpacker (cp.async cannot copy the 2-byte elements).
  constexpr int kScaleSlots = (BN * kGroups + kThreads - 1) / kThreads;
  T pending_scales[kScaleSlots];
  T pending_biases[kScaleSlots];
  auto fetch_scales = [&](int step) {
    const T* scales = static_cast<const T*>(a.scales);
    const T* biases = static_cast<const T*>(a.biases);
    const int groups = a.k >> a.group_size_log2;
    const int first_group = (step * BK) >> a.group_size_log2;
#pragma unroll
    for (int j = 0; j < kScaleSlots; ++j) {
      const int i = tid + j * kThreads;
      const int n = n0 + i / kGroups;
      const int g = first_group + i % kGroups;
      const bool valid = i < BN * kGroups && n < a.n && g < groups;
      const int64_t at = static_cast<int64_t>(n) * groups + g;
      pending_scales[j] = valid ? scales[at] : from_float<T>(0.0f);
      pending_biases[j] = valid ? biases[at] : from_float<T>(0.0f);
    }
  };
  auto store_scales = [&](int stage) {
    T* slots = scale_tiles + stage * BN * kGroups * 2;
#pragma unroll
    for (int j = 0; j < kScaleSlots; ++j) {
      const int i = tid + j * kThreads;
      if (i < BN * kGroups) {
        slots[2 * i] = pending_scales[j];
        slots[2 * i + 1] = pending_biases[j];
      }
    }
  };

  // Quantized: this step's bit stream -> w_hat, one octet (8 values, one
  // 16-byte store) a thread at a time.
  auto dequantize_step = [&](int stage, int step) {
    const uint32_t* ws = packed_tiles + stage * BN * PW;
    const T* tile_scales = scale_tiles + stage * BN * kGroups * 2;
    const int k0 = step * BK;
    const int first_group = k0 >> a.group_size_log2;
    for_each_slot<BN * kChunks, kThreads>(tid, [&](int i) {
      const int r = i / kChunks;
      const int octet = i % kChunks;
      const int n = n0 + r;
      const int k = k0 + octet * 8;
      uint4 values = make_uint4(0, 0, 0, 0);
      if (n < a.n && k < a.k) {
        const int g = (k >> a.group_size_log2) - first_group;
        const float s = to_float(tile_scales[(r * kGroups + g) * 2]);
        const float b = to_float(tile_scales[(r * kGroups + g) * 2 + 1]);
        float q[8];
        unpack_octet<bits>(row_octet_window<bits>(ws + r * PW, octet), q);
        values.x = pack2<T>(fmaf(s, q[0], b), fmaf(s, q[1], b));
        values.y = pack2<T>(fmaf(s, q[2], b), fmaf(s, q[3], b));
        values.z = pack2<T>(fmaf(s, q[4], b), fmaf(s, q[5], b));
        values.w = pack2<T>(fmaf(s, q[6], b), fmaf(s, q[7], b));
      }
      *reinterpret_cast<uint4*>(w_hat + r * RE + octet * 8) = values;
    });
  };

  float acc[MI][NI][4] = {};

#pragma unroll
  for (int s = 0; s < kStages - 1; ++s) {
    if (s < k_steps) {
      load_step(s, s);
      if constexpr (kQuantized) {
        fetch_scales(s);
        store_scales(s);
      }
    }
    copy_async_commit();
  }

  for (int step = 0; step < k_steps; ++step) {
    copy_async_wait<kStages - 2>();
    // Also: every warp is done with the stage (and w_hat) of step - 1, and
    // with the scales of step - 2, whose slot the scales of step + kStages
    // - 2 (fetched last iteration) take now.
    __syncthreads();
    if constexpr (kQuantized) {
      if (step >= 1 && step + kStages - 2 < k_steps) {
        store_scales((step + kStages - 2) % kStages);
      }
    }
    const int next = step + kStages - 1;
    if (next < k_steps) {
      load_step(next % kStages, next);
      if constexpr (kQuantized) {
        fetch_scales(next);
      }
    }
    copy_async_commit();

    const int stage = step % kStages;
    const T* ws;
    if constexpr (kQuantized) {
      dequantize_step(stage, step);
      __syncthreads();
      ws = w_hat;
    } else {
      ws = dense_tiles + stage * BN * RE;
    }
    const T* xs = x_tiles + stage * BM * RE;

#pragma unroll
    for (int kk = 0; kk < BK / 16; ++kk) {
      uint32_t af[MI][4];
      uint32_t bf[NI][2];
#pragma unroll
      for (int mi = 0; mi < MI; ++mi) {
        const int row = warp_m * kWarpM + mi * 16 + lane % 16;
        load_matrix_x4(af[mi], xs + row * RE + kk * 16 + (lane / 16) * 8);
      }
#pragma unroll
      for (int nj = 0; nj < NI / 2; ++nj) {
        const int row = warp_n * kWarpN + nj * 16 + lane % 8 + (lane / 16) * 8;
        uint32_t r[4];
        load_matrix_x4(r, ws + row * RE + kk * 16 + ((lane / 8) % 2) * 8);
        bf[2 * nj][0] = r[0];
        bf[2 * nj][1] = r[1];
        bf[2 * nj + 1][0] = r[2];
        bf[2 * nj + 1][1] = r[3];
      }
#pragma unroll
      for (int mi = 0; mi < MI; ++mi) {
#pragma unroll
        for (int ni = 0; ni < NI; ++ni) {
          mma_16816<T>(acc[mi][ni], af[mi], bf[ni]);
        }
      }
    }
  }

  // Accumulator (mi, ni) holds rows lane / 4 and lane / 4 + 8 of its
  // 16 x 8 tile, columns 2 (lane % 4) and the next.
  const T* bias = static_cast<const T*>(a.bias);
  T* out = static_cast<T*>(a.out);
#pragma unroll
  for (int ni = 0; ni < NI; ++ni) {
    const int n = n0 + warp_n * kWarpN + ni * 8 + (lane % 4) * 2;
    const bool second = n + 1 < a.n;
    float b0 = 0.0f;
    float b1 = 0.0f;
    if (bias && n < a.n) {
      b0 = to_float(bias[n]);
      b1 = second ? to_float(bias[n + 1]) : 0.0f;
    }
#pragma unroll
    for (int mi = 0; mi < MI; ++mi) {
#pragma unroll
      for (int half = 0; half < 2; ++half) {
        const int m = m0 + warp_m * kWarpM + mi * 16 + lane / 4 + 8 * half;
        if (m < a.m && n < a.n) {
          store2(
              out + static_cast<int64_t>(m) * a.n + n,
              acc[mi][ni][2 * half] + b0,
              acc[mi][ni][2 * half + 1] + b1,
              second);
        }
      }
    }
  }
}

} // namespace mlx_qmm::cuda
