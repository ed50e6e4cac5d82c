// Copyright © 2026 mlx-qmm contributors.
//
// The warpgroup GEMM kernels for 4- and 8-bit weights, and their lookup.

#include "kernels/cuda/instances.cuh"

namespace mlx_qmm::cuda {

namespace {

template <int bits>
const void* wgmma_affine_for_bits(FloatType type, WgmmaTile tile) {
  auto for_type = [&](auto zero) -> const void* {
    using T = decltype(zero);
    return tile == WgmmaTile::Wide
        ? reinterpret_cast<const void*>(
              &wgmma_affine_gemm<T, bits, WgmmaTile::Wide>)
        : reinterpret_cast<const void*>(
              &wgmma_affine_gemm<T, bits, WgmmaTile::Narrow>);
  };
  switch (type) {
    case FloatType::Float16:
      return for_type(__half{});
    case FloatType::BFloat16:
      return for_type(__nv_bfloat16{});
    default:
      return nullptr;
  }
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
