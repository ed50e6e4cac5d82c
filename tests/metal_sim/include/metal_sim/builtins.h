// Copyright © 2026 mlx-qmm contributors.
//
// The __metal_* intrinsics Apple's own metal_stdlib is written in, which
// headers such as MLX's bf16_math.h call directly: math in float with a
// (here ignored) fast-math mode argument, and SIMD-group functions that
// forward to the collectives of stdlib.h.

#pragma once

#include "metal_sim/stdlib.h"

#define __METAL_MAYBE_FAST_MATH__ 0
#define __METAL_FAST_MATH__ 1
#define __METAL_PRECISE_MATH__ 2

#define METAL_SIM_INTRINSIC_1(name, expr)        \
  inline float __metal_##name(float x, int = 0) { \
    return expr;                                  \
  }
#define METAL_SIM_INTRINSIC_2(name, expr)                 \
  inline float __metal_##name(float x, float y, int = 0) { \
    return expr;                                           \
  }

METAL_SIM_INTRINSIC_1(fabs, __builtin_fabsf(x))
METAL_SIM_INTRINSIC_1(acos, __builtin_acosf(x))
METAL_SIM_INTRINSIC_1(acosh, __builtin_acoshf(x))
METAL_SIM_INTRINSIC_1(asin, __builtin_asinf(x))
METAL_SIM_INTRINSIC_1(asinh, __builtin_asinhf(x))
METAL_SIM_INTRINSIC_1(atan, __builtin_atanf(x))
METAL_SIM_INTRINSIC_1(atanh, __builtin_atanhf(x))
METAL_SIM_INTRINSIC_1(ceil, __builtin_ceilf(x))
METAL_SIM_INTRINSIC_1(cos, __builtin_cosf(x))
METAL_SIM_INTRINSIC_1(cosh, __builtin_coshf(x))
METAL_SIM_INTRINSIC_1(cospi, __builtin_cosf(3.14159265358979f * x))
METAL_SIM_INTRINSIC_1(exp, __builtin_expf(x))
METAL_SIM_INTRINSIC_1(exp10, __builtin_powf(10.0f, x))
METAL_SIM_INTRINSIC_1(exp2, __builtin_exp2f(x))
METAL_SIM_INTRINSIC_1(floor, __builtin_floorf(x))
METAL_SIM_INTRINSIC_1(fract, x - __builtin_floorf(x))
METAL_SIM_INTRINSIC_1(log, __builtin_logf(x))
METAL_SIM_INTRINSIC_1(log10, __builtin_log10f(x))
METAL_SIM_INTRINSIC_1(log2, __builtin_log2f(x))
METAL_SIM_INTRINSIC_1(rint, __builtin_rintf(x))
METAL_SIM_INTRINSIC_1(round, __builtin_roundf(x))
METAL_SIM_INTRINSIC_1(rsqrt, 1.0f / __builtin_sqrtf(x))
METAL_SIM_INTRINSIC_1(sin, __builtin_sinf(x))
METAL_SIM_INTRINSIC_1(sinh, __builtin_sinhf(x))
METAL_SIM_INTRINSIC_1(sinpi, __builtin_sinf(3.14159265358979f * x))
METAL_SIM_INTRINSIC_1(sqrt, __builtin_sqrtf(x))
METAL_SIM_INTRINSIC_1(tan, __builtin_tanf(x))
METAL_SIM_INTRINSIC_1(tanh, __builtin_tanhf(x))
METAL_SIM_INTRINSIC_1(tanpi, __builtin_tanf(3.14159265358979f * x))
METAL_SIM_INTRINSIC_1(trunc, __builtin_truncf(x))
METAL_SIM_INTRINSIC_2(atan2, __builtin_atan2f(x, y))
METAL_SIM_INTRINSIC_2(divide, x / y)
METAL_SIM_INTRINSIC_2(fmax, metal::fmax(x, y))
METAL_SIM_INTRINSIC_2(fmin, metal::fmin(x, y))
METAL_SIM_INTRINSIC_2(fmod, __builtin_fmodf(x, y))
METAL_SIM_INTRINSIC_2(pow, __builtin_powf(x, y))
METAL_SIM_INTRINSIC_2(powr, __builtin_powf(x, y))
#undef METAL_SIM_INTRINSIC_1
#undef METAL_SIM_INTRINSIC_2

inline float __metal_fma(float a, float b, float c, int = 0) {
  return __builtin_fmaf(a, b, c);
}
inline float __metal_fmax3(float a, float b, float c, int = 0) {
  return metal::fmax(metal::fmax(a, b), c);
}
inline float __metal_fmin3(float a, float b, float c, int = 0) {
  return metal::fmin(metal::fmin(a, b), c);
}
inline float __metal_fmedian3(float a, float b, float c, int = 0) {
  return metal::fmax(metal::fmin(a, b), metal::fmin(metal::fmax(a, b), c));
}
inline float __metal_ldexp(float x, int k, int = 0) {
  return __builtin_ldexpf(x, k);
}
inline float __metal_frexp(float x, thread int* exponent) {
  return __builtin_frexpf(x, exponent);
}
inline float __metal_nextafter(float x, float y) {
  return __builtin_nextafterf(x, y);
}

inline ushort __metal_get_simdgroup_size(ushort) {
  return 32;
}
inline ushort __metal_get_thread_index_in_simdgroup(ushort) {
  return static_cast<ushort>(metal::simd_lane());
}

template <typename T>
T __metal_simd_broadcast(T x, ushort lane) {
  return metal::simd_broadcast(x, lane);
}
template <typename T>
T __metal_simd_shuffle(T x, ushort lane) {
  return metal::simd_shuffle(x, lane);
}
template <typename T>
T __metal_simd_shuffle_down(T x, ushort delta) {
  return metal::simd_shuffle_down(x, delta);
}
template <typename T>
T __metal_simd_shuffle_up(T x, ushort delta) {
  return metal::simd_shuffle_up(x, delta);
}
template <typename T>
T __metal_simd_shuffle_xor(T x, ushort mask) {
  return metal::simd_shuffle_xor(x, mask);
}
template <typename T>
T __metal_simd_shuffle_rotate_down(T x, ushort delta) {
  return metal::simd_shuffle_rotate_down(x, delta);
}
template <typename T>
T __metal_simd_shuffle_rotate_up(T x, ushort delta) {
  return metal::simd_shuffle_rotate_up(x, delta);
}
template <typename T>
T __metal_simd_shuffle_and_fill_down(T x, T fill, ushort delta, ushort) {
  return metal::simd_shuffle_and_fill_down(x, fill, delta);
}
template <typename T>
T __metal_simd_shuffle_and_fill_up(T x, T fill, ushort delta, ushort) {
  return metal::simd_shuffle_and_fill_up(x, fill, delta);
}
#define METAL_SIM_SIMD_REDUCTION(name) \
  template <typename T>                \
  T __metal_simd_##name(T x) {         \
    return metal::simd_##name(x);      \
  }
METAL_SIM_SIMD_REDUCTION(sum)
METAL_SIM_SIMD_REDUCTION(product)
METAL_SIM_SIMD_REDUCTION(max)
METAL_SIM_SIMD_REDUCTION(min)
METAL_SIM_SIMD_REDUCTION(xor)
METAL_SIM_SIMD_REDUCTION(prefix_inclusive_sum)
METAL_SIM_SIMD_REDUCTION(prefix_exclusive_sum)
METAL_SIM_SIMD_REDUCTION(prefix_inclusive_product)
METAL_SIM_SIMD_REDUCTION(prefix_exclusive_product)
#undef METAL_SIM_SIMD_REDUCTION
