// Copyright © 2026 mlx-qmm contributors.
//
// The three float types as the kernels see them: float32 arithmetic on
// every type, with loads that widen 16-byte vectors and stores that round
// once (round to nearest even, as MLX does).

#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

#include "kernels/cuda/launch_params.h"

namespace mlx_qmm::cuda {

template <FloatType type>
struct FloatOf;
template <>
struct FloatOf<FloatType::Float32> {
  using type = float;
};
template <>
struct FloatOf<FloatType::Float16> {
  using type = __half;
};
template <>
struct FloatOf<FloatType::BFloat16> {
  using type = __nv_bfloat16;
};

__device__ __forceinline__ float to_float(float v) {
  return v;
}
__device__ __forceinline__ float to_float(__half v) {
  return __half2float(v);
}
__device__ __forceinline__ float to_float(__nv_bfloat16 v) {
  return __bfloat162float(v);
}

template <typename T>
__device__ __forceinline__ T from_float(float v);
template <>
__device__ __forceinline__ float from_float<float>(float v) {
  return v;
}
template <>
__device__ __forceinline__ __half from_float<__half>(float v) {
  return __float2half_rn(v);
}
template <>
__device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float v) {
  return __float2bfloat16_rn(v);
}

// Eight consecutive elements of T held as raw 16-byte vectors (two for
// float32), widened to float32.
template <typename T>
struct Raw8 {
  uint4 v[sizeof(T) / 2];
};

__device__ __forceinline__ void widen8(const Raw8<float>& r, float (&v)[8]) {
#pragma unroll
  for (int i = 0; i < 2; ++i) {
    v[4 * i] = __uint_as_float(r.v[i].x);
    v[4 * i + 1] = __uint_as_float(r.v[i].y);
    v[4 * i + 2] = __uint_as_float(r.v[i].z);
    v[4 * i + 3] = __uint_as_float(r.v[i].w);
  }
}
__device__ __forceinline__ void widen8(const Raw8<__half>& r, float (&v)[8]) {
  const uint32_t words[4] = {r.v[0].x, r.v[0].y, r.v[0].z, r.v[0].w};
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const float2 f =
        __half22float2(*reinterpret_cast<const __half2*>(&words[i]));
    v[2 * i] = f.x;
    v[2 * i + 1] = f.y;
  }
}
// bfloat16 is the top half of a float32: widening is a shift or a mask.
__device__ __forceinline__ void widen8(
    const Raw8<__nv_bfloat16>& r,
    float (&v)[8]) {
  const uint32_t words[4] = {r.v[0].x, r.v[0].y, r.v[0].z, r.v[0].w};
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    v[2 * i] = __uint_as_float(words[i] << 16);
    v[2 * i + 1] = __uint_as_float(words[i] & 0xFFFF0000u);
  }
}

// Eight elements at a 16-byte aligned global address, read through the
// read-only cache.
template <typename T>
__device__ __forceinline__ Raw8<T> load_raw8(const T* p) {
  Raw8<T> r;
#pragma unroll
  for (int i = 0; i < static_cast<int>(sizeof(T)) / 2; ++i) {
    r.v[i] = __ldg(reinterpret_cast<const uint4*>(p) + i);
  }
  return r;
}

// Loads of packed weights, which a kernel reads once: through the
// read-only path like __ldg, but not kept in L1, so that they do not evict
// the x chunks that every warp of an SM reads again (matvec.cuh). On the
// H100 that took the 4- and 8-bit matvec from 17-18 and 26-28 us to
// 15.5-16.5 and 23.5-25 (14336 x 4096), and most rows of the few-row GEMM
// 3-18% (bench/cuda_kernels.md); asking L2 for 128- or 256-byte spans as
// well (.L2::128B, .L2::256B) added nothing measurable.
__device__ __forceinline__ uint4 load_weights_16(const void* p) {
  uint4 v;
  asm("ld.global.nc.L1::no_allocate.v4.u32 {%0, %1, %2, %3}, [%4];"
      : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
      : "l"(p));
  return v;
}
__device__ __forceinline__ uint2 load_weights_8(const void* p) {
  uint2 v;
  asm("ld.global.nc.L1::no_allocate.v2.u32 {%0, %1}, [%2];"
      : "=r"(v.x), "=r"(v.y)
      : "l"(p));
  return v;
}
__device__ __forceinline__ uint32_t load_weights_4(const void* p) {
  uint32_t v;
  asm("ld.global.nc.L1::no_allocate.u32 %0, [%1];" : "=r"(v) : "l"(p));
  return v;
}

template <typename T>
__device__ __forceinline__ void load8(const T* p, float (&v)[8]) {
  widen8(load_raw8(p), v);
}

// Two adjacent outputs, rounded once.
template <typename T>
__device__ __forceinline__ void store2(T* p, float a, float b, bool second) {
  p[0] = from_float<T>(a);
  if (second) {
    p[1] = from_float<T>(b);
  }
}

} // namespace mlx_qmm::cuda
