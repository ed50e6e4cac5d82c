// Copyright © 2026 mlx-qmm contributors.
//
// Dense float32 GEMMs through Apple's Accelerate on macOS.
//
// Why a BLAS there and not on Linux: Accelerate's sgemm runs on the Apple
// CPU's matrix coprocessor (AMX / SME), whose throughput is a multiple of
// what NEON FMAs on the same cores reach, so no hand-written NEON
// micro-kernel can match it; Apple keeps it tuned for every chip. On Linux
// the only BLAS MLX's wheel ships is the reference netlib BLAS (stock
// `x @ w.T` at 4096 x 4096 x 256 in float32: 4.3 s on the 2-core
// development machine, about 4 GFLOP/s, against our AVX2 micro-kernel's
// 40-90 GFLOP/s), so there our own kernels serve everything. Not measured by
// us on a Mac yet: our CI has none.

#pragma once

#include <vector>

#include "mlx/array.h"

namespace mlx_qmm::cpu {

namespace mx = mlx::core;

// Computes the float32 product of DenseMatmul's inputs (x, w[, bias]) with
// cblas_sgemm and returns true, where this is a macOS build and the operands
// suit it: a 2-D w contiguous in either orientation, row-contiguous x, more
// than kGemvMaxRows rows or x @ W (our GEMV is bandwidth-bound and has no
// reason to hand off). Returns false otherwise, leaving `out` untouched.
bool accelerate_dense_gemm(
    const std::vector<mx::array>& inputs,
    mx::array& out,
    bool transpose,
    bool has_bias);

} // namespace mlx_qmm::cpu
