// Copyright © 2026 mlx-qmm contributors.
//
// The warpgroup GEMM kernels for 8-bit weights (instances.cuh says why one
// file a bits value).

#include "kernels/cuda/instances.cuh"

namespace mlx_qmm::cuda {

template const void* wgmma_symbol_for_bits<8>(FloatType, WgmmaTile);

} // namespace mlx_qmm::cuda
