// Copyright © 2026 mlx-qmm contributors.
//
// What the host passes to every CUDA matmul kernel, by value (one kernel
// parameter), and the names of the kernel variants. Plain C++: included by
// the kernels (nvcc) and by the launch plans (the host compiler).
//
// Every kernel computes, for one weight batch,
//   out[m, n] = sum_k x[m, k] * W[n, k] (+ bias[n]),   m < M, n < N
// with x row-contiguous (rows k elements apart) and out row-contiguous
// (rows n elements apart). W is w itself (dense) or w_hat (affine
// quantized, csrc/quantized_format.h); `transpose` false means the stored
// matrix is W's transpose: w [K, N] (packed along N when quantized).

#pragma once

#include <cstdint>

#include "kernels/cuda/wgmma_tiles.h"

namespace mlx_qmm::cuda {

// The float types of x, scales, biases, bias and out (one dtype for all).
enum class FloatType : int { Float32 = 0, Float16 = 1, BFloat16 = 2 };
inline constexpr int kFloatTypes = 3;

struct MatmulArgs {
  const void* x;
  const void* w; // uint32 words when quantized, else FloatType elements
  const void* scales; // quantized only: [rows of w][groups]
  const void* biases;
  const void* bias; // [N] or null
  void* out;
  int m;
  int n;
  int k;
  int bits; // quantized only
  int group_size_log2; // quantized only
  // The warpgroup GEMMs only: K steps a block takes (block z takes steps
  // [z * steps_per_split, ...)), and, when K is split between blocks, their
  // float32 partial sums [gridDim.z][m][n] (no bias) instead of out.
  int steps_per_split;
  float* partials;
};

// Rows of x that the matrix-vector kernels take in one pass over the
// weights: each weight chunk is loaded once and applied to every row.
inline constexpr int kMatvecMaxRows = 8;

// Rows of W (outputs) per warp and warps per block of the matrix-vector
// kernels: four rows share each x chunk a lane loads, and 16 rows a block
// keep ~900 blocks in flight for a 14336-row matrix.
inline constexpr int kMatvecRowsPerWarp = 4;
inline constexpr int kMatvecWarps = 4;
inline constexpr int kMatvecRowsPerBlock = kMatvecRowsPerWarp * kMatvecWarps;

// Blocks an SM of the matrix-vector kernel for one row of float16 or
// bfloat16 x (at most 128 registers): 16 warps, each with four chunks of
// four rows in flight. The rows it takes stay below the bound (the 8-bit
// ones, which needed it, stream now: matvec_streams); it stays because
// ptxas schedules them differently without it, and these schedules are
// the ones measured.
inline constexpr int kMatvecBlocksPerSM = 4;

// 4- and 8-bit float16/bfloat16 decode (one row of x) runs the
// matrix-vector kernel with one chunk a row in flight per lane and at most
// 65536 / (kMatvecStreamingBlocks * kMatvecWarps * 32) = 64 registers, so
// that kMatvecStreamingBlocks blocks (32 warps) share an SM and a
// 14336-row matrix (896 blocks) runs in one wave. With four chunks in
// flight the 4-bit kernel took 166 registers, three blocks an SM, 2.3
// waves; the 8-bit one (16-value chunks) 128 registers under a bound of
// four blocks, 1.7 waves, and 29.2 us a launch on the H100 against 24.3
// streaming (Nsight Compute, q8 14336 x 4096; bench/cuda_kernels.md).
inline constexpr int kMatvecStreamingBlocks = 8;
constexpr bool matvec_streams(int bits, int x_bytes, int rows) {
  return (bits == 4 || bits == 8) && x_bytes == 2 && rows == 1;
}

// 4-bit float16/bfloat16 decode on tensor cores (matvec_tensor.cuh): the
// streaming kernel's blocks, each with its rows' scales and biases in
// shared memory (2 bytes a group, row and array), for rows of at most
// kMatvecTensorMaxGroups groups (64 KB a block); longer rows take the
// streaming kernel.
inline constexpr int kMatvecTensorMaxGroups = 1024;
// Its register bound: 65536 / (7 * kMatvecWarps * 32) = 73, room for two
// trips' words (the next one's in flight), and 7 x 132 SMs = 924 blocks
// of 16 rows still hold 14336 rows in one wave.
inline constexpr int kMatvecTensorBlocksPerSM = 7;
constexpr int matvec_tensor_shared_bytes(int groups) {
  return 2 * kMatvecRowsPerBlock * groups * 2;
}

// The few-row tensor-core kernel (skinny_gemm.cuh): quantized weights,
// float16 / bfloat16, 2 <= M <= kSkinnyMaxRows (blocks of 8, 16 or 32
// rows), K a multiple of kSkinnyChunk (the K values a warp takes per step:
// one 32-value block for each lane of a quad). A block is kSkinnyWarps warps
// that split K over kSkinnyCols rows of W (kSkinnyTilesN n8 tiles): 128
// blocks of 8 warps for N = 4096.
inline constexpr int kSkinnyMaxRows = 32;
inline constexpr int kSkinnyChunk = 128;
inline constexpr int kSkinnyTilesN = 4;
inline constexpr int kSkinnyCols = 8 * kSkinnyTilesN;
inline constexpr int kSkinnyWarps = 8;

// The cluster-split few-row kernel (skinny_cluster_gemm.cuh, sm_90): from
// kSkinnyClusterMinRows rows of x (blocks of kSkinnyMaxRows), K split
// between up to kSkinnyClusterMaxSplits blocks of a cluster (the portable
// cluster size), as many as kSkinnyClusterBlocksPerSM blocks an SM of
// column tiles allow (56 tiles of 256 rows of W for N = 14336: 4 splits,
// 224 blocks).
inline constexpr int kSkinnyClusterMinRows = 17;
inline constexpr int kSkinnyClusterMaxSplits = 8;
inline constexpr int kSkinnyClusterBlocksPerSM = 2;
// Rows of W a block of it covers: kSkinnyCols a warp.
inline constexpr int kSkinnyClusterCols = kSkinnyWarps * kSkinnyCols;
// Groups of scales and biases a warp of the cluster kernel copies into
// shared memory at once: 16 bytes of each row.
inline constexpr int kSkinnyClusterWindowGroups = 8;

// The ring-fed few-row kernel (skinny_ring_gemm.cuh, sm_90, 4 bits): a
// block owns kSkinnyRingRowsW rows of W and all of K, which its warps copy
// with x into kSkinnyRingStages shared-memory stages of kSkinnyRingStageK
// values and multiply: row groups of kSkinnyRingTilesW m16 tiles of W (a
// warp each), each split into kSkinnyRingSpans spans of a stage's K. It
// serves kSkinnyClusterMinRows to kSkinnyMaxRows rows of x where the
// blocks fill kSkinnyRingMinFillTenths tenths of the SMs (one block an SM:
// 145 KB of shared memory); fewer rows of W take the cluster kernel's K
// split.
inline constexpr int kSkinnyRingRowsW = 128;
inline constexpr int kSkinnyRingStageK = 256;
// Four slots, two of them in flight while a warp multiplies a third: 3, 5
// and 6 slots, with one to four in flight, measured slower.
inline constexpr int kSkinnyRingStages = 4;
inline constexpr int kSkinnyRingSpans = 4;
inline constexpr int kSkinnyRingMinFillTenths = 8;
// A warp's m16 tiles of W (its rows: 16 a tile).
inline constexpr int kSkinnyRingTilesW = 4;
constexpr int skinny_ring_warps() {
  return kSkinnyRingRowsW / (16 * kSkinnyRingTilesW) * kSkinnyRingSpans;
}
constexpr int skinny_ring_threads() {
  return skinny_ring_warps() * 32;
}
// A stage: the rows of W (4 bits), 16 bytes of scales and of biases a row
// (up to 8 groups), and kSkinnyMaxRows rows of x (16-bit).
constexpr int skinny_ring_stage_bytes() {
  return kSkinnyRingRowsW * (kSkinnyRingStageK / 2 + 2 * 16) +
      kSkinnyMaxRows * kSkinnyRingStageK * 2;
}
// Dynamic shared memory of a block: the stage ring's alignment slack
// (make_stage_ring), the ring, and a full and an empty mbarrier a stage.
constexpr int skinny_ring_shared_bytes() {
  return kWgmmaAlignSlack +
      kSkinnyRingStages * (skinny_ring_stage_bytes() + 2 * 8);
}

// The few-row dense GEMM (skinny_dense_gemm.cuh): float16 / bfloat16
// dense weights, 2 <= M <= kSkinnyDenseMaxRows (x tiles of 8, 16 or 32
// rows; 32 on sm_90 only, below). A block owns skinny_dense_rows_w rows of W
// (one m16 tile, two with a 32-row x tile) and its kSkinnyDenseWarps warps
// split K, kSkinnyDenseStageK values (256 bytes of a row) a stage, each
// through its own ring of kSkinnyDenseStages slots.
inline constexpr int kSkinnyDenseMaxRows = 32;
inline constexpr int kSkinnyDenseWarps = 4;
inline constexpr int kSkinnyDenseStageK = 128;
inline constexpr int kSkinnyDenseStages = 3;
// x tiles up to this many rows fit the shared memory of every GPU of the
// build (96 KB a block); the 32-row tile takes 192 KB, which only sm_90's
// 227 KB holds.
inline constexpr int kSkinnyDenseMaxRowsBeforeSm90 = 16;
constexpr int skinny_dense_x_rows(int m) {
  return m <= 8 ? 8 : m <= 16 ? 16 : 32;
}
// Rows of W a block: each block reads the whole of x from L2 once per
// warp's share of K, so the 32-row x tile takes twice the rows of W to
// keep x's L2 traffic at W's bytes (117 MB at 14336 x 4096), as the 16-row
// tile does with 16.
constexpr int skinny_dense_rows_w(int x_rows) {
  return x_rows <= 16 ? 16 : 32;
}
// Dynamic shared memory of a block: every warp's ring (the partial tiles
// of the end reuse it).
constexpr int skinny_dense_shared_bytes(int x_rows) {
  return kSkinnyDenseWarps * kSkinnyDenseStages *
      (skinny_dense_rows_w(x_rows) + x_rows) * kSkinnyDenseStageK * 2;
}

// The CUDA-core fallback (float32, non-transposed weights, shapes the
// tensor-core path cannot tile): 64x64 tiles, 4x4 outputs a thread.
inline constexpr int kSimtBlockM = 64;
inline constexpr int kSimtBlockN = 64;
inline constexpr int kSimtBlockK = 16;
inline constexpr int kSimtThreads = 256;

// A strided view to copy into a row-contiguous array (strided_copy.cuh);
// axes that are contiguous with each other are merged first, so
// kStridedCopyMaxDims is rarely a limit.
inline constexpr int kStridedCopyMaxDims = 10;
inline constexpr int kStridedCopyThreads = 256;

// Writes quantized weights out as a dense matrix (dequantize_affine.cuh):
// one 32-value block a thread.
inline constexpr int kDequantizeThreads = 256;

// Sums the partial products of a K split (split_sum.cuh): out = sum over
// splits + bias, one element a thread.
inline constexpr int kSplitSumThreads = 256;

struct SplitSumArgs {
  const float* partials; // [splits][count]
  const void* bias; // [n] or null
  void* out; // [count], count / n rows of n
  int64_t count;
  int n;
  int splits;
};

struct StridedCopyArgs {
  const void* src; // at the view's first element
  void* dst;
  int64_t size;
  int ndim;
  int64_t shape[kStridedCopyMaxDims];
  int64_t strides[kStridedCopyMaxDims]; // in elements
};

} // namespace mlx_qmm::cuda
