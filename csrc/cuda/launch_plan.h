// Copyright © 2026 mlx-qmm contributors.
//
// Which CUDA kernel variant computes a matmul, and its grid, block and
// shared memory. Plain C++ (no CUDA headers), so that the choice is unit
// tested on machines without a GPU; eval_cuda.cpp turns a plan into a
// launch.

#pragma once

#include <array>
#include <string>

#include "kernels/cuda/launch_params.h"
#include "kernels/cuda/tensor_tiles.h"
#include "kernels/cuda/wgmma_tiles.h"

namespace mlx_qmm::cuda {

struct MatmulProblem {
  FloatType type;
  int bits; // 0: dense weights
  bool transpose;
  int m; // rows of x per weight batch
  int n;
  int k;
  // x, w, scales, biases, bias and out all start at 16-byte boundaries.
  bool aligned;
  int multiprocessors;
  // The GPU runs sm_90a machine code (H100, H200): wgmma is available.
  bool sm90 = false;
  int group_size = 64; // quantized only
};

enum class KernelKind : int {
  Matvec,
  MatvecTensor,
  Skinny,
  SkinnyCluster,
  SkinnyRing,
  SkinnyDense,
  Wgmma,
  Tensor,
  Simt
};

// Below this many rows of x a 128-row warpgroup tile would be mostly
// padding; the tensor-core GEMM's 32- and 64-row tiles serve them.
inline constexpr int kWgmmaMinRows = 64;

// K split between blocks (grid z) where a warpgroup tile's grid alone is
// too small for the GPU (N = 4096 rows of w: 32 narrow tiles at M = 128).
// Each block then writes its float32 partial product, which costs 4 bytes
// an output a split twice (written, then read by split_sum); a share of at
// least kWgmmaMinSplitSteps K steps keeps that, and the ring's fill at the
// start, small beside the share's products.
inline constexpr int kWgmmaMaxSplits = 8;
inline constexpr int kWgmmaMinSplitSteps = 16;

// From this many rows of x on, quantized weights are first written out as
// a dense temporary of x's type (dequantize_affine.cuh), which the dense
// warpgroup GEMM then multiplies. That pass costs the weights' bytes read
// and 2 bytes a value written (on the H100 about 0.9 ps a value of w, 53
// us at 14336 x 4096, 4 bits) whatever M is, while the dense GEMM's
// products take 1.6-2.2 fs less a row of x and a value of w than the fused
// 4- and 8-bit GEMM's (bench/cuda_kernels.md), so the pass pays for itself
// from about 600 rows (4 bits) or 500 (8 bits); measured, 768 and 1024
// rows were a tie at 4 bits. The temporary holds N x K elements of x's
// type while the product runs (all weight batches at once when batched).
inline constexpr int kDequantizeFirstMinRows = 768;

// The widths without a fused warpgroup kernel (wgmma_affine_bits false)
// otherwise take tensor_gemm, whose mma.sync products are slower than the
// fused kernel's: there the pass pays for itself from fewer rows. Measured
// at 14336 x 4096 (bench/cuda_kernels.md), the two passes took 1.5x less
// time than tensor_gemm at 384 rows and 1.7-1.9x less at 512; at 256 rows
// 1.2x less at 5 and 6 bits, but 5-10% more at 2 and 3.
inline constexpr int kDequantizeFirstMinRowsUnfused = 384;

constexpr int dequantize_first_min_rows(int bits) {
  return wgmma_affine_bits(bits) ? kDequantizeFirstMinRows
                                 : kDequantizeFirstMinRowsUnfused;
}

struct LaunchPlan {
  KernelKind kind;
  // Matvec: the kernel's rows template (1 or kMatvecMaxRows); Skinny: rows
  // of x a block covers (8, 16 or kSkinnyMaxRows); SkinnyDense: rows of its
  // x tile (skinny_dense_x_rows).
  int rows;
  TensorTile tile; // Tensor
  WgmmaTile wgmma_tile; // Wgmma
  std::array<int, 3> grid;
  int block;
  int shared_bytes; // dynamic
  std::string name; // e.g. "tensor_affine_bf16_b4_large"
  // Wgmma: K steps a block takes, and the blocks along K (grid[2]); with
  // more than one, each leaves float32 partial sums and split_sum adds
  // them up.
  int steps_per_split = 0;
  int k_splits = 1;
  // Quantized weights: dequantize_affine writes them out as a dense
  // temporary first, and the kernel above is the dense one.
  bool dequantize_first = false;
  // SkinnyCluster: blocks of a thread-block cluster along grid x (the K
  // splits of one column tile).
  int cluster = 1;
};

// The rules, first match wins:
//  - MatvecTensor: transposed 4-bit float16 / bfloat16 weights, aligned,
//    M = 1, at most kMatvecTensorMaxGroups groups a row: the streaming
//    matrix-vector kernel's pattern with its products on tensor cores and
//    each block's scales and biases in shared memory.
//  - Matvec: transposed weights, aligned, (dense) K a multiple of 8, and
//    M = 1, or M <= kMatvecMaxRows in float32: one pass over the weights.
//  - SkinnyRing: as SkinnyCluster below, at 4 bits, K a multiple of
//    kSkinnyRingStageK, group size at most 128, where the blocks of
//    kSkinnyRingRowsW rows of W fill kSkinnyRingMinFillTenths tenths of the
//    SMs: the block's warps share a ring of shared-memory stages, no K
//    split.
//  - SkinnyCluster: as Skinny below, on sm_90, kSkinnyClusterMinRows <= M
//    <= kSkinnyMaxRows, where the column tiles leave room for K splits (at
//    least 2 of them within kSkinnyClusterBlocksPerSM blocks an SM and one
//    K chunk a split): x shared in shared memory, K split in a cluster.
//  - Skinny: transposed quantized float16 / bfloat16 weights, aligned, K a
//    multiple of kSkinnyChunk, M <= kSkinnyMaxRows: tensor cores fed from
//    registers, one pass over the weights.
//  - SkinnyDense: transposed dense float16 / bfloat16 weights, aligned, K
//    a multiple of 8, 2 <= M <= kSkinnyDenseMaxRows (on sm_90;
//    kSkinnyDenseMaxRowsBeforeSm90 elsewhere): one pass over the weights,
//    each warp of a block streaming its share of K.
//  - Dequantize first: on sm_90, quantized float16 / bfloat16 weights of
//    any bits, M >= dequantize_first_min_rows(bits) (kDequantizeFirstMinRows
//    at 4 and 8 bits, kDequantizeFirstMinRowsUnfused at the others), where
//    the dense problem of the same shape takes a Wgmma plan: that plan,
//    after dequantize_affine.
//  - Wgmma: on sm_90, transposed float16 / bfloat16 weights, dense or 4-
//    or 8-bit, aligned, (dense) K a multiple of 8, M > kWgmmaMinRows, and a
//    warpgroup tile whose grid fills 90% of the SMs, or with K split
//    between up to kWgmmaMaxSplits blocks of at least kWgmmaMinSplitSteps
//    steps, one wave that fills 90% of them: the wide tile, then the wide tile
//    split (where it pads x no more than the narrow one; dense with M <=
//    128, shares under 32 steps give way to narrow tiles split to 40% of
//    the SMs where they split too), then the narrow tile, then the narrow
//    tile split, then the narrow tile unsplit where it fills 80% of the SMs.
//  - Tensor: transposed float16 / bfloat16 weights, aligned, K a multiple
//    of 8; the largest tile whose grid still fills 90% of the SMs.
//  - Simt: everything else.
LaunchPlan plan_matmul(const MatmulProblem& problem);

} // namespace mlx_qmm::cuda
