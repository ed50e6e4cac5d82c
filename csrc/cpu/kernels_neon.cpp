// Copyright © 2026 mlx-qmm contributors.
//
// The NEON kernels (arm64). Not yet written: arm64 runs the scalar table.

#include "csrc/cpu/kernels.h"

namespace mlx_qmm::cpu {

const Kernels* neon_kernels() {
  return nullptr;
}

} // namespace mlx_qmm::cpu
