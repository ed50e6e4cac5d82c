// Copyright © 2026 mlx-qmm contributors.
//
// The cluster-split few-row kernels (skinny_cluster_gemm.cuh): every bits
// value, float16 and bfloat16, blocks of kSkinnyMaxRows rows.

#include "kernels/cuda/instances.cuh"
#include "kernels/cuda/skinny_cluster_gemm.cuh"

namespace mlx_qmm::cuda {

const void* skinny_cluster_affine_symbol(FloatType type, int bits) {
  return with_half_type(type, [&](auto zero) {
    using T = decltype(zero);
    return with_affine_bits(bits, [&]<int Bits>() {
      return reinterpret_cast<const void*>(
          &skinny_cluster_gemm<T, Bits, kSkinnyMaxRows>);
    });
  });
}

} // namespace mlx_qmm::cuda
