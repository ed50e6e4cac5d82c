// Copyright © 2026 mlx-qmm contributors.
//
// Quantized matmul for 17 to 32 rows of x on sm_90, 4-bit weights, where
// the rows of W alone fill the GPU (no K split): every warp of a block
// streams its share of W, its scales and biases and x into a ring of
// shared-memory stages with cp.async, and multiplies its part of each
// stage on tensor cores, with no block barrier in the K loop.
//
// Why. skinny_cluster_gemm loads each warp's W fragments straight from
// global memory into registers, one chunk ahead, and meets the block's
// other warps at a barrier every chunk to share x. Nsight Compute found it
// bound by latency (3.5 warps a scheduler, no dominant stall), and its
// ablations showed no part of its K loop costing more than about 5 us of
// 30 (bench/cuda_kernels.md): the lever was how the work is split between
// warps. Here the warps wait for neither DRAM (each stage is in flight for
// two stages' time) nor each other (a full and an empty mbarrier a stage:
// a warp may run a stage ahead of the slowest), and need no register set
// for the next chunk of W.
//
// Layout of the work. A block owns kSkinnyRingRowsW = 128 rows of W and
// all of K, kSkinnyRingStageK = 256 values a stage, with 8 warps. Warp w
// takes rows 64 (w % 2) .. + 63 (kSkinnyRingTilesW = 4 m16 tiles: W is
// the products' A operand) and span w / 2 of each stage (kSpanK = 256 /
// kSkinnyRingSpans values of K), for all 32 rows of x (four n8 tiles, B).
// The span warps of a row group add up their partial tiles through shared
// memory at the end.
//
// Why four tiles of W a warp: each x fragment a warp loads then serves
// four products rather than two, which halves the block's x loads from
// shared memory. Against 16 warps of two tiles (version 3) it timed the
// same within run-to-run spread (bench/cuda_kernels.md).
//
// K order. Within a span, lane (g, t) (g = lane / 4, t = lane % 4) owns
// values V t .. V t + V - 1 of each of its rows (V = kSpanK / 4): V / 2
// contiguous bytes of W, one load a row and span, each byte read once.
// Product s of the span takes values V t + 4 s .. + 3 for the lane's four
// k slots (2t, 2t + 1, 2t + 8, 2t + 9 of the m16n8k16 layout), so:
//  - W (A): slots (2t, 2t + 1) are the two nibbles of byte 2 (s % 2) of
//    word s / 2, (2t + 8, 2t + 9) those of the next byte. A byte permute
//    puts a byte's low and high nibble at bits 0 and 16 for the packed
//    dequantization (one permute, one LOP3, two packed ops a pair), and
//    the dequantized pairs are written straight into the A registers;
//  - x (B): the two B registers of product s are the words of x at
//    V t + 4 s and + 2 as they lie in memory, so one LDS.128 of a row
//    (values V t + 8 u .. + 7) serves products 2 u and 2 u + 1 with no
//    permute and no register moves;
//  - a lane's V values lie in one group (group sizes of 32 and up), so a
//    lane needs one scale and bias a row and span.
//
// Shared memory of a stage (one slot of the ring):
//  - W: 128 rows of 128 bytes (256 4-bit values); a lane's piece of row r
//    moves by r % 4 spans (SkinnyRingTile::w_chunk), so that the rows of
//    one load phase do not share banks.
//  - x: 32 rows of 512 bytes, the 16-byte chunks of odd rows moved by one
//    (SkinnyRingTile::x_chunk), likewise.
//  - scales and biases: 16 bytes a row each (up to 8 groups of a stage).
// The copies are 16 bytes of W (a warp instruction: 4 rows x 128
// contiguous bytes), 16 bytes of x (one 512-byte row segment) and 4, 8 or
// 16 bytes of scales or biases a row (by the group size).
//
// Edges: rows of W past N copy row N - 1 and rows of x past M copy row
// M - 1 (their products are never stored). K is a multiple of
// kSkinnyRingStageK, the group size 32, 64 or 128, and every operand
// 16-byte aligned (the launch plan checks).
//
// Measured on the H100 and the H200: bench/cuda_kernels.md, with the
// versions and the variants measured and not kept (wgmma products, 112-row
// blocks, other ring depths).

#pragma once

