// Copyright © 2026 mlx-qmm contributors.
//
// The AVX-512 table (x86-64 with AVX-512 F, BW, DQ and VL): the x86 kernel
// bodies (kernels_x86.h) on 16-lane vectors. CMake compiles this file alone
// with -mavx512f -mavx512bw -mavx512dq -mavx512vl -mfma -mf16c; isa.cpp
// uses the table only after checking the CPU. Twice the lanes per
// instruction matter most in the quantized matrix-vector products, which
// on two cores are bound by the unpack-convert-FMA work, not by memory.
// Compilers without those flags (or other targets) build a stub.

#include "csrc/cpu/kernels.h"

#if (defined(__x86_64__) || defined(_M_X64)) && defined(__AVX512F__) && \
    defined(__AVX512BW__) && defined(__AVX512DQ__) && defined(__AVX512VL__)

// GCC 12's own AVX-512 headers trip -Wuninitialized and
// -Wmaybe-uninitialized at -O3 (their "undefined" vectors are initialised
// from themselves, GCC bug 105593, fixed in GCC 13): silence just those,
// just here.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include "csrc/cpu/kernels_x86.h"

namespace mlx_qmm::cpu {

namespace {

constexpr Kernels kAvx512Kernels = x86_kernels<Vec512>("avx512");

} // namespace

const Kernels* avx512_kernels() {
  return &kAvx512Kernels;
}

} // namespace mlx_qmm::cpu

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

#else

namespace mlx_qmm::cpu {

const Kernels* avx512_kernels() {
  return nullptr;
}

} // namespace mlx_qmm::cpu

#endif
