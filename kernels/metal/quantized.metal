// Copyright © 2026 mlx-qmm contributors.
//
// Entry points of the affine quantized kernels; the work is in the headers.

#include <metal_stdlib>

#include "kernels/metal/instantiate.h"
#include "kernels/metal/qmm_affine.h"
#include "kernels/metal/qmv_affine.h"

using namespace metal;

namespace qmm {
namespace qmv_affine {

constant bool has_bias [[function_constant(kHasBiasConstant)]];

template <typename T, int group_size, int bits>
[[kernel]] void qmv_affine_kernel(
    const device T* x [[buffer(kBufferX)]],
    const device uint32_t* w [[buffer(kBufferW)]],
    const device T* scales [[buffer(kBufferScales)]],
    const device T* biases [[buffer(kBufferBiases)]],
    const device T* bias [[buffer(kBufferBias)]],
    device T* y [[buffer(kBufferY)]],
    const constant int& K [[buffer(kBufferK)]],
    const constant int& N [[buffer(kBufferN)]],
    const constant int64_t* batch_offsets [[buffer(kBufferBatchOffsets)]],
    uint3 threadgroup_id [[threadgroup_position_in_grid]],
    uint thread_index [[thread_index_in_threadgroup]],
    uint simd_group [[simdgroup_index_in_threadgroup]],
    uint simd_lane [[thread_index_in_simdgroup]]) {
  threadgroup float x_block[kGroupsPerBlock * group_size];
  const constant int64_t* offsets =
      batch_offsets + threadgroup_id.z * kOffsetsPerBatch;
  qmv_affine<T, group_size, bits>(
      x + offsets[kOffsetX],
      w + offsets[kOffsetW],
      scales + offsets[kOffsetScales],
      biases + offsets[kOffsetBiases],
      bias,
      y + offsets[kOffsetY],
      K,
      N,
      has_bias,
      x_block,
      threadgroup_id,
      thread_index,
      simd_group,
      simd_lane);
}

} // namespace qmv_affine
} // namespace qmm

namespace qmm {
namespace qmm_affine {

constant bool has_bias [[function_constant(kHasBiasConstant)]];

template <typename T, int group_size, int bits, bool transpose, int tile>
[[kernel]] void qmm_affine_kernel(
    const device T* x [[buffer(kBufferX)]],
    const device uint32_t* w [[buffer(kBufferW)]],
    const device T* scales [[buffer(kBufferScales)]],
    const device T* biases [[buffer(kBufferBiases)]],
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
  const AffineTileLoader<T, group_size, bits, transpose, tile> loader{
      w + offsets[kOffsetW],
      scales + offsets[kOffsetScales],
      biases + offsets[kOffsetBiases],
      N,
      K};
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

} // namespace qmm_affine
} // namespace qmm

// A run-time compiled single kernel (csrc/metal/kernel_source.h) brings its
// own instantiation.
#ifndef QMM_SINGLE_KERNEL

// Host names: qmv_affine_<dtype>_gs_<group size>_b_<bits> and
// qmm_affine_{t,n}_<dtype>_gs_<group size>_b_<bits>_tile_{32,64}
// (t: x @ w.T).
#define QMM_INSTANTIATE_QMM_AFFINE(type_name, type, group_size, bits, tile)   \
  QMM_INSTANTIATE_KERNEL(                                                     \
      "qmm_affine_t_" #type_name "_gs_" #group_size "_b_" #bits               \
      "_tile_" #tile,                                                         \
      qmm::qmm_affine::qmm_affine_kernel<type, group_size, bits, true, tile>) \
  QMM_INSTANTIATE_KERNEL(                                                     \
      "qmm_affine_n_" #type_name "_gs_" #group_size "_b_" #bits               \
      "_tile_" #tile,                                                         \
      qmm::qmm_affine::qmm_affine_kernel<type, group_size, bits, false, tile>)

#define QMM_INSTANTIATE_AFFINE(type_name, type, group_size, bits)   \
  QMM_INSTANTIATE_KERNEL(                                           \
      "qmv_affine_" #type_name "_gs_" #group_size "_b_" #bits,      \
      qmm::qmv_affine::qmv_affine_kernel<type, group_size, bits>)   \
  QMM_INSTANTIATE_QMM_AFFINE(type_name, type, group_size, bits, 32) \
  QMM_INSTANTIATE_QMM_AFFINE(type_name, type, group_size, bits, 64)

#define QMM_INSTANTIATE_AFFINE_BITS(type_name, type, group_size) \
  QMM_INSTANTIATE_AFFINE(type_name, type, group_size, 1)         \
  QMM_INSTANTIATE_AFFINE(type_name, type, group_size, 2)         \
  QMM_INSTANTIATE_AFFINE(type_name, type, group_size, 3)         \
  QMM_INSTANTIATE_AFFINE(type_name, type, group_size, 4)         \
  QMM_INSTANTIATE_AFFINE(type_name, type, group_size, 5)         \
  QMM_INSTANTIATE_AFFINE(type_name, type, group_size, 6)         \
  QMM_INSTANTIATE_AFFINE(type_name, type, group_size, 8)

#define QMM_INSTANTIATE_AFFINE_GROUPS(type_name, type) \
  QMM_INSTANTIATE_AFFINE_BITS(type_name, type, 32)     \
  QMM_INSTANTIATE_AFFINE_BITS(type_name, type, 64)     \
  QMM_INSTANTIATE_AFFINE_BITS(type_name, type, 128)

QMM_INSTANTIATE_AFFINE_GROUPS(float32, float)
QMM_INSTANTIATE_AFFINE_GROUPS(float16, half)
#if __METAL_VERSION__ >= 310 // bfloat arrived with Metal 3.1
QMM_INSTANTIATE_AFFINE_GROUPS(bfloat16, bfloat)
#endif

#endif // QMM_SINGLE_KERNEL
