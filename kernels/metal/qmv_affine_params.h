// Copyright © 2026 mlx-qmm contributors.
//
// The shape of the affine quantized matrix-vector kernel (qmv_affine.h),
// shared by the kernel and its launch plan (csrc/metal/launch_plan.cpp).

#pragma once

#include "kernels/metal/launch_params.h"

namespace qmm {
namespace qmv_affine {

// SIMD groups per threadgroup and rows of w (output columns) per SIMD group.
// A threadgroup reads its block of x once, from device memory into
// threadgroup memory, and uses it for kRowsPerThreadgroup rows of w: the
// more rows, the smaller x's share of the bytes moved: with 128 rows, x
// adds 1/16 of w's bytes for 4-bit weights and float32 x (x is read once
// per threadgroup, w once in all).
QMM_PROGRAM_CONSTANT constexpr int kSimdgroups = 8;
QMM_PROGRAM_CONSTANT constexpr int kRowsPerSimdgroup = 16;
QMM_PROGRAM_CONSTANT constexpr int kRowsPerThreadgroup =
    kSimdgroups * kRowsPerSimdgroup;
QMM_PROGRAM_CONSTANT constexpr int kSimdWidth = 32;
// Each lane handles one whole group of a row per K block, so every scale
// and bias is read exactly once: a K block is one group per lane.
QMM_PROGRAM_CONSTANT constexpr int kGroupsPerBlock = kSimdWidth;

// [[function_constant]] indices.
QMM_PROGRAM_CONSTANT constexpr int kHasBiasConstant = 0;

// [[buffer]] indices.
QMM_PROGRAM_CONSTANT constexpr int kBufferX = 0;
QMM_PROGRAM_CONSTANT constexpr int kBufferW = 1;
QMM_PROGRAM_CONSTANT constexpr int kBufferScales = 2;
QMM_PROGRAM_CONSTANT constexpr int kBufferBiases = 3;
QMM_PROGRAM_CONSTANT constexpr int kBufferBias = 4;
QMM_PROGRAM_CONSTANT constexpr int kBufferY = 5;
QMM_PROGRAM_CONSTANT constexpr int kBufferK = 6;
QMM_PROGRAM_CONSTANT constexpr int kBufferN = 7;
QMM_PROGRAM_CONSTANT constexpr int kBufferBatchOffsets = 8;

} // namespace qmv_affine
} // namespace qmm
