// Copyright © 2026 mlx-qmm contributors.
//
// The tensor-core kernels for 8-bit weights (instances.cuh says why one
// file a bits value).

#include "kernels/cuda/instances.cuh"

namespace mlx_qmm::cuda {

template const void* tensor_symbol_for_bits<8>(FloatType, TensorTile);

} // namespace mlx_qmm::cuda
