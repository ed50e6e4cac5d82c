// Copyright © 2026 mlx-qmm contributors.
//
// The warpgroup GEMM (sm_90a; float16 / bfloat16, dense transposed weights
// w [N, K]): out = x @ w^T (+ bias) on wgmma. Tiles, stages and threads in
// wgmma_tiles.h; the instructions in wgmma.cuh.
//
// Why a producer warpgroup: wgmma runs asynchronously and reads both
// operands from shared memory, so the tensor cores only stay busy if the
// next stage is ready when a product is issued. The tensor-core GEMM of
// tensor_gemm.cuh has every warp copy, wait and then multiply; here one
// warpgroup only copies, up to `stages` K steps ahead, while the other two
// multiply, and the two sides meet only at the mbarriers of a stage:
// full[s] (the stage's copies have landed) and empty[s] (the consumers'
// 256 threads are done reading it).
//
// Producer, per K step j: wait empty[j % stages] (the consumers are done
// with step j - stages), cp.async the x and w tiles of step j into the
// swizzled stage, and arrive on full through the copies themselves
// (cp.async.mbarrier.arrive), so that it never waits for its own copies.
// Consumer warpgroup g, per K step: wait full, fence the copies to the
// async proxy, four wgmma 64 x block_n x 16 over the stage, commit, wait for
// the previous step's products and arrive empty on that step's stage (the
// products of this one are still running). At the end each thread stores
// its accumulators (rows 64 g + ... of the tile) with the bias.
//
// Edges: rows of x past M, rows of w past N and values past K are
// zero-filled by the copies, so partial tiles need no other branch than the
// epilogue's store guard. K must be a multiple of 8 and every operand
// 16-byte aligned (the launch plan checks).
//
// 4- and 8-bit weights have their own kernel, wgmma_affine_gemm.cuh, which
// says why they are wgmma's register operand there.

#pragma once

#include "kernels/cuda/float_types.cuh"
#include "kernels/cuda/mma.cuh"
#include "kernels/cuda/wgmma.cuh"
#include "kernels/cuda/wgmma_tiles.h"

namespace mlx_qmm::cuda {

template <typename T, WgmmaTile tile>
__global__ void __launch_bounds__(kWgmmaThreads, 1)
    wgmma_gemm(const MatmulArgs a) {
#if MLX_QMM_WGMMA
  constexpr int BM = wgmma_x_rows(tile, 0);
  constexpr int BN = wgmma_w_rows(tile, 0);
  constexpr int BK = kWgmmaBlockK;
  constexpr int kStages = wgmma_stages(tile, 0);
  constexpr int kXTileBytes = BM * BK * 2;
  constexpr int kStageBytes = wgmma_stage_bytes(tile, 0);
  constexpr int kProducers = kWgmmaProducerThreads;

  extern __shared__ unsigned char shared_bytes[];
  const auto ring = make_stage_ring<kStages, kStageBytes>(
      shared_bytes, kProducers, kWgmmaConsumerThreads);
  const int tid = threadIdx.x;

  // x tiles along blockIdx.x: the blocks of one wave share a few w tiles
  // and all of x, which stays in L2, so w is read from DRAM about once.
  const int m0 = blockIdx.x * BM;
  const int n0 = blockIdx.y * BN;
  // This block's K steps: all of them, or its share of a split.
  const int step_begin = blockIdx.z * a.steps_per_split;
  const int k_steps = min((a.k + BK - 1) / BK - step_begin, a.steps_per_split);

  if (tid < kProducers) {
    const SwizzledTileCopy<BM, kProducers, T> x_copy(
        static_cast<const T*>(a.x), m0, a.m, a.k, tid);
    const SwizzledTileCopy<BN, kProducers, T> w_copy(
        static_cast<const T*>(a.w), n0, a.n, a.k, tid);
    const uint32_t first_stage = shared_address(ring.stage(0));
    for (int j = 0; j < k_steps; ++j) {
      const int stage = j % kStages;
      if (j >= kStages) {
        barrier_wait(&ring.empty[stage], ((j / kStages) + 1) & 1);
      }
      const uint32_t x_tile = first_stage + stage * kStageBytes;
      const int k0 = (step_begin + j) * BK;
      x_copy.copy(x_tile, k0, a.k);
      w_copy.copy(x_tile + kXTileBytes, k0, a.k);
      copy_async_arrive(&ring.full[stage]);
    }
  } else {
    const int ct = tid - kProducers;
    const int group = ct / 128;
    const int warp = (ct % 128) / 32;
    const int lane = ct % 32;

    float acc[BN / 2];
#pragma unroll
    for (int i = 0; i < BN / 2; ++i) {
      acc[i] = 0.0f;
    }
    for (int step = 0; step < k_steps; ++step) {
      const int stage = step % kStages;
      barrier_wait(&ring.full[stage], (step / kStages) & 1);
      // The copies were written through the generic proxy.
      fence_async_shared();
      const uint64_t da = swizzled_tile_descriptor(
          ring.stage(stage) + group * 64 * kSwizzleRowBytes);
      const uint64_t db =
          swizzled_tile_descriptor(ring.stage(stage) + kXTileBytes);
      wgmma_fence();
#pragma unroll
      for (int kk = 0; kk < BK / 16; ++kk) {
        wgmma_64xNx16<T, BN>(
            acc, da + kk * kDescriptorStepK16, db + kk * kDescriptorStepK16, 1);
      }
      wgmma_commit();
      // The products of the previous step are done: its stage is free.
      wgmma_wait<1>();
      if (step > 0) {
        barrier_arrive(&ring.empty[(step - 1) % kStages]);
      }
    }
    wgmma_wait<0>();

    const T* bias = static_cast<const T*>(a.bias);
    T* out = static_cast<T*>(a.out);
    const bool pairs_aligned = a.n % 2 == 0;
    // A K split's share: float32, no bias (split_sum.cuh adds it).
    float* partials = a.partials
        ? a.partials + blockIdx.z * static_cast<int64_t>(a.m) * a.n
        : nullptr;
#pragma unroll
    for (int j = 0; j < BN / 8; ++j) {
      const int n = n0 + 8 * j + 2 * (lane % 4);
      if (n >= a.n) {
        continue;
      }
      const bool second = n + 1 < a.n;
      if (partials) {
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          const int m = m0 + 64 * group + 16 * warp + lane / 4 + 8 * h;
          if (m < a.m) {
            float* p = partials + static_cast<int64_t>(m) * a.n + n;
            p[0] = acc[4 * j + 2 * h];
            if (second) {
              p[1] = acc[4 * j + 2 * h + 1];
            }
          }
        }
        continue;
      }
      float b0 = 0.0f;
      float b1 = 0.0f;
      if (bias) {
        b0 = to_float(bias[n]);
        b1 = second ? to_float(bias[n + 1]) : 0.0f;
      }
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int m = m0 + 64 * group + 16 * warp + lane / 4 + 8 * h;
        if (m < a.m) {
          T* p = out + static_cast<int64_t>(m) * a.n + n;
          const float v0 = acc[4 * j + 2 * h] + b0;
          const float v1 = acc[4 * j + 2 * h + 1] + b1;
          if (pairs_aligned) {
            *reinterpret_cast<uint32_t*>(p) = pack2<T>(v0, v1);
          } else {
            store2(p, v0, v1, second);
          }
        }
      }
    }
  }
#endif
}

} // namespace mlx_qmm::cuda
