// Copyright © 2026 mlx-qmm contributors.
//
// Entry points of the strided copy; the work is in the header.

#include <metal_stdlib>

#include "kernels/metal/instantiate.h"
#include "kernels/metal/strided_copy.h"

using namespace metal;

namespace qmm {
namespace strided_copy {

template <typename T>
[[kernel]] void strided_copy_kernel(
    const device T* in [[buffer(kBufferIn)]],
    device T* out [[buffer(kBufferOut)]],
    const constant int& ndim [[buffer(kBufferNdim)]],
    const constant int* shape [[buffer(kBufferShape)]],
    const constant int64_t* strides [[buffer(kBufferStrides)]],
    const constant int64_t& size [[buffer(kBufferSize)]],
    uint3 threadgroup_id [[threadgroup_position_in_grid]],
    uint thread_index [[thread_index_in_threadgroup]]) {
  strided_copy<T>(
      in, out, ndim, shape, strides, size, threadgroup_id, thread_index);
}

} // namespace strided_copy
} // namespace qmm

// A run-time compiled single kernel (csrc/metal/kernel_source.h) brings its
// own instantiation.
#ifndef QMM_SINGLE_KERNEL

// Host names: strided_copy_<element bits>.
QMM_INSTANTIATE_KERNEL(
    "strided_copy_16",
    qmm::strided_copy::strided_copy_kernel<uint16_t>)
QMM_INSTANTIATE_KERNEL(
    "strided_copy_32",
    qmm::strided_copy::strided_copy_kernel<uint32_t>)

#endif // QMM_SINGLE_KERNEL
