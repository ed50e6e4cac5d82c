// Copyright © 2026 mlx-qmm contributors.
//
// The few-row tensor-core kernels (skinny_gemm.cuh): every bits value,
// float16 and bfloat16, blocks of 8, 16 and 32 rows.

#include "kernels/cuda/instances.cuh"
#include "kernels/cuda/skinny_gemm.cuh"

namespace mlx_qmm::cuda {

namespace {

template <typename T, int rows>
const void* skinny_for_bits(int bits) {
  return with_affine_bits(bits, [&]<int Bits>() {
    return reinterpret_cast<const void*>(&skinny_gemm<T, Bits, rows>);
  });
}

} // namespace

const void* skinny_affine_symbol(FloatType type, int bits, int rows) {
  return with_float_type(type, [&](auto zero) -> const void* {
    using T = decltype(zero);
    if constexpr (std::is_same_v<T, float>) {
      return nullptr; // tensor cores take float16 and bfloat16 only
    } else if (rows == 8) {
      return skinny_for_bits<T, 8>(bits);
    } else if (rows == 16) {
      return skinny_for_bits<T, 16>(bits);
    } else if (rows == kSkinnyMaxRows) {
      return skinny_for_bits<T, kSkinnyMaxRows>(bits);
    } else {
      return nullptr;
    }
  });
}

} // namespace mlx_qmm::cuda
