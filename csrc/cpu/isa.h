// Copyright © 2026 mlx-qmm contributors.
//
// Which instruction-set level of the CPU kernels runs (kernels.h). The
// fastest one that this build and this CPU support, unless the environment
// variable MLX_QMM_CPU_ISA names another: "scalar" (portable C++, any CPU),
// "avx2" (x86-64 with AVX2, FMA and F16C), "avx512" (x86-64 with AVX-512 F,
// BW, DQ and VL), "avx512_vnni" (the same with VNNI: the 4-bit
// matrix-vector product on int8 dot products) or "neon" (arm64). The variable is read at every
// evaluation, so a test or a benchmark can switch levels in one process.

#pragma once

#include <string>
#include <vector>

#include "csrc/cpu/kernels.h"

namespace mlx_qmm::cpu {

// Levels this build and CPU can run, fastest first ("scalar" always last).
std::vector<std::string> available_isas();

// The kernels to use now. Throws std::invalid_argument when MLX_QMM_CPU_ISA
// names a level that does not exist or that this CPU cannot run.
const Kernels& active_kernels();

} // namespace mlx_qmm::cpu
