// Copyright © 2026 mlx-qmm contributors.

#include "csrc/metal/kernel_source.h"

#include <stdexcept>

namespace mlx_qmm::metal {

std::string single_kernel_source(const LaunchPlan& plan) {
  const std::string_view source = embedded_metal_source(plan.source);
  if (source.empty()) {
    throw std::logic_error(
        "[mlx_qmm] No embedded Metal source named '" + plan.source + "'.");
  }
  // QMM_SINGLE_KERNEL leaves out the .metal file's own instantiations.
  return "#define QMM_SINGLE_KERNEL 1\n" + std::string(source) +
      "\nQMM_INSTANTIATE_KERNEL(\"" + plan.kernel + "\", " +
      plan.instantiation + ")\n";
}

} // namespace mlx_qmm::metal
