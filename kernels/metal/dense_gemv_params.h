// Copyright © 2026 mlx-qmm contributors.
//
// The shape of the dense matrix-vector kernel (dense_gemv.h), shared by the
// kernel and its launch plan (csrc/metal/launch_plan.cpp).

#pragma once

#include "kernels/metal/launch_params.h"

namespace qmm {
namespace dense_gemv {

// SIMD groups per threadgroup; each computes its own output columns.
QMM_PROGRAM_CONSTANT constexpr int kSimdgroups = 2;
// Output columns per SIMD group: each lane keeps one partial sum per column,
// so x's values are loaded once for that many rows of w.
QMM_PROGRAM_CONSTANT constexpr int kColumnsPerSimdgroup = 4;
// Consecutive K elements a lane reads per step (one 16-byte load of float).
QMM_PROGRAM_CONSTANT constexpr int kValuesPerLane = 4;
QMM_PROGRAM_CONSTANT constexpr int kSimdWidth = 32;
QMM_PROGRAM_CONSTANT constexpr int kColumnsPerThreadgroup =
    kSimdgroups * kColumnsPerSimdgroup;

// [[function_constant]] indices.
QMM_PROGRAM_CONSTANT constexpr int kHasBiasConstant = 0;

// [[buffer]] indices.
QMM_PROGRAM_CONSTANT constexpr int kBufferX = 0;
QMM_PROGRAM_CONSTANT constexpr int kBufferW = 1;
QMM_PROGRAM_CONSTANT constexpr int kBufferBias = 2;
QMM_PROGRAM_CONSTANT constexpr int kBufferY = 3;
QMM_PROGRAM_CONSTANT constexpr int kBufferK = 4;
QMM_PROGRAM_CONSTANT constexpr int kBufferN = 5;
QMM_PROGRAM_CONSTANT constexpr int kBufferBatchOffsets = 6;

} // namespace dense_gemv
} // namespace qmm
