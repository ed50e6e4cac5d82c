// Copyright © 2026 mlx-qmm contributors.
//
// Affine-quantized weights (csrc/quantized_format.h) written out as a
// dense row-major matrix of T, for the plans that multiply by that matrix
// with the dense warpgroup GEMM instead of dequantizing in the GEMM's
// registers (launch_plan.h: dequantize_first, which says when and why).
//
// One thread a 32-value block of a row: its `bits` words and its group's
// scale and bias in (AffineRows::load, the matrix-vector kernel's loads),
// 64 bytes of T out. A block never straddles a group (group sizes are
// multiples of 32), and each value is rounded once, from s * q + z in
// float32, as the other kernels round their outputs.

#pragma once

#include <cstdint>

#include "csrc/quantized_format.h"
#include "kernels/cuda/affine_unpack.cuh"
#include "kernels/cuda/float_types.cuh"
#include "kernels/cuda/launch_params.h"
#include "kernels/cuda/matvec.cuh"
#include "kernels/cuda/mma.cuh"

namespace mlx_qmm::cuda {

// a.w, a.scales, a.biases: the quantized rows (a.n of them, a.k values
// each); a.out: the dense [a.n, a.k] matrix of T. The other fields are
// unused.
template <typename T, int bits>
__global__ void __launch_bounds__(kDequantizeThreads)
    dequantize_affine(const MatmulArgs a) {
  using Rows = AffineRows<T, bits>;
  static_assert(Rows::kChunkValues == kValuesPerBlock);
  const int64_t blocks_per_row = a.k / Rows::kChunkValues;
  const int64_t block =
      static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (block >= a.n * blocks_per_row) {
    return;
  }
  const int row = static_cast<int>(block / blocks_per_row);
  const int chunk = static_cast<int>(block % blocks_per_row);
  const typename Rows::Chunk c = Rows::load(a, row, chunk);
  uint4* dst = reinterpret_cast<uint4*>(
      static_cast<T*>(a.out) + block * Rows::kChunkValues);
#pragma unroll
  for (int i = 0; i < Rows::kChunkValues / 8; ++i) {
    float q[8];
    unpack_octet<bits>(block_octet_window<bits>(c.words, i), q);
    uint32_t words[4];
#pragma unroll
    for (int t = 0; t < 4; ++t) {
      words[t] = pack2<T>(
          fmaf(c.scale, q[2 * t], c.bias), fmaf(c.scale, q[2 * t + 1], c.bias));
    }
    dst[i] = make_uint4(words[0], words[1], words[2], words[3]);
  }
}

} // namespace mlx_qmm::cuda
