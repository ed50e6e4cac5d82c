// Copyright © 2026 mlx-qmm contributors.
//
// The CPU matmul driver both primitives share, for float32, float16 and
// bfloat16: out = x @ W.T + bias with W seen as [N, K] whatever its storage.
//
// Two schedules, both over all cores (thread_pool.h):
//
//   GEMV, x @ W.T with at most kGemvMaxRows rows of x per weight matrix:
//     the rows of x go to float32 once (very small ones scaled up by a
//     power of two, kTinyActivation); threads take kGemvTasksPerThread
//     runs of consecutive output columns each (gemv_columns_per_task) and
//     stream their weight rows through the matrix-vector kernel, which
//     reads each weight once.
//
//   GEMM, everything else: rows of x go to float32 in blocks of kRowBlock
//     (a block stays in the core's L2 across panels); threads take panels
//     of kPanelColumns output columns, unpack (quantized) or convert
//     (dense) the panel's weights once per depth block of at most
//     kDepthBlock into a [depth][kPanelColumns] float32 panel (L2 sized),
//     and run the kMicroRows x kPanelColumns register-tiled micro-kernel
//     over every row of the block (rows interleaved kMicroRows at a time
//     into micro-panels, so that each operand streams from one run).

#pragma once

#include <vector>

#include "csrc/cpu/kernels.h"
#include "mlx/array.h"

namespace mlx_qmm::cpu {

namespace mx = mlx::core;

// The GEMV's tasks: a few long runs of weight rows per thread, not many
// short ones dealt out in turn. With the weights in DRAM (the benchmark's
// case), 32-row tasks took 3-15% longer than runs of 512 rows at 4096 x
// 4096, 4 bits, on two cores: the kernels prefetch the rows after their
// tile, which a short task hands to the other thread. A task calls the
// kernel once for all its columns, or, where the weights or their scales
// must be converted first (an unusual layout), kGemvColumnsPerCall columns
// at a time, so that the converted ones stay in L1.
inline constexpr int kGemvColumnsPerCall = 32;
inline constexpr int kGemvTasksPerThread = 4;

// Columns per GEMV task for n output columns over `threads` threads: n
// split into kGemvTasksPerThread runs a thread, rounded up to a multiple
// of kGemvColumnsPerCall (and at least that).
int gemv_columns_per_task(int n, int threads);

// Rows of x whose largest magnitude is below this go to the quantized GEMV
// scaled up by a power of two (undone exactly on the results): the kernels
// keep every bit only for x of ordinary magnitude (matmul_driver.cpp).
inline constexpr float kTinyActivation = 0x1p-40f;
static_assert(
    kTinyActivation >= kSmallestSplitX,
    "the driver must bring x to where split_x accepts it");

// A multiple of kMicroRows.
inline constexpr int kRowBlock = 96;
// A multiple of every group size, so that depth blocks hold whole groups.
inline constexpr int kDepthBlock = 4096;
// Depth of one micro-kernel call: its slice of the panel (16 KiB) stays in
// L1 while every tile of rows of the block passes over it.
inline constexpr int kKernelDepth = 256;

// inputs: x, w (packed), scales, biases[, bias].
void quantized_matmul(
    const Kernels& kernels,
    const std::vector<mx::array>& inputs,
    mx::array& out,
    int group_size,
    int bits,
    bool transpose,
    bool has_bias);

// inputs: x, w[, bias]; float32, float16 or bfloat16.
void dense_matmul(
    const Kernels& kernels,
    const std::vector<mx::array>& inputs,
    mx::array& out,
    bool transpose,
    bool has_bias);

} // namespace mlx_qmm::cpu
