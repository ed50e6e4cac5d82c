// Copyright © 2026 mlx-qmm contributors.
//
// Entry points of the dense kernels; the work is in the headers.

#include <metal_stdlib>

#include "kernels/metal/dense_gemm.h"
#include "kernels/metal/dense_gemv.h"
#include "kernels/metal/instantiate.h"

using namespace metal;

namespace qmm {
namespace dense_gemv {

constant bool has_bias [[function_constant(kHasBiasConstant)]];

template <typename T>
[[kernel]] void dense_gemv_kernel(
    const device T* x [[buffer(kBufferX)]],
    const device T* w [[buffer(kBufferW)]],
    const device T* bias [[buffer(kBufferBias)]],
    device T* y [[buffer(kBufferY)]],
    const constant int& K [[buffer(kBufferK)]],
    const constant int& N [[buffer(kBufferN)]],
    const constant int64_t* batch_offsets [[buffer(kBufferBatchOffsets)]],
    uint3 threadgroup_id [[threadgroup_position_in_grid]],
    uint simd_group [[simdgroup_index_in_threadgroup]],
    uint simd_lane [[thread_index_in_simdgroup]]) {
  const constant int64_t* offsets =
      batch_offsets + threadgroup_id.z * kOffsetsPerBatch;
  dense_gemv<T>(
      x + offsets[kOffsetX],
      w + offsets[kOffsetW],
      bias,
      y + offsets[kOffsetY],
      K,
      N,
      has_bias,
      threadgroup_id,
      simd_group,
      simd_lane);
}

} // namespace dense_gemv
} // namespace qmm

namespace qmm {
namespace dense_gemm {

constant bool has_bias [[function_constant(kHasBiasConstant)]];

template <typename T, bool transpose, int tile>
[[kernel]] void dense_gemm_kernel(
    const device T* x [[buffer(kBufferX)]],
    const device T* w [[buffer(kBufferW)]],
    const device T* bias [[buffer(kBufferBias)]],
    device T* y [[buffer(kBufferY)]],
    const constant int& M [[buffer(kBufferM)]],
    const constant int& N [[buffer(kBufferN)]],
    const constant int& K [[buffer(kBufferK)]],
    const constant int64_t* batch_offsets [[buffer(kBufferBatchOffsets)]],
    uint3 threadgroup_id [[threadgroup_position_in_grid]],
    uint thread_index [[thread_index_in_threadgroup]],
    uint simd_group [[simdgroup_index_in_threadgroup]]) {
  threadgroup float tiles[threadgroup_floats(tile)];
  const constant int64_t* offsets =
      batch_offsets + threadgroup_id.z * kOffsetsPerBatch;
  const DenseTileLoader<T, transpose, tile> loader{w + offsets[kOffsetW], N, K};
  tiled_matmul::tiled_matmul<tile, T>(
      x + offsets[kOffsetX],
      loader,
      bias,
      y + offsets[kOffsetY],
      M,
      N,
      K,
      has_bias,
      tiles,
      threadgroup_id,
      thread_index,
      simd_group);
}

} // namespace dense_gemm
} // namespace qmm

// A run-time compiled single kernel (csrc/metal/kernel_source.h) brings its
// own instantiation.
#ifndef QMM_SINGLE_KERNEL

// Host names: dense_gemm_{t,n}_<dtype>_tile_{32,64} (t: x @ w.T) and
// dense_gemv_<dtype>.
#define QMM_INSTANTIATE_DENSE_GEMM(type_name, type, tile)   \
  QMM_INSTANTIATE_KERNEL(                                   \
      "dense_gemm_t_" #type_name "_tile_" #tile,            \
      qmm::dense_gemm::dense_gemm_kernel<type, true, tile>) \
  QMM_INSTANTIATE_KERNEL(                                   \
      "dense_gemm_n_" #type_name "_tile_" #tile,            \
      qmm::dense_gemm::dense_gemm_kernel<type, false, tile>)

#define QMM_INSTANTIATE_DENSE(type_name, type)    \
  QMM_INSTANTIATE_DENSE_GEMM(type_name, type, 32) \
  QMM_INSTANTIATE_DENSE_GEMM(type_name, type, 64)

QMM_INSTANTIATE_DENSE(float32, float)
QMM_INSTANTIATE_DENSE(float16, half)
#if __METAL_VERSION__ >= 310 // bfloat arrived with Metal 3.1
QMM_INSTANTIATE_DENSE(bfloat16, bfloat)
#endif

QMM_INSTANTIATE_KERNEL(
    "dense_gemv_float32",
    qmm::dense_gemv::dense_gemv_kernel<float>)
QMM_INSTANTIATE_KERNEL(
    "dense_gemv_float16",
    qmm::dense_gemv::dense_gemv_kernel<half>)
#if __METAL_VERSION__ >= 310 // bfloat arrived with Metal 3.1
QMM_INSTANTIATE_KERNEL(
    "dense_gemv_bfloat16",
    qmm::dense_gemv::dense_gemv_kernel<bfloat>)
#endif

#endif // QMM_SINGLE_KERNEL
