// Copyright © 2026 mlx-qmm contributors.

#include "csrc/backend_info.h"

#include "csrc/metal/metal_build.h"
#include "csrc/metal/simulator_bridge.h"

namespace mlx_qmm {

namespace {

#ifdef MLX_QMM_CUDA
constexpr bool kCudaKernels = true;
#else
constexpr bool kCudaKernels = false;
#endif

} // namespace

bool has_own_kernels(const mx::Device& device, KernelFamily) {
  if (device == mx::Device::cpu) {
    return true;
  }
  // GPU streams: our Metal kernels where MLX has its Metal backend, our
  // CUDA kernels where it has its CUDA backend.
  return metal::kMetalKernelSource != metal::MetalKernelSource::None ||
      kCudaKernels;
}

namespace {

std::string gpu_provider(const char* kernels, const char* cuda_kernels) {
  if (kCudaKernels) {
    return std::string("mlx_qmm CUDA kernels (") + cuda_kernels + ")";
  }
  switch (metal::kMetalKernelSource) {
    case metal::MetalKernelSource::Metallib:
      return std::string("mlx_qmm Metal kernels (") + kernels +
          ") from mlx_qmm.metallib, built at install time";
    case metal::MetalKernelSource::RuntimeCompiled:
      return std::string("mlx_qmm Metal kernels (") + kernels +
          ") compiled from embedded sources at first use (no Metal "
          "compiler at install time)";
    case metal::MetalKernelSource::None:
      break;
  }
  return "stock MLX ops (mx.quantized_matmul / mx.matmul); mlx_qmm has no "
         "kernels for this GPU backend yet";
}

std::string cpu_provider(const char* metal_kernels) {
  const std::string cpu = "mlx_qmm CPU kernels (csrc/cpu)";
  if (!metal::simulator_requested()) {
    return cpu;
  }
  if (!metal::simulator_active()) {
    return "metal-sim requested, but no simulator library is loaded: " + cpu;
  }
  return std::string("metal-sim: Metal kernels on the Metal simulator (") +
      metal_kernels + ") for float32, float16 and bfloat16; " + cpu +
      " for float64";
}

} // namespace

const char* cuda_kernel_list(KernelFamily family) {
  if (family == KernelFamily::AffineQuantized) {
    return "matvec_affine, matvec_tensor_affine (4 bits, float16/bfloat16), "
           "skinny_affine, skinny_cluster_affine (sm_90), skinny_ring_affine "
           "(4 bits, sm_90), "
           "wgmma_affine (4 and 8 bits, sm_90), dequantize_affine followed "
           "by wgmma_dense (sm_90, many rows of x) and tensor_affine "
           "(float16/bfloat16), simt_affine";
  }
  return "matvec_dense, skinny_dense, wgmma_dense (sm_90) and tensor_dense "
         "(float16/bfloat16), simt_dense";
}

std::vector<KernelProvider> kernel_providers() {
  const char* quantized = "qmv_affine, qmm_affine";
  const char* dense = "dense_gemv, dense_gemm";
  const char* cuda_quantized = cuda_kernel_list(KernelFamily::AffineQuantized);
  const char* cuda_dense = cuda_kernel_list(KernelFamily::Dense);
  return {
      {"cpu", "quantized_matmul", cpu_provider(quantized)},
      {"cpu", "matmul", cpu_provider(dense)},
      {"gpu", "quantized_matmul", gpu_provider(quantized, cuda_quantized)},
      {"gpu", "matmul", gpu_provider(dense, cuda_dense)},
  };
}

} // namespace mlx_qmm
