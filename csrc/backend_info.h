// Copyright © 2026 mlx-qmm contributors.
//
// Which kernels serve which device. The ops consult it to decide between our
// primitives and the stock-op fallback; backend_info() reports it.

#pragma once

#include <string>
#include <vector>

#include "mlx/device.h"

namespace mlx_qmm {

namespace mx = mlx::core;

enum class KernelFamily { AffineQuantized, Dense };

// True when our own kernels evaluate `family` on `device`'s streams.
bool has_own_kernels(const mx::Device& device, KernelFamily family);

struct KernelProvider {
  std::string device; // "cpu" or "gpu"
  std::string op; // "quantized_matmul" or "matmul"
  std::string provider; // who does the work, in words
};

std::vector<KernelProvider> kernel_providers();

// The CUDA kernels that may serve `family`, by the family names of the
// launch plans (csrc/cuda/launch_plan.h), whether or not this build has
// them; kernel_providers() quotes it in CUDA builds.
const char* cuda_kernel_list(KernelFamily family);

} // namespace mlx_qmm
