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
};

enum class KernelKind : int { Matvec, Skinny, Wgmma, Tensor, Simt };

// Below this many rows of x a 128-row warpgroup tile would be mostly
// padding; the tensor-core GEMM's 32- and 64-row tiles serve them.
inline constexpr int kWgmmaMinRows = 64;

struct LaunchPlan {
  KernelKind kind;
  // Matvec: the kernel's rows template (1 or kMatvecMaxRows); Skinny: rows
  // of x a block covers (8, 16 or kSkinnyMaxRows).
  int rows;
  TensorTile tile; // Tensor
  WgmmaTile wgmma_tile; // Wgmma
  std::array<int, 3> grid;
  int block;
  int shared_bytes; // dynamic
  std::string name; // e.g. "tensor_affine_bf16_b4_large"
};

// The rules, first match wins:
//  - Matvec: transposed weights, aligned, (dense) K a multiple of 8, and
//    M = 1, or M <= kMatvecMaxRows in float32: one pass over the weights.
//  - Skinny: transposed quantized float16 / bfloat16 weights, aligned, K a
//    multiple of kSkinnyChunk, M <= kSkinnyMaxRows: tensor cores fed from
//    registers, one pass over the weights.
//  - Wgmma: on sm_90, transposed float16 / bfloat16 weights, dense or 4-
//    or 8-bit, aligned, (dense) K a multiple of 8, M > kWgmmaMinRows, and a
//    warpgroup tile whose grid fills 90% of the SMs (the wide one first).
//  - Tensor: transposed float16 / bfloat16 weights, aligned, K a multiple
//    of 8; the largest tile whose grid still fills 90% of the SMs.
//  - Simt: everything else.
LaunchPlan plan_matmul(const MatmulProblem& problem);

} // namespace mlx_qmm::cuda
