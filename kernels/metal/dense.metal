// Copyright © 2026 mlx-qmm contributors.
//
// Entry points of the dense kernels; the work is in the headers.

#include <metal_stdlib>

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
    uint3 threadgroup_id [[threadgroup_position_in_grid]],
    uint simd_group [[simdgroup_index_in_threadgroup]],
    uint simd_lane [[thread_index_in_simdgroup]]) {
  dense_gemv<T>(
      x, w, bias, y, K, N, has_bias, threadgroup_id, simd_group, simd_lane);
}

} // namespace dense_gemv
} // namespace qmm

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
