// Copyright © 2026 mlx-qmm contributors.
//
// The matrix-vector, dense tensor-core, dense warpgroup and CUDA-core
// instantiations, and the lookups of kernel_symbols.h. The quantized
// tensor-core kernels are instantiated in tensor_gemm_affine_<bits>.cu; the
// skinny and the 4- and 8-bit warpgroup ones in skinny_gemm_affine.cu and
// wgmma_affine_gemm.cu, each with its lookup.

#include "kernels/cuda/instances.cuh"

namespace mlx_qmm::cuda {

namespace {

template <typename T, int rows>
const void* matvec_affine_for_bits(int bits) {
  return with_affine_bits(bits, [&]<int Bits>() {
    using Rows = AffineRows<T, Bits, matvec_chunk_values(Bits)>;
    if constexpr (matvec_streams(Bits, sizeof(T), rows)) {
      return reinterpret_cast<const void*>(&matvec_streaming<T, Rows, rows>);
    } else {
      return reinterpret_cast<const void*>(&matvec<T, Rows, rows>);
    }
  });
}

} // namespace

const void* matvec_affine_symbol(FloatType type, int bits, int rows) {
  return with_float_type(type, [&](auto zero) -> const void* {
    using T = decltype(zero);
    if (rows == 1) {
      return matvec_affine_for_bits<T, 1>(bits);
    }
    if (rows == kMatvecMaxRows) {
      return matvec_affine_for_bits<T, kMatvecMaxRows>(bits);
    }
    return nullptr;
  });
}

const void* matvec_dense_symbol(FloatType type, int rows) {
  return with_float_type(type, [&](auto zero) -> const void* {
    using T = decltype(zero);
    if (rows == 1) {
      return reinterpret_cast<const void*>(&matvec<T, DenseRows<T>, 1>);
    }
    if (rows == kMatvecMaxRows) {
      return reinterpret_cast<const void*>(
          &matvec<T, DenseRows<T>, kMatvecMaxRows>);
    }
    return nullptr;
  });
}

const void* skinny_dense_symbol(FloatType type, int x_rows) {
  return with_half_type(type, [&](auto zero) -> const void* {
    using T = decltype(zero);
    if (x_rows == 8) {
      return reinterpret_cast<const void*>(&skinny_dense_gemm<T, 8>);
    }
    if (x_rows == 16) {
      return reinterpret_cast<const void*>(&skinny_dense_gemm<T, 16>);
    }
    if (x_rows == 32) {
      return reinterpret_cast<const void*>(&skinny_dense_gemm<T, 32>);
    }
    return nullptr;
  });
}

const void* tensor_affine_symbol(FloatType type, int bits, TensorTile tile) {
  return with_affine_bits(bits, [&]<int Bits>() {
    return tensor_symbol_for_bits<Bits>(type, tile);
  });
}

const void* tensor_dense_symbol(FloatType type, TensorTile tile) {
  return tensor_symbol_for_bits<0>(type, tile);
}

const void* wgmma_dense_symbol(FloatType type, WgmmaTile tile) {
  return with_half_type(type, [&](auto zero) {
    using T = decltype(zero);
    return with_wgmma_tile(tile, [](auto t) {
      return reinterpret_cast<const void*>(&wgmma_gemm<T, t.value>);
    });
  });
}

const void* simt_symbol(FloatType type, bool quantized, bool transpose) {
  return with_float_type(type, [&](auto zero) -> const void* {
    using T = decltype(zero);
    if (quantized) {
      return transpose
          ? reinterpret_cast<const void*>(&simt_gemm<T, true, true>)
          : reinterpret_cast<const void*>(&simt_gemm<T, true, false>);
    }
    return transpose
        ? reinterpret_cast<const void*>(&simt_gemm<T, false, true>)
        : reinterpret_cast<const void*>(&simt_gemm<T, false, false>);
  });
}

const void* split_sum_symbol(FloatType type) {
  return with_half_type(type, [](auto zero) {
    using T = decltype(zero);
    return reinterpret_cast<const void*>(&split_sum<T>);
  });
}

const void* strided_copy_symbol(int element_bytes) {
  switch (element_bytes) {
    case 2:
      return reinterpret_cast<const void*>(&strided_copy<uint16_t>);
    case 4:
      return reinterpret_cast<const void*>(&strided_copy<uint32_t>);
    default:
      return nullptr;
  }
}

} // namespace mlx_qmm::cuda