#include "kernels/cuda/affine_unpack.cuh"
#include "kernels/cuda/float_types.cuh"
#include "kernels/cuda/launch_params.h"
#include "kernels/cuda/mma.cuh"
#include "kernels/cuda/wgmma.cuh"
#include "kernels/cuda/wgmma_tiles.h"

namespace mlx_qmm::cuda {

template <int bits>
struct SkinnyRingTile {
  static_assert(bits == 4, "a lane's share of a row is whole words");
  static constexpr int kRowsW = kSkinnyRingRowsW;
  static constexpr int kRowsX = kSkinnyMaxRows;
  // A consumer warp's tiles: m16 tiles of W (the products' A operand) and
  // n8 tiles of x (B).
  static constexpr int kTilesW = kSkinnyRingTilesW;
  static constexpr int kTilesX = kRowsX / 8;
  static constexpr int kRowsPerWarp = 16 * kTilesW;
  static constexpr int kRowGroups = kRowsW / kRowsPerWarp;
  static constexpr int kSpans = kSkinnyRingSpans;
  static constexpr int kSpanK = kSkinnyRingStageK / kSpans;
  static constexpr int kConsumerWarps = kRowGroups * kSpans;
  static_assert(kConsumerWarps == skinny_ring_warps());
  // A lane's values of a row and span, their words, and the products of a
  // span (two a word).
  static constexpr int kLaneValues = kSpanK / 4;
  static constexpr int kLaneWords = kLaneValues * bits / 32;
  // Two words (8 bytes) a lane: spans of 64 values, four a stage. (Spans
  // of 128, two a stage with half the warps, measured the same.)
  static_assert(kLaneWords == 2, "the swizzles below assume 8-byte pieces");

  static constexpr int kWRowBytes = kSkinnyRingStageK * bits / 8;
  static constexpr int kXRowBytes = kSkinnyRingStageK * 2;
  static constexpr int kAffineRowBytes = 16;
  static constexpr int kWBytes = kRowsW * kWRowBytes;
  static constexpr int kXBytes = kRowsX * kXRowBytes;
  static constexpr int kAffineBytes = kRowsW * kAffineRowBytes;
  static constexpr int kXOffset = kWBytes;
  static constexpr int kScaleOffset = kXOffset + kXBytes;
  static constexpr int kBiasOffset = kScaleOffset + kAffineBytes;
  static constexpr int kStageBytes = kBiasOffset + kAffineBytes;
  static_assert(kStageBytes % 1024 == 0);
  static_assert(kWRowBytes == 8 * 16 && kXRowBytes == 32 * 16);

  // W: a lane reads its 8 bytes of a row (span s, lane t: bytes 32 s +
  // 8 t). An 8-byte load serves 16 lanes at once, rows g .. g + 3, whose
  // 32-byte spans would share banks: the span of row r moves by r % 4
  // (16-byte chunk c to c ^ 2 (r % 4)).
  __host__ __device__ static constexpr int w_chunk(int chunk, int row) {
    return chunk ^ ((row % 4) * 2);
  }
  // x: a lane reads chunk 8 s + 2 t + u of rows g and g + 1 in one phase
  // of a 16-byte load (8 lanes): distinct banks along t, and the rows'
  // chunks apart by one.
  __host__ __device__ static constexpr int x_chunk(int chunk, int row) {
    return chunk ^ (row & 1);
  }

