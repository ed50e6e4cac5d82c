// Copyright © 2026 mlx-qmm contributors.
//
// The shape of the strided copy kernel (strided_copy.h), shared by the
// kernel and its launch plan (csrc/metal/launch_plan.cpp).

#pragma once

#include "kernels/metal/launch_params.h"

namespace qmm {
namespace strided_copy {

QMM_PROGRAM_CONSTANT constexpr int kThreads = 256;

// [[buffer]] indices.
QMM_PROGRAM_CONSTANT constexpr int kBufferIn = 0;
QMM_PROGRAM_CONSTANT constexpr int kBufferOut = 1;
QMM_PROGRAM_CONSTANT constexpr int kBufferNdim = 2;
QMM_PROGRAM_CONSTANT constexpr int kBufferShape = 3;
QMM_PROGRAM_CONSTANT constexpr int kBufferStrides = 4;
QMM_PROGRAM_CONSTANT constexpr int kBufferSize = 5;

} // namespace strided_copy
} // namespace qmm
