// Copyright © 2026 mlx-qmm contributors.
//
// Dense float16 / bfloat16 weights against 2 to kSkinnyDenseMaxRows rows
// of x: one pass over W (117 MB at 14336 x 4096) for at most 32 products a
// weight, so the goal is the memory bandwidth that the matrix-vector kernel
// reaches at M = 1 (3.0 TB/s on the H100), with the products on tensor
// cores.
//
// Why not tensor_gemm's small tiles: a block of them multiplies a 32-row x
// tile (mostly zeros at M <= 8) by 64 rows of W, all its warps waiting at
// one barrier a K step of 128 bytes a row; they streamed 2.55-2.68 TB/s at
// M = 8 where cuBLAS streams 2.83 (bench/cuda_kernels.md).
//
// Layout of the work. A block owns skinny_dense_rows_w rows of W (one m16
// tile, W being the products' A operand and x their B; two m16 tiles with
// the 32-row x tile, so that x's L2 traffic stays at W's bytes: each warp
// reads its share of K of x for the block) and its warps split K:
// warp w takes stages w, w + kSkinnyDenseWarps, ..., each kSkinnyDenseStageK
// values of K. A warp pipelines its own stages through a ring of
// kSkinnyDenseStages slots in shared memory (cp.async, no block barrier in
// the loop): a stage is the W tile [rows_w][kSkinnyDenseStageK] and the x
// tile [x_rows][kSkinnyDenseStageK]; each copy instruction of the warp reads
// two rows of W, 256 contiguous bytes of each. At the end the warps' partial
// tiles meet in shared memory and the block writes out[m, n0 .. n0 + rows_w
// - 1].
//
// Each tile row in shared memory is kSkinnyDenseStageK * 2 = 256 bytes, so
// the eight rows that one ldmatrix phase reads would share banks; the
// 16-byte chunk c of row r is stored at chunk c ^ (r % 8) instead, which
// spreads those eight rows over all 32 banks.
//
// Edges: rows of W past N, rows of x past M and values past K are
// zero-filled by the copies and never written. K must be a multiple of 8
// and every operand 16-byte aligned (the launch plan checks).

#pragma once

#include "kernels/cuda/float_types.cuh"
#include "kernels/cuda/launch_params.h"
#include "kernels/cuda/mma.cuh"

namespace mlx_qmm::cuda {

// One warp's ring slot: the W tile, then the x tile.
template <int x_rows>
struct SkinnyDenseSlot {
  static constexpr int kRowsW = skinny_dense_rows_w(x_rows);
  static constexpr int kRowBytes = kSkinnyDenseStageK * 2;
  static constexpr int kChunks = kRowBytes / 16;
  static constexpr int kWBytes = kRowsW * kRowBytes;
  static constexpr int kBytes = (kRowsW + x_rows) * kRowBytes;
  // Rows of a tile one copy instruction of the warp covers.
  static constexpr int kRowsPerCopy = 32 / kChunks;
  static_assert(32 % kChunks == 0 && kRowsW % kRowsPerCopy == 0);
  static_assert(x_rows % kRowsPerCopy == 0);

  __device__ static int chunk_offset(int row, int chunk) {
    return row * kRowBytes + ((chunk ^ (row % 8)) << 4);
  }
};

// One lane's share of a warp's copies of a swizzled tile: rows
// [first_row, first_row + kRows) of a row-major [row_count][k] matrix,
// kSkinnyDenseStageK values a stage; rows past the matrix zero-filled.
// Set up once: a lane copies the same chunk of the same rows every stage,
// so a copy is its row pointer plus the stage's K offset (computing each
// address afresh took about ten instructions a copy).
template <typename T, int kRows, int x_rows>
struct SkinnyDenseTileCopy {
  using Slot = SkinnyDenseSlot<x_rows>;
  static constexpr int kCopies = kRows / Slot::kRowsPerCopy;
  static_assert(kCopies <= 32, "one validity bit a copy");
  const char* rows[kCopies]; // the lane's chunk of each of its rows, K = 0
  int offsets[kCopies]; // their places in the tile
  uint32_t valid_rows; // bit u: row u exists
  int column; // the chunk's first value within a stage