  // The partial tiles of spans 1.. after the loop, in the ring's memory:
  // one float a lane and accumulator, in the lanes' own order.
  static constexpr int kAccumulators = kTilesW * kTilesX * 4;
  static constexpr int kPartialBytes =
      (kSpans - 1) * kRowGroups * kAccumulators * 32 * 4;
  static_assert(kPartialBytes <= kSkinnyRingStages * kStageBytes);
  static_assert(kStageBytes == skinny_ring_stage_bytes());
  // The launch's shared memory is what make_stage_ring lays out.
  static_assert(
      kWgmmaAlignSlack +
          kSkinnyRingStages * (kStageBytes + 2 * sizeof(uint64_t)) ==
      skinny_ring_shared_bytes());
};

// One thread's share of the copies of every stage: the block's threads
// split each stage's 16-byte pieces of W and x and its rows' scales and
// biases, so that no thread issues more than a few copies a stage.
//
// Why a share for every thread rather than a producer warp: a producer
// warp issues all of a stage's 72 copies a lane (and their addresses) in
// one serial stream, and beside 16 consumer warps (an earlier version) it
// limited every thread to 96 registers (the consumers then spilled). Here
// each thread issues 4 pieces of W, 4 of x and one of the scales or
// biases a stage, with its addresses set up once.
template <int bits>
struct SkinnyRingCopies {
  using Tile = SkinnyRingTile<bits>;
  static constexpr int kThreads = skinny_ring_threads();
  static constexpr int kWPieces = Tile::kWBytes / 16 / kThreads;
  static constexpr int kXPieces = Tile::kXBytes / 16 / kThreads;
  static_assert(kWPieces * kThreads * 16 == Tile::kWBytes);
  static_assert(kXPieces * kThreads * 16 == Tile::kXBytes);
  static_assert(2 * Tile::kRowsW <= kThreads, "one affine copy a thread");

  const char* w_src[kWPieces];
  uint32_t w_shared[kWPieces];
  const char* x_src[kXPieces];
  uint32_t x_shared[kXPieces];
  const char* affine_src; // null: no affine copy
  uint32_t affine_shared;
  int affine_bytes; // a row's share of a stage: 4, 8 or 16

  __device__ SkinnyRingCopies(const MatmulArgs& a, int n0, int tid) {
    const int64_t w_row_bytes = static_cast<int64_t>(a.k) * bits / 8;
#pragma unroll
    for (int p = 0; p < kWPieces; ++p) {
      const int piece = tid + p * kThreads;
      const int row = piece / 8;
      const int chunk = piece % 8;
      w_src[p] = static_cast<const char*>(a.w) +
          min(n0 + row, a.n - 1) * w_row_bytes + chunk * 16;
      w_shared[p] = row * Tile::kWRowBytes + (Tile::w_chunk(chunk, row) << 4);
    }
    const int64_t x_row_bytes = static_cast<int64_t>(a.k) * 2;
#pragma unroll
    for (int p = 0; p < kXPieces; ++p) {
      const int piece = tid + p * kThreads;
      const int row = piece / 32;
      const int chunk = piece % 32;
      x_src[p] = static_cast<const char*>(a.x) +
          min(row, a.m - 1) * x_row_bytes + chunk * 16;
      x_shared[p] = Tile::kXOffset + row * Tile::kXRowBytes +
          (Tile::x_chunk(chunk, row) << 4);
    }
    affine_bytes = (kSkinnyRingStageK >> a.group_size_log2) * 2;
    affine_src = nullptr;
    affine_shared = 0;
    if (tid < 2 * Tile::kRowsW) {
      const int row = tid % Tile::kRowsW;
      const bool biases = tid >= Tile::kRowsW;
      const int64_t groups = a.k >> a.group_size_log2;
      affine_src = static_cast<const char*>(biases ? a.biases : a.scales) +
          min(n0 + row, a.n - 1) * groups * 2;
      affine_shared = (biases ? Tile::kBiasOffset : Tile::kScaleOffset) +
          row * Tile::kAffineRowBytes;
    }
  }

