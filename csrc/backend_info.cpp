// Copyright © 2026 mlx-qmm contributors.

#include "csrc/backend_info.h"

#include "csrc/metal/simulator_bridge.h"

namespace mlx_qmm {

bool has_own_kernels(const mx::Device& device, KernelFamily) {
  // The Metal and CUDA kernels have not landed: GPU streams build stock ops.
  return device == mx::Device::cpu;
}

std::vector<KernelProvider> kernel_providers() {
  const char* cpu = "mlx_qmm CPU kernels (csrc/cpu)";
  const char* gpu_fallback =
      "stock MLX ops (mx.quantized_matmul / mx.matmul); mlx_qmm GPU kernels "
      "not built yet";
  std::string cpu_dense = cpu;
  std::string cpu_quantized = cpu;
  if (metal::simulator_requested()) {
    const char* state = metal::simulator_active()
        ? "metal-sim: "
        : "metal-sim requested, but no simulator library is loaded: ";
    cpu_dense = std::string(state) +
        (metal::simulator_active()
             ? "Metal kernels on the Metal simulator for a 2-D w and "
               "row-contiguous operands (dense_gemv for x @ w.T with one "
               "row of x, dense_gemm otherwise), otherwise "
             : "") +
        cpu;
    cpu_quantized = std::string(state) +
        (metal::simulator_active()
             ? "Metal kernels on the Metal simulator for a 2-D w and "
               "row-contiguous operands (qmv_affine for x @ w.T with one "
               "row of x, qmm_affine otherwise), otherwise "
             : "") +
        cpu;
  }
  return {
      {"cpu", "quantized_matmul", cpu_quantized},
      {"cpu", "matmul", cpu_dense},
      {"gpu",
       "quantized_matmul",
       has_own_kernels(mx::Device::gpu, KernelFamily::AffineQuantized)
           ? cpu
           : gpu_fallback},
      {"gpu",
       "matmul",
       has_own_kernels(mx::Device::gpu, KernelFamily::Dense) ? cpu
                                                             : gpu_fallback},
  };
}

} // namespace mlx_qmm
