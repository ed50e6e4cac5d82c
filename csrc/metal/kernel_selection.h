// Copyright © 2026 mlx-qmm contributors.
//
// Which Metal kernel serves a matmul, written down once: the launch plans
// choose by this table, the tests check every rule on the Metal simulator,
// and the README's table is this table (tests/test_kernel_selection.py
// compares them).
//
// Why these rules. On Apple GPUs a matmul with few rows of x is bound by
// memory bandwidth: the weights must stream from unified memory once, and
// every other byte or instruction is overhead. With more rows it becomes
// compute bound and the weights must be reused from threadgroup memory
// across rows, with simdgroup_matrix doing the multiply-accumulate.
//   - qmv_affine / dense_gemv (one row of x, x @ w.T): SIMD-group dot
//     products along w's rows, which are contiguous in K for x @ w.T, so
//     each lane streams its own stretch of packed words (16 bytes and more
//     per load) and reads each scale and bias once; x is staged once per
//     threadgroup. One pass over w, nothing reused, nothing recomputed.
//   - qmm_affine / dense_gemm (everything else): square output tiles, K in
//     steps of 32 (one packed block, which never straddles a group), w
//     dequantized into threadgroup memory once per tile and used by all
//     rows of the tile. w is read once per tile of rows of x and x once
//     per tile of columns. Up to 32 rows, a 32 x 32 tile reads w once in
//     all, and a larger one would leave rows of its multiply empty; beyond,
//     64 x 64 tiles halve both re-reads (and the threadgroups' share of
//     barriers and tile loads) for each multiply-accumulate. For x @ w the
//     packed axis is N, so there is no contiguous K run per output to
//     stream: the tiled kernel serves x @ w at every M.
// The bits, the group size and the dtype choose the instantiation, not the
// kernel: the packed format is made of 32-value blocks of `bits` words at
// every bit width, and N and K only size the grid (edges are guarded).

#pragma once

#include <cstdint>
#include <limits>
#include <string>

#include "kernels/metal/tiled_matmul_params.h"

namespace mlx_qmm::metal {

enum class MetalKernel { QmvAffine, QmmAffine, DenseGemv, DenseGemm };

struct KernelRule {
  bool quantized;
  bool transpose; // x @ w.T
  int64_t max_rows; // the rule serves M (rows of x per batch) <= max_rows
  MetalKernel kernel;
  int tile; // output tile side of the tiled kernels; 0 for the others
};

inline constexpr int64_t kAnyRows = std::numeric_limits<int64_t>::max();

// Rows of x up to which the matrix-vector kernels serve x @ w.T. They read w
// once per row of x, so from two rows on the tiled kernels, which read it
// once per 32 rows, move fewer bytes.
inline constexpr int64_t kMatrixVectorMaxRows = 1;

// Rows of x up to which the tiled kernels use the small tile.
inline constexpr int64_t kSmallTileMaxRows = qmm::tiled_matmul::kSmallTile;

inline constexpr int kSmallTile = qmm::tiled_matmul::kSmallTile;
inline constexpr int kLargeTile = qmm::tiled_matmul::kLargeTile;

// In order; the first rule that matches serves.
inline constexpr KernelRule kKernelRules[] = {
    {true, true, kMatrixVectorMaxRows, MetalKernel::QmvAffine, 0},
    {true, true, kSmallTileMaxRows, MetalKernel::QmmAffine, kSmallTile},
    {true, true, kAnyRows, MetalKernel::QmmAffine, kLargeTile},
    {true, false, kSmallTileMaxRows, MetalKernel::QmmAffine, kSmallTile},
    {true, false, kAnyRows, MetalKernel::QmmAffine, kLargeTile},
    {false, true, kMatrixVectorMaxRows, MetalKernel::DenseGemv, 0},
    {false, true, kSmallTileMaxRows, MetalKernel::DenseGemm, kSmallTile},
    {false, true, kAnyRows, MetalKernel::DenseGemm, kLargeTile},
    {false, false, kSmallTileMaxRows, MetalKernel::DenseGemm, kSmallTile},
    {false, false, kAnyRows, MetalKernel::DenseGemm, kLargeTile},
};

const KernelRule& select_kernel(bool quantized, bool transpose, int64_t rows);

// "qmv_affine", "qmm_affine", ...
std::string kernel_name(MetalKernel kernel);

// The work of one threadgroup of `rule`'s kernel, in words, from the
// kernels' shape constants.
std::string threadgroup_work(const KernelRule& rule);

} // namespace mlx_qmm::metal
