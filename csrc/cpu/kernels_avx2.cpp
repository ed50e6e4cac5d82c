// Copyright © 2026 mlx-qmm contributors.
//
// The AVX2 + FMA + F16C table (x86-64): the x86 kernel bodies
// (kernels_x86.h) on 8-lane vectors. CMake compiles this file alone with
// -mavx2 -mfma -mf16c; isa.cpp uses the table only after checking the CPU
// (__builtin_cpu_supports).

#include "csrc/cpu/kernels.h"

#if defined(__x86_64__) || defined(_M_X64)

#include "csrc/cpu/kernels_x86.h"

namespace mlx_qmm::cpu {

namespace {

constexpr Kernels kAvx2Kernels = x86_kernels<Vec256>("avx2");

} // namespace

const Kernels* avx2_kernels() {
  return &kAvx2Kernels;
}

} // namespace mlx_qmm::cpu

#else

namespace mlx_qmm::cpu {

const Kernels* avx2_kernels() {
  return nullptr;
}

} // namespace mlx_qmm::cpu

#endif
