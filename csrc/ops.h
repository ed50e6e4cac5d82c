// Copyright © 2026 mlx-qmm contributors.
//
// The public ops. Each validates every argument (raising std::invalid_argument,
// which Python sees as ValueError, with the argument named) before it builds
// any graph, then builds our primitive on CPU streams or, on GPU streams whose
// kernels have not landed yet, the equivalent stock MLX ops.

#pragma once

#include <optional>
#include <string>

#include "mlx/array.h"
#include "mlx/utils.h"

namespace mlx_qmm {

namespace mx = mlx::core;

// x @ dequantize(w).T + bias (transpose=true) or x @ dequantize(w) + bias,
// for mode="affine"; the semantics of mx.quantized_matmul plus a fused bias.
mx::array quantized_matmul(
    const mx::array& x,
    const mx::array& w,
    const mx::array& scales,
    const std::optional<mx::array>& biases,
    bool transpose,
    std::optional<int> group_size,
    std::optional<int> bits,
    const std::string& mode,
    const std::optional<mx::array>& bias,
    mx::StreamOrDevice s = {});

// x @ w.T + bias (transpose=true) or x @ w + bias.
mx::array matmul(
    const mx::array& x,
    const mx::array& w,
    bool transpose,
    const std::optional<mx::array>& bias,
    mx::StreamOrDevice s = {});

} // namespace mlx_qmm
