// Copyright © 2026 mlx-qmm contributors.
//
// The 4-bit decode kernel on tensor cores (matvec_tensor.cuh), float16 and
// bfloat16.

#include "kernels/cuda/instances.cuh"
#include "kernels/cuda/matvec_tensor.cuh"

namespace mlx_qmm::cuda {

const void* matvec_tensor_affine_symbol(FloatType type) {
  return with_half_type(type, [&](auto zero) {
    using T = decltype(zero);
    return reinterpret_cast<const void*>(&matvec_tensor<T>);
  });
}

} // namespace mlx_qmm::cuda
