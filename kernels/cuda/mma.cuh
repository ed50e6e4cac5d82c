// Copyright © 2026 mlx-qmm contributors.
//
// The few PTX instructions the tensor-core GEMMs are built from: cp.async
// copies into shared memory, ldmatrix, and the m16n8k16 product with
// float32 accumulators (sm_80 and later).

#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>
#include <type_traits>

namespace mlx_qmm::cuda {

__device__ __forceinline__ uint32_t shared_address(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// Copies `bytes` (4, 8 or 16) from global to shared memory asynchronously;
// when !valid it reads nothing and writes zeros (src-size 0), which pads
// the edges of a tile.
template <int bytes>
__device__ __forceinline__ void
copy_async(void* shared, const void* global, bool valid) {
  const int src_size = valid ? bytes : 0;
  if constexpr (bytes == 16) {
    // .cg: the tile is used once per block; keep it out of L1.
    asm volatile(
        "cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(
            shared_address(shared)),
        "l"(global),
        "r"(src_size));
  } else {
    asm volatile(
        "cp.async.ca.shared.global [%0], [%1], %2, %3;\n" ::"r"(
            shared_address(shared)),
        "l"(global),
        "n"(bytes),
        "r"(src_size));
  }
}

// The same at a shared-memory address (shared_address), for copies whose
// destinations are set up once as offsets (wgmma.cuh's SwizzledTileCopy):
// the first `src_bytes` (0 to 4) of a 4-byte word, the rest zero-filled.
__device__ __forceinline__ void
copy_async_word(uint32_t shared, const void* global, int src_bytes) {
  asm volatile(
      "cp.async.ca.shared.global [%0], [%1], 4, %2;\n" ::"r"(shared),
      "l"(global),
      "r"(src_bytes));
}

// Copies 8 bytes to shared address `shared`.
__device__ __forceinline__ void copy_async_8(
    uint32_t shared,
    const void* global) {
  asm volatile(
      "cp.async.ca.shared.global [%0], [%1], 8;\n" ::"r"(shared), "l"(global));
}

// Copies 16 bytes to shared address `shared`.
__device__ __forceinline__ void copy_async_16(
    uint32_t shared,
    const void* global) {
  asm volatile(
      "cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(shared), "l"(global));
}

// The same, or zero-fills the 16 bytes when !valid (reading nothing: the
// ignore-src predicate).
__device__ __forceinline__ void
copy_async_16(uint32_t shared, const void* global, bool valid) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.eq.u32 p, %2, 0;\n"
      "cp.async.cg.shared.global [%0], [%1], 16, p;\n}\n" ::"r"(shared),
      "l"(global),
      "r"(static_cast<uint32_t>(valid)));
}

__device__ __forceinline__ void copy_async_commit() {
  asm volatile("cp.async.commit_group;\n" ::);
}

// Waits until at most `pending` committed groups are still in flight.
template <int pending>
__device__ __forceinline__ void copy_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(pending));
}

// Four 8x8 matrices of 16-bit elements; lanes 8i..8i+7 give the row
// addresses of matrix i, and each lane receives one 32-bit register of each.
__device__ __forceinline__ void load_matrix_x4(
    uint32_t (&r)[4],
    const void* p) {
  asm volatile(
      "ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
      : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
      : "r"(shared_address(p)));
}

// d += a * b for one 16x8x16 tile: a row-major (16 x 16), b column-major
// (16 x 8), in the per-lane fragment layout of the PTX ISA.
template <typename T>
__device__ __forceinline__ void
mma_16816(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
  if constexpr (std::is_same_v<T, __nv_bfloat16>) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 "
        "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
  } else {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 "
        "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
  }
}

// Two floats rounded into one register of two 16-bit elements (low first).
template <typename T>
__device__ __forceinline__ uint32_t pack2(float lo, float hi) {
  if constexpr (std::is_same_v<T, __nv_bfloat16>) {
    const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<const uint32_t*>(&v);
  } else {
    const __half2 v = __floats2half2_rn(lo, hi);
    return *reinterpret_cast<const uint32_t*>(&v);
  }
}

} // namespace mlx_qmm::cuda
