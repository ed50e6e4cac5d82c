// Copyright © 2026 mlx-qmm contributors.
//
// The tile shapes of the tiled matmuls (tiled_matmul.h: qmm_affine and
// dense_gemm), shared by the kernels and their launch plans
// (csrc/metal/launch_plan.cpp).

#pragma once

#include "kernels/metal/launch_params.h"

namespace qmm {
namespace tiled_matmul {

// Output tiles are square: `tile` rows of x by `tile` columns of y, one of
// these two (csrc/metal/kernel_selection.h says which serves which M).
QMM_PROGRAM_CONSTANT constexpr int kSmallTile = 32;
QMM_PROGRAM_CONSTANT constexpr int kLargeTile = 64;
// K is consumed kTileK values at a time: for quantized weights one 32-value
// block of the packed format, which never straddles a quantization group.
QMM_PROGRAM_CONSTANT constexpr int kTileK = 32;
// 2 x 2 SIMD groups, each computing a quarter of the tile as
// simdgroup_matrix fragments of 8 x 8 (2 x 2 of them for a 32-tile, 4 x 4
// for a 64-tile).
QMM_PROGRAM_CONSTANT constexpr int kSimdgroupsM = 2;
QMM_PROGRAM_CONSTANT constexpr int kSimdgroupsN = 2;
QMM_PROGRAM_CONSTANT constexpr int kSimdWidth = 32;
QMM_PROGRAM_CONSTANT constexpr int kThreads =
    kSimdgroupsM * kSimdgroupsN * kSimdWidth;
QMM_PROGRAM_CONSTANT constexpr int kFragment = 8;
// Threadgroup-memory rows are padded by 4 floats so that the 8 rows a
// simdgroup_load touches do not fall in the same banks.
QMM_PROGRAM_CONSTANT constexpr int kPad = 4;
// Row stride of the x tile (tile x kTileK) in threadgroup memory.
QMM_PROGRAM_CONSTANT constexpr int kXTileStride = kTileK + kPad;

// Row stride of the w tile (kTileK x tile) and of the output tile
// (tile x tile) in threadgroup memory.
constexpr int tile_stride(int tile) {
  return tile + kPad;
}
// Fragments of 8 x 8 per SIMD group along M and along N.
constexpr int fragments_per_simdgroup(int tile) {
  return tile / (kSimdgroupsM * kFragment);
}
// Floats of threadgroup memory: the x tile, then the w tile. The output
// tile, staged after the K loop, reuses them (it fits: tile * (tile + pad)
// <= tile * (kTileK + pad) + kTileK * (tile + pad) for both tiles).
constexpr int x_tile_floats(int tile) {
  return tile * kXTileStride;
}
constexpr int threadgroup_floats(int tile) {
  return x_tile_floats(tile) + kTileK * tile_stride(tile);
}

// [[function_constant]] indices.
QMM_PROGRAM_CONSTANT constexpr int kHasBiasConstant = 0;

// [[buffer]] indices (scales and biases for quantized weights only).
QMM_PROGRAM_CONSTANT constexpr int kBufferX = 0;
QMM_PROGRAM_CONSTANT constexpr int kBufferW = 1;
QMM_PROGRAM_CONSTANT constexpr int kBufferScales = 2;
QMM_PROGRAM_CONSTANT constexpr int kBufferBiases = 3;
QMM_PROGRAM_CONSTANT constexpr int kBufferBias = 4;
QMM_PROGRAM_CONSTANT constexpr int kBufferY = 5;
QMM_PROGRAM_CONSTANT constexpr int kBufferM = 6;
QMM_PROGRAM_CONSTANT constexpr int kBufferN = 7;
QMM_PROGRAM_CONSTANT constexpr int kBufferK = 8;
QMM_PROGRAM_CONSTANT constexpr int kBufferBatchOffsets = 9;

} // namespace tiled_matmul
} // namespace qmm
