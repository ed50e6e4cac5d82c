// Copyright © 2026 mlx-qmm contributors.
//
// The tile shape of the tiled matmuls (tiled_matmul.h: qmm_affine and
// dense_gemm), shared by the kernels and their launch plans
// (csrc/metal/launch_plan.cpp).

#pragma once

#include "kernels/metal/launch_params.h"

namespace qmm {
namespace tiled_matmul {

// Output tile of a threadgroup: kTileM rows of x by kTileN columns of y.
QMM_PROGRAM_CONSTANT constexpr int kTileM = 32;
QMM_PROGRAM_CONSTANT constexpr int kTileN = 32;
// K is consumed kTileK values at a time: for quantized weights one 32-value
// block of the packed format, which never straddles a quantization group.
QMM_PROGRAM_CONSTANT constexpr int kTileK = 32;
// 2 x 2 SIMD groups, each computing a 16 x 16 quarter of the tile as 2 x 2
// simdgroup_matrix fragments of 8 x 8.
QMM_PROGRAM_CONSTANT constexpr int kSimdgroupsM = 2;
QMM_PROGRAM_CONSTANT constexpr int kSimdgroupsN = 2;
QMM_PROGRAM_CONSTANT constexpr int kSimdWidth = 32;
QMM_PROGRAM_CONSTANT constexpr int kThreads =
    kSimdgroupsM * kSimdgroupsN * kSimdWidth;
QMM_PROGRAM_CONSTANT constexpr int kFragment = 8;
// Threadgroup-memory rows are padded by 4 floats so that the 8 rows a
// simdgroup_load touches do not fall in the same banks.
QMM_PROGRAM_CONSTANT constexpr int kPad = 4;
// Row stride of the x, w and output tiles in threadgroup memory.
QMM_PROGRAM_CONSTANT constexpr int kTileStride = kTileK + kPad;

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
