// Copyright © 2026 mlx-qmm contributors.
//
// What the launch of every kernel shares with its launch plan
// (csrc/metal/launch_plan.cpp): plain constants that both Metal and C++
// compile, and the layout of the batch offsets table.

#pragma once

#ifdef __METAL_VERSION__
#define QMM_PROGRAM_CONSTANT constant
#else
#define QMM_PROGRAM_CONSTANT
#endif

// Two namespaces deep at most, classic style: the Metal language is C++14.
namespace qmm {

// Batches. Threadgroup z of a grid works on batch z of the output. Where
// batch z's operands start is not computed in the kernel from shapes and
// strides: the launch plan writes one row of element offsets per batch,
//   offsets[z * kOffsetsPerBatch + kOffsetX] is where x starts, and so on,
// which covers every broadcast (a stride-0 axis is the same offset in many
// rows) for the price of reading kOffsetsPerBatch integers per threadgroup.
// A launch whose x rows are one contiguous run and whose weights are shared
// has a single row of zeros.
QMM_PROGRAM_CONSTANT constexpr int kOffsetX = 0;
QMM_PROGRAM_CONSTANT constexpr int kOffsetW = 1;
QMM_PROGRAM_CONSTANT constexpr int kOffsetScales = 2;
QMM_PROGRAM_CONSTANT constexpr int kOffsetBiases = 3;
QMM_PROGRAM_CONSTANT constexpr int kOffsetY = 4;
QMM_PROGRAM_CONSTANT constexpr int kOffsetsPerBatch = 5;

} // namespace qmm
