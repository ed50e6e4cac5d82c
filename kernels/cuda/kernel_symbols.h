// Copyright © 2026 mlx-qmm contributors.
//
// The compiled kernel variants, looked up by what they compute. Defined in
// the instantiation files (*.cu) beside the kernel bodies; the host turns
// each symbol into a driver handle with cudaGetFuncBySymbol (see
// csrc/cuda/eval_cuda.cpp for why). A null result means no such variant.

#pragma once

#include "kernels/cuda/launch_params.h"
#include "kernels/cuda/tensor_tiles.h"
#include "kernels/cuda/wgmma_tiles.h"

namespace mlx_qmm::cuda {

// matvec<T, AffineRows<T, bits> or DenseRows<T>, rows>, rows 1 or
// kMatvecMaxRows.
const void* matvec_affine_symbol(FloatType type, int bits, int rows);
const void* matvec_dense_symbol(FloatType type, int rows);
// skinny_dense_gemm<T, x_rows>, x_rows 8, 16 or 32; null for float32.
const void* skinny_dense_symbol(FloatType type, int x_rows);

const void* matvec_tensor_affine_symbol(FloatType type);

// tensor_gemm<T, bits, tile>; float16 and bfloat16 only.
const void* tensor_affine_symbol(FloatType type, int bits, TensorTile tile);
const void* tensor_dense_symbol(FloatType type, TensorTile tile);

// wgmma_gemm<T, tile> (dense weights); float16 and bfloat16 only, sm_90a
// machine code (other GPUs get an empty body: the launch plan never picks it
// there).
const void* wgmma_dense_symbol(FloatType type, WgmmaTile tile);
// wgmma_affine_gemm<T, bits, tile>, bits 4 and 8 (wgmma_affine_bits); the
// same types and GPUs.
const void* wgmma_affine_symbol(FloatType type, int bits, WgmmaTile tile);

// skinny_gemm<T, bits, rows>, rows 8, 16 or kSkinnyMaxRows; float16 and
// bfloat16 only.
const void* skinny_affine_symbol(FloatType type, int bits, int rows);

// skinny_cluster_gemm<T, bits, kSkinnyMaxRows>; float16 and bfloat16 only.
// Launched in clusters along x on sm_90 (the launch plan picks it there
// only).
const void* skinny_cluster_affine_symbol(FloatType type, int bits);

// skinny_ring_gemm<T, 4>; float16 and bfloat16 only, sm_90a machine code
// (an empty body elsewhere: the launch plan picks it on sm_90 only).
const void* skinny_ring_affine_symbol(FloatType type, int bits);

// simt_gemm<T, quantized, transpose>.
const void* simt_symbol(FloatType type, bool quantized, bool transpose);

// dequantize_affine<T, bits>, every supported bits value; float16 and
// bfloat16 only (the dense warpgroup GEMM's types).
const void* dequantize_affine_symbol(FloatType type, int bits);

// split_sum<T>: float16 and bfloat16 (the warpgroup GEMMs' types).
const void* split_sum_symbol(FloatType type);

// strided_copy<Element> for elements of 2 or 4 bytes.
const void* strided_copy_symbol(int element_bytes);

} // namespace mlx_qmm::cuda
