// Copyright © 2026 mlx-qmm contributors.
//
// The dequantization kernels of the dequantize-first plans, and their
// lookup.

#include "kernels/cuda/dequantize_affine.cuh"
#include "kernels/cuda/instances.cuh"

namespace mlx_qmm::cuda {

const void* dequantize_affine_symbol(FloatType type, int bits) {
  return with_affine_bits(bits, [&]<int Bits>() {
    return with_half_type(type, [](auto zero) {
      using T = decltype(zero);
      return reinterpret_cast<const void*>(&dequantize_affine<T, Bits>);
    });
  });
}

} // namespace mlx_qmm::cuda
