// Copyright © 2026 mlx-qmm contributors.
//
// The ring-fed few-row kernel (skinny_ring_gemm.cuh): 4 bits, float16 and
// bfloat16.

#include "kernels/cuda/instances.cuh"
#include "kernels/cuda/skinny_ring_gemm.cuh"

namespace mlx_qmm::cuda {

const void* skinny_ring_affine_symbol(FloatType type, int bits) {
  if (bits != 4) {
    return nullptr;
  }
  return with_half_type(type, [&](auto zero) {
    using T = decltype(zero);
    return reinterpret_cast<const void*>(&skinny_ring_gemm<T, 4>);
  });
}

} // namespace mlx_qmm::cuda
