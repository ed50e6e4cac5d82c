// Copyright © 2026 mlx-qmm contributors.
//
// The Metal source of one kernel, for compiling it at run time: where no
// Metal compiler was found at build time (only the Command Line Tools), the
// extension carries the kernel sources (embedded by
// cmake/embed_metal_sources.py) and Metal's run-time compiler builds each
// kernel the first time a launch plan names it.

#pragma once

#include <string>
#include <string_view>

#include "csrc/metal/launch_plan.h"

namespace mlx_qmm::metal {

// kernels/metal/<name>.metal with our headers inlined; empty if unknown.
std::string_view embedded_metal_source(std::string_view name);

// The Metal source that defines exactly `plan`'s kernel under its host
// name: the plan's .metal file without its bulk instantiations, and one
// instantiation of the plan's template.
std::string single_kernel_source(const LaunchPlan& plan);

} // namespace mlx_qmm::metal
