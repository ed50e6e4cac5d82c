// Copyright © 2026 mlx-qmm contributors.
//
// Symbol tables of the kernel variants (kernel_symbols.h), as templates so
// that each instantiation file compiles a slice of them: the tensor-core
// kernels of one bits value per file (tensor_gemm_affine_<bits>.cu), which
// lets the build compile them in parallel.

#pragma once

#include <utility>

#include "csrc/quantized_format.h"
#include "kernels/cuda/kernel_symbols.h"
#include "kernels/cuda/matvec.cuh"
#include "kernels/cuda/simt_gemm.cuh"
#include "kernels/cuda/skinny_dense_gemm.cuh"
#include "kernels/cuda/split_sum.cuh"
#include "kernels/cuda/strided_copy.cuh"
#include "kernels/cuda/tensor_gemm.cuh"
#include "kernels/cuda/wgmma_affine_gemm.cuh"
#include "kernels/cuda/wgmma_gemm.cuh"

namespace mlx_qmm::cuda {

// f.template operator()<Bits>() for the supported bits value equal to
// `bits` (quantized_format.h lists them); null for any other value.
template <class F>
const void* with_affine_bits(int bits, F&& f) {
  return [&]<std::size_t... I>(std::index_sequence<I...>) {
    const void* symbol = nullptr;
    ((bits == kSupportedBits[I]
          ? (symbol = f.template operator()<kSupportedBits[I]>(), true)
          : false) ||
     ...);
    return symbol;
  }(std::make_index_sequence<kSupportedBits.size()>{});
}

template <class F>
const void* with_float_type(FloatType type, F&& f) {
  switch (type) {
    case FloatType::Float32:
      return f(float{});
    case FloatType::Float16:
      return f(__half{});
    case FloatType::BFloat16:
      return f(__nv_bfloat16{});
  }
  return nullptr;
}

template <class F>
const void* with_tensor_tile(TensorTile tile, F&& f) {
  switch (tile) {
    case TensorTile::Small:
      return f(std::integral_constant<TensorTile, TensorTile::Small>{});
    case TensorTile::Medium:
      return f(std::integral_constant<TensorTile, TensorTile::Medium>{});
    case TensorTile::Large:
      return f(std::integral_constant<TensorTile, TensorTile::Large>{});
    case TensorTile::Huge:
      return f(std::integral_constant<TensorTile, TensorTile::Huge>{});
  }
  return nullptr;
}

template <class F>
const void* with_wgmma_tile(WgmmaTile tile, F&& f) {
  switch (tile) {
    case WgmmaTile::Narrow:
      return f(std::integral_constant<WgmmaTile, WgmmaTile::Narrow>{});
    case WgmmaTile::Wide:
      return f(std::integral_constant<WgmmaTile, WgmmaTile::Wide>{});
  }
  return nullptr;
}

// f(T{}) for the 16-bit float types, which tensor cores take; null for
// float32.
template <class F>
const void* with_half_type(FloatType type, F&& f) {
  switch (type) {
    case FloatType::Float16:
      return f(__half{});
    case FloatType::BFloat16:
      return f(__nv_bfloat16{});
    default:
      return nullptr;
  }
}

template <int bits>
const void* tensor_symbol_for_bits(FloatType type, TensorTile tile) {
  return with_half_type(type, [&](auto zero) {
    using T = decltype(zero);
    return with_tensor_tile(tile, [](auto t) {
      return reinterpret_cast<const void*>(&tensor_gemm<T, bits, t.value>);
    });
  });
}

extern template const void* tensor_symbol_for_bits<1>(FloatType, TensorTile);
extern template const void* tensor_symbol_for_bits<2>(FloatType, TensorTile);
extern template const void* tensor_symbol_for_bits<3>(FloatType, TensorTile);
extern template const void* tensor_symbol_for_bits<4>(FloatType, TensorTile);
extern template const void* tensor_symbol_for_bits<5>(FloatType, TensorTile);
extern template const void* tensor_symbol_for_bits<6>(FloatType, TensorTile);
extern template const void* tensor_symbol_for_bits<8>(FloatType, TensorTile);

} // namespace mlx_qmm::cuda