  // The copies of the K range of stage s into the ring slot at shared
  // address `slot`.
  __device__ void issue(int s, uint32_t slot) const {
    const int64_t w_k = static_cast<int64_t>(s) * Tile::kWRowBytes;
#pragma unroll
    for (int p = 0; p < kWPieces; ++p) {
      copy_async<16>(slot + w_shared[p], w_src[p] + w_k);
    }
    const int64_t x_k = static_cast<int64_t>(s) * Tile::kXRowBytes;
#pragma unroll
    for (int p = 0; p < kXPieces; ++p) {
      copy_async<16>(slot + x_shared[p], x_src[p] + x_k);
    }
    if (affine_src) {
      const char* src = affine_src + static_cast<int64_t>(s) * affine_bytes;
      if (affine_bytes == 16) {
        copy_async<16>(slot + affine_shared, src);
      } else if (affine_bytes == 8) {
        copy_async<8>(slot + affine_shared, src);
      } else {
        copy_async<4>(slot + affine_shared, src);
      }
    }
  }
};

template <typename T, int bits>
__global__ void __launch_bounds__(skinny_ring_threads(), 1)
    skinny_ring_gemm(const MatmulArgs a) {
#if MLX_QMM_WGMMA
  using Tile = SkinnyRingTile<bits>;
  extern __shared__ unsigned char shared_bytes[];
  // Full: every thread's copies of the stage (cp.async arrivals); empty:
  // one arrival a warp once it is done with the stage.
  const auto ring = make_stage_ring<kSkinnyRingStages, Tile::kStageBytes>(
      shared_bytes, skinny_ring_threads(), Tile::kConsumerWarps);

  const int warp = threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  const int n0 = blockIdx.x * Tile::kRowsW;
  const SkinnyRingCopies<bits> copies(a, n0, threadIdx.x);
  const int stages = a.k / kSkinnyRingStageK;
  // Stage s + kLead is issued as stage s starts, into the slot of stage
  // s + kLead - kSkinnyRingStages, once every warp is done with that: a
  // warp runs at most kSkinnyRingStages - kLead - 1 stages ahead of the
  // slowest, and each stage is in flight for kLead stages.
  constexpr int kLead = kSkinnyRingStages - 2;
#pragma unroll
  for (int s = 0; s < kLead; ++s) {
    if (s < stages) {
      copies.issue(s, shared_address(ring.stage(s)));
    }
    copy_async_arrive(&ring.full[s]);
  }

  const int g = lane / 4;
  const int t = lane % 4;
  const int row_group = warp % Tile::kRowGroups;
  const int span = warp / Tile::kRowGroups;
  // This lane's W rows: g + 8 i (i < 2 kTilesW: rows g and g + 8 of each
  // m16 tile), all alike modulo 4 and so swizzled alike, and its piece of
  // them; its x chunks 8 span + 2 t + u (u < 2) of rows g + 8 j, all of
  // g's parity: u ^ (g % 2) past chunk 8 span + 2 t.
  const int w_row = Tile::kRowsPerWarp * row_group + g;
  constexpr int kPieceBytes = 4 * Tile::kLaneWords;
  const int w_piece_chunk = (4 * span + t) * kPieceBytes / 16;
  const uint32_t w_offset = w_row * Tile::kWRowBytes +
      (Tile::w_chunk(w_piece_chunk, w_row) << 4) + (t * kPieceBytes) % 16;
  const int x_first = (Tile::kSpanK / 8) * span + (Tile::kLaneValues / 8) * t;
  const int x_swizzle = Tile::x_chunk(x_first, g) ^ x_first;
  const uint32_t x_offset =
      Tile::kXOffset + g * Tile::kXRowBytes + (x_first << 4);
  const int group_in_stage =
      (Tile::kSpanK * span + Tile::kLaneValues * t) >> a.group_size_log2;
  const uint32_t affine_offset =
      w_row * Tile::kAffineRowBytes + group_in_stage * 2;

  constexpr int kRowsHeld = 2 * Tile::kTilesW;
  float acc[Tile::kTilesW][Tile::kTilesX][4] = {};
  for (int s = 0; s < stages; ++s) {
    const int ahead = s + kLead;
    if (ahead < stages) {
      const int ahead_slot = ahead % kSkinnyRingStages;
      if (ahead >= kSkinnyRingStages) {
        barrier_wait(
            &ring.empty[ahead_slot], (ahead / kSkinnyRingStages + 1) % 2);
      }
      copies.issue(ahead, shared_address(ring.stage(ahead_slot)));
      copy_async_arrive(&ring.full[ahead_slot]);
    }
    const int slot = s % kSkinnyRingStages;
    barrier_wait(&ring.full[slot], (s / kSkinnyRingStages) % 2);
    const unsigned char* stage = ring.stage(slot);

    uint32_t words[kRowsHeld][Tile::kLaneWords];
    uint32_t scale2[kRowsHeld];
    uint32_t bias2[kRowsHeld];
#pragma unroll
    for (int i = 0; i < kRowsHeld; ++i) {
      const unsigned char* piece = stage + w_offset + i * 8 * Tile::kWRowBytes;
      const uint2 v = *reinterpret_cast<const uint2*>(piece);
      words[i][0] = v.x;
      words[i][1] = v.y;
      const int affine_row = i * 8 * Tile::kAffineRowBytes;
      scale2[i] = duplicate16(*reinterpret_cast<const T*>(
          stage + Tile::kScaleOffset + affine_offset + affine_row));
      bias2[i] = duplicate16(*reinterpret_cast<const T*>(
          stage + Tile::kBiasOffset + affine_offset + affine_row));
    }

#pragma unroll
    for (int u = 0; u < Tile::kLaneWords; ++u) {
      // Values kLaneValues t + 8 u .. + 7 of x row g of each n8 tile:
      // words 2h and 2h + 1 are the B registers of product 2u + h.
      uint4 x[Tile::kTilesX];
#pragma unroll
      for (int j = 0; j < Tile::kTilesX; ++j) {
        x[j] = *reinterpret_cast<const uint4*>(
            stage + x_offset + 8 * j * Tile::kXRowBytes +
            ((u ^ x_swizzle) << 4));
      }
#pragma unroll
      for (int h = 0; h < 2; ++h) {
#pragma unroll
        for (int mw = 0; mw < Tile::kTilesW; ++mw) {
          // Rows g and g + 8 of the tile: byte 2h's nibbles (slots 2t,
          // 2t + 1) and byte 2h + 1's (2t + 8, 2t + 9), each at bits 0
          // and 16.
          uint32_t w[4];
#pragma unroll
          for (int half = 0; half < 2; ++half) {
            const int i = 2 * mw + half;
            const uint32_t word = words[i][u];
            const uint32_t shifted = word >> 4;
#pragma unroll
            for (int b = 0; b < 2; ++b) {
              w[half + 2 * b] = dequantize_nibble_pair<T>(
                  __byte_perm(
                      word, shifted, (2 * h + b) | ((4 + 2 * h + b) << 8)),
                  scale2[i],
                  bias2[i]);
            }
          }
#pragma unroll
          for (int j = 0; j < Tile::kTilesX; ++j) {
            const uint32_t* xw = reinterpret_cast<const uint32_t*>(&x[j]);
            const uint32_t frag[2] = {xw[2 * h], xw[2 * h + 1]};
            mma_16816<T>(acc[mw][j], w, frag);
          }
        }
      }
    }
    __syncwarp();
    if (lane == 0) {
      barrier_arrive(&ring.empty[slot]);
    }
  }

  // The span warps' partial tiles meet in the ring's memory once every
  // warp is done with it (every copy has landed: each was waited for).
  constexpr int kAccumulators = Tile::kAccumulators;
  float* flat = &acc[0][0][0];
  float* partial = reinterpret_cast<float*>(ring.base);
  __syncthreads();
  if (span > 0) {
    float* mine = partial +
        ((span - 1) * Tile::kRowGroups + row_group) * kAccumulators * 32;
#pragma unroll
    for (int c = 0; c < kAccumulators; ++c) {
      mine[c * 32 + lane] = flat[c];
    }
  }
  __syncthreads();
  if (span > 0) {
    return;
  }
#pragma unroll
  for (int other = 1; other < Tile::kSpans; ++other) {
    const float* theirs = partial +
        ((other - 1) * Tile::kRowGroups + row_group) * kAccumulators * 32;
#pragma unroll
    for (int c = 0; c < kAccumulators; ++c) {
      flat[c] += theirs[c * 32 + lane];
    }
  }

  // Accumulator c of tile (mw, j): W row g + 8 (c / 2) of tile mw, x row
  // 2t + c % 2 of tile j.
  T* out = static_cast<T*>(a.out);
  const T* bias = static_cast<const T*>(a.bias);
#pragma unroll
  for (int mw = 0; mw < Tile::kTilesW; ++mw) {
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      const int n = n0 + w_row + 16 * mw + 8 * half;
      if (n >= a.n) {
        continue;
      }
      const float row_bias = bias ? to_float(bias[n]) : 0.0f;
#pragma unroll
      for (int j = 0; j < Tile::kTilesX; ++j) {
#pragma unroll
        for (int c = 0; c < 2; ++c) {
          const int m = 8 * j + 2 * t + c;
          if (m < a.m) {
            out[static_cast<int64_t>(m) * a.n + n] =
                from_float<T>(acc[mw][j][2 * half + c] + row_bias);
          }
        }
      }
    }
  }
#endif
}

} // namespace mlx_qmm::cuda