  __device__ __forceinline__ SkinnyDenseTileCopy(
      const T* src,
      int first_row,
      int row_count,
      int k,
      int lane) {
    const int chunk = lane % Slot::kChunks;
    column = 8 * chunk;
    valid_rows = 0;
#pragma unroll
    for (int u = 0; u < kCopies; ++u) {
      const int r = u * Slot::kRowsPerCopy + lane / Slot::kChunks;
      const bool valid = first_row + r < row_count;
      valid_rows |= uint32_t{valid} << u;
      offsets[u] = Slot::chunk_offset(r, chunk);
      rows[u] = reinterpret_cast<const char*>(
          src + static_cast<int64_t>(valid ? first_row + r : 0) * k + column);
    }
  }

  // Copies the stage whose first value is k0 into `tile`.
  __device__ __forceinline__ void copy(unsigned char* tile, int k0, int k)
      const {
    const bool column_valid = k0 + column < k;
    const int64_t offset = column_valid ? int64_t{k0} * sizeof(T) : 0;
#pragma unroll
    for (int u = 0; u < kCopies; ++u) {
      copy_async<16>(
          tile + offsets[u],
          rows[u] + offset,
          column_valid && ((valid_rows >> u) & 1));
    }
  }
};

template <typename T, int x_rows>
__global__ void __launch_bounds__(kSkinnyDenseWarps * 32)
    skinny_dense_gemm(const MatmulArgs a) {
  static_assert(x_rows == 8 || x_rows == 16 || x_rows == 32);
  static_assert(kSkinnyDenseStageK % 32 == 0, "k16 steps in pairs");
  using Slot = SkinnyDenseSlot<x_rows>;
  constexpr int kStages = kSkinnyDenseStages;
  constexpr int kRowsW = Slot::kRowsW;
  constexpr int kTilesM = kRowsW / 16; // m16 tiles of W
  constexpr int kTilesN = x_rows / 8; // n8 tiles of x
  const int lane = threadIdx.x % 32;
  const int warp = threadIdx.x / 32;
  const int n0 = blockIdx.x * kRowsW;
  const int k_stages = (a.k + kSkinnyDenseStageK - 1) / kSkinnyDenseStageK;
  // This warp's stages: warp, warp + kSkinnyDenseWarps, ...
  const int warp_stages =
      (k_stages - warp + kSkinnyDenseWarps - 1) / kSkinnyDenseWarps;

  extern __shared__ __align__(16) unsigned char shared[];
  unsigned char* ring = shared + warp * kStages * Slot::kBytes;

  const SkinnyDenseTileCopy<T, kRowsW, x_rows> w_copy(
      static_cast<const T*>(a.w), n0, a.n, a.k, lane);
  const SkinnyDenseTileCopy<T, x_rows, x_rows> x_copy(
      static_cast<const T*>(a.x), 0, a.m, a.k, lane);
  auto copy_stage = [&](int j) {
    unsigned char* slot = ring + (j % kStages) * Slot::kBytes;
    const int k0 = (warp + j * kSkinnyDenseWarps) * kSkinnyDenseStageK;
    w_copy.copy(slot, k0, a.k);
    x_copy.copy(slot + Slot::kWBytes, k0, a.k);
  };

#pragma unroll
  for (int j = 0; j < kStages - 1; ++j) {
    if (j < warp_stages) {
      copy_stage(j);
    }
    copy_async_commit();
  }

  // acc[mi][ni]: rows 16 mi + g and 16 mi + g + 8 of W (lane g = lane /
  // 4), rows 8 ni + 2 t and the next of x (t = lane % 4).
  float acc[kTilesM][kTilesN][4] = {};
  for (int j = 0; j < warp_stages; ++j) {
    copy_async_wait<kStages - 2>();
    // Every lane's copies of stage j have landed, and every lane is done
    // with the slot of stage j - 1, which stage j + kStages - 1 takes.
    __syncwarp();
    if (j + kStages - 1 < warp_stages) {
      copy_stage(j + kStages - 1);
    }
    copy_async_commit();

    const unsigned char* slot = ring + (j % kStages) * Slot::kBytes;
    const unsigned char* xs = slot + Slot::kWBytes;
    // Two k16 steps at a time: kk = 2 h and 2 h + 1.
#pragma unroll
    for (int h = 0; h < kSkinnyDenseStageK / 32; ++h) {
      // B: bf[s][ni] for step 2 h + s and x rows 8 ni .. 8 ni + 7.
      uint32_t bf[2][kTilesN][2];
      if constexpr (kTilesN == 1) {
        // Lanes 8 i .. 8 i + 7 address x rows 0-7 at chunk 4 h + i.
        uint32_t r[4];
        load_matrix_x4(r, xs + Slot::chunk_offset(lane % 8, 4 * h + lane / 8));
        bf[0][0][0] = r[0];
        bf[0][0][1] = r[1];
        bf[1][0][0] = r[2];
        bf[1][0][1] = r[3];
      } else {
#pragma unroll
        for (int s = 0; s < 2; ++s) {
#pragma unroll
          for (int np = 0; np < kTilesN / 2; ++np) {
            // Lanes 0-7, 8-15: x rows 16 np + 0-7 at chunks 2 kk, 2 kk + 1;
            // lanes 16-31 the same for rows 16 np + 8-15.
            uint32_t r[4];
            load_matrix_x4(
                r,
                xs +
                    Slot::chunk_offset(
                        16 * np + lane % 8 + (lane / 16) * 8,
                        2 * (2 * h + s) + (lane / 8) % 2));
            bf[s][2 * np][0] = r[0];
            bf[s][2 * np][1] = r[1];
            bf[s][2 * np + 1][0] = r[2];
            bf[s][2 * np + 1][1] = r[3];
          }
        }
      }
#pragma unroll
      for (int s = 0; s < 2; ++s) {
#pragma unroll
        for (int mi = 0; mi < kTilesM; ++mi) {
          // A: lanes 0-15 address rows 16 mi + 0-15 at chunk 2 kk, lanes
          // 16-31 at 2 kk + 1.
          uint32_t af[4];
          load_matrix_x4(
              af,
              slot +
                  Slot::chunk_offset(
                      16 * mi + lane % 16, 2 * (2 * h + s) + lane / 16));
#pragma unroll
          for (int ni = 0; ni < kTilesN; ++ni) {
            mma_16816<T>(acc[mi][ni], af, bf[s][ni]);
          }
        }
      }
    }
  }
  copy_async_wait<0>();
  __syncthreads();

  // The warps' partial tiles, [warp][row of W][row of x], in the ring.
  float* partial = reinterpret_cast<float*>(shared);
  const int g = lane / 4;
  const int t = lane % 4;
#pragma unroll
  for (int mi = 0; mi < kTilesM; ++mi) {
#pragma unroll
    for (int ni = 0; ni < kTilesN; ++ni) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int row = 16 * mi + g + 8 * (e / 2);
        const int col = 8 * ni + 2 * t + e % 2;
        partial[(warp * kRowsW + row) * x_rows + col] = acc[mi][ni][e];
      }
    }
  }
  __syncthreads();

  const T* bias = static_cast<const T*>(a.bias);
  T* out = static_cast<T*>(a.out);
  constexpr int kOutputs = kRowsW * x_rows;
  for (int i = threadIdx.x; i < kOutputs; i += kSkinnyDenseWarps * 32) {
    const int row = i % kRowsW;
    const int m = i / kRowsW;
    const int n = n0 + row;
    if (m < a.m && n < a.n) {
      float v = bias ? to_float(bias[n]) : 0.0f;
#pragma unroll
      for (int p = 0; p < kSkinnyDenseWarps; ++p) {
        v += partial[(p * kRowsW + row) * x_rows + m];
      }
      out[static_cast<int64_t>(m) * a.n + n] = from_float<T>(v);
    }
  }
}

} // namespace mlx_qmm::cuda
