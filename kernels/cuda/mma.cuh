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

// Copies `bytes` (4, 8 or 16) from global memory to shared-memory address
// `shared` (shared_address) asynchronously.
template <int bytes>
__device__ __forceinline__ void copy_async(
    uint32_t shared,
    const void* global) {
  static_assert(bytes == 4 || bytes == 8 || bytes == 16);
  if constexpr (bytes == 16) {
    // .cg: a tile is read once per block; keep it out of L1.
    asm volatile(
        "cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(shared),
        "l"(global));
  } else {
    asm volatile(
        "cp.async.ca.shared.global [%0], [%1], %2;\n" ::"r"(shared),
        "l"(global),
        "n"(bytes));
  }
}

// The same, reading only the first `src_bytes` (0 to `bytes`) and writing
// zeros for the rest: 0 pads the edges of a tile and reads nothing.
template <int bytes>
__device__ __forceinline__ void
copy_async(uint32_t shared, const void* global, int src_bytes) {
  static_assert(bytes == 4 || bytes == 8 || bytes == 16);
  if constexpr (bytes == 16) {
    asm volatile(
        "cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(shared),
        "l"(global),
        "r"(src_bytes));
  } else {
    asm volatile(
        "cp.async.ca.shared.global [%0], [%1], %2, %3;\n" ::"r"(shared),
        "l"(global),
        "n"(bytes),
        "r"(src_bytes));
  }
}

// A bool would convert to a byte count of 1: callers say valid ? bytes : 0.
template <int bytes>
void copy_async(uint32_t shared, const void* global, bool valid) = delete;

// At a generic pointer into shared memory: when !valid, zeros.
template <int bytes>
__device__ __forceinline__ void
copy_async(void* shared, const void* global, bool valid) {
  copy_async<bytes>(shared_address(shared), global, valid ? bytes : 0);
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
