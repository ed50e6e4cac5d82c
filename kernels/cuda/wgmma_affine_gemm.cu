// Copyright © 2026 mlx-qmm contributors.
//
// The warpgroup GEMM kernels for 4- and 8-bit weights, and their lookup.

#include "kernels/cuda/instances.cuh"

namespace mlx_qmm::cuda {

namespace {

template <int bits>
const void* wgmma_affine_for_bits(FloatType type, WgmmaTile tile) {
  return with_half_type(type, [&](auto zero) {
    using T = decltype(zero);
    return with_wgmma_tile(tile, [](auto t) {
      return reinterpret_cast<const void*>(
          &wgmma_affine_gemm<T, bits, t.value>);
    });
  });
}

} // namespace

const void* wgmma_affine_symbol(FloatType type, int bits, WgmmaTile tile) {
  switch (bits) {
    case 4:
      return wgmma_affine_for_bits<4>(type, tile);
    case 8:
      return wgmma_affine_for_bits<8>(type, tile);
    default:
      return nullptr;
  }
}

} // namespace mlx_qmm::cuda
