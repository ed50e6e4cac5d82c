// Copyright © 2026 mlx-qmm contributors.

#include "csrc/backend_info.h"

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
  auto provider = [&](mx::Device d, KernelFamily f) {
    return has_own_kernels(d, f) ? cpu : gpu_fallback;
  };
  return {
      {"cpu",
       "quantized_matmul",
       provider(mx::Device::cpu, KernelFamily::AffineQuantized)},
      {"cpu", "matmul", provider(mx::Device::cpu, KernelFamily::Dense)},
      {"gpu",
       "quantized_matmul",
       provider(mx::Device::gpu, KernelFamily::AffineQuantized)},
      {"gpu", "matmul", provider(mx::Device::gpu, KernelFamily::Dense)},
  };
}

} // namespace mlx_qmm
