// Copyright © 2026 mlx-qmm contributors.
//
// How this build of the extension serves Metal GPU streams, from the
// definitions CMakeLists.txt sets: MLX_QMM_METAL when the MLX it builds
// against has its Metal backend, MLX_QMM_METALLIB when a Metal compiler
// also built mlx_qmm.metallib.

#pragma once

namespace mlx_qmm::metal {

enum class MetalKernelSource {
  None, // no Metal backend: GPU streams are not Metal
  Metallib, // mlx_qmm.metallib, compiled at install time
  RuntimeCompiled, // embedded sources, compiled per kernel at first use
};

#if defined(MLX_QMM_METALLIB)
inline constexpr MetalKernelSource kMetalKernelSource =
    MetalKernelSource::Metallib;
#elif defined(MLX_QMM_METAL)
inline constexpr MetalKernelSource kMetalKernelSource =
    MetalKernelSource::RuntimeCompiled;
#else
inline constexpr MetalKernelSource kMetalKernelSource = MetalKernelSource::None;
#endif

} // namespace mlx_qmm::metal
