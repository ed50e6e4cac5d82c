// Copyright © 2026 mlx-qmm contributors.
//
// metal:: functions: math, limits, type traits, barriers, SIMD-group and
// quad-group functions, and simdgroup_matrix with Apple's per-lane layout.
// Math uses compiler builtins, not <cmath>, so that no global C overload can
// make an unqualified call ambiguous under `using namespace metal;`.

#pragma once

#include <algorithm>
#include <functional>
#include <type_traits>

#include "metal_sim/launch.h"
#include "metal_sim/types.h"

namespace metal {

// ------------------------------ type traits --------------------------------

using std::bool_constant;
using std::conditional;
using std::conditional_t;
using std::enable_if;
using std::enable_if_t;
using std::integral_constant;
using std::is_arithmetic_v;
using std::is_floating_point_v;
using std::is_integral;
using std::is_integral_v;
using std::is_convertible;
using std::is_convertible_v;
using std::decay_t;
using std::is_same;
using std::is_same_v;
using std::is_signed_v;
using std::is_unsigned_v;
using std::make_unsigned_t;
using std::remove_cv_t;
using std::remove_reference_t;

template <typename T>
struct remove_addrspace {
  using type = T;
};
template <typename T>
using remove_addrspace_t = typename remove_addrspace<T>::type;

// ------------------------------ numeric limits -----------------------------

template <typename T>
struct numeric_limits;

#define METAL_SIM_INT_LIMITS(T, lo, hi)  \
  template <>                            \
  struct numeric_limits<T> {             \
    static constexpr T min() {           \
      return lo;                         \
    }                                    \
    static constexpr T max() {           \
      return hi;                         \
    }                                    \
    static constexpr T lowest() {        \
      return lo;                         \
    }                                    \
  };
METAL_SIM_INT_LIMITS(bool, false, true)
METAL_SIM_INT_LIMITS(char, -128, 127)
METAL_SIM_INT_LIMITS(signed char, -128, 127)
METAL_SIM_INT_LIMITS(uchar, 0, 255)
METAL_SIM_INT_LIMITS(short, -32768, 32767)
METAL_SIM_INT_LIMITS(ushort, 0, 65535)
METAL_SIM_INT_LIMITS(int, -2147483647 - 1, 2147483647)
METAL_SIM_INT_LIMITS(uint, 0u, 4294967295u)
METAL_SIM_INT_LIMITS(long, -9223372036854775807L - 1, 9223372036854775807L)
METAL_SIM_INT_LIMITS(ulong, 0ul, 18446744073709551615ul)
#undef METAL_SIM_INT_LIMITS

template <typename T, typename Bits, Bits kMin, Bits kMax, Bits kInf, Bits kNan,
          Bits kEps>
struct float_limits {
  static constexpr T from(Bits b) {
    return __builtin_bit_cast(T, b);
  }
  static constexpr T min() {
    return from(kMin);
  }
  static constexpr T max() {
    return from(kMax);
  }
  static constexpr T lowest() {
    return from(kMax | (Bits(1) << (8 * sizeof(Bits) - 1)));
  }
  static constexpr T infinity() {
    return from(kInf);
  }
  static constexpr T quiet_NaN() {
    return from(kNan);
  }
  static constexpr T epsilon() {
    return from(kEps);
  }
  static constexpr bool has_infinity = true;
};

template <>
struct numeric_limits<float> : float_limits<
                                   float,
                                   uint32_t,
                                   0x00800000u,
                                   0x7F7FFFFFu,
                                   0x7F800000u,
                                   0x7FC00000u,
                                   0x34000000u> {};
template <>
struct numeric_limits<half>
    : float_limits<half, uint16_t, 0x0400, 0x7BFF, 0x7C00, 0x7E00, 0x1400> {};
template <>
struct numeric_limits<bfloat>
    : float_limits<bfloat, uint16_t, 0x0080, 0x7F7F, 0x7F80, 0x7FC0, 0x3C00> {};

// ---------------------------------- math -----------------------------------

// Scalar math in float (double for double), rounded back to T.
#define METAL_SIM_UNARY_MATH(name, builtin_f)         \
  template <typename T>                               \
    requires std::is_floating_point_v<T> ||           \
      std::is_same_v<T, half> || std::is_same_v<T, bfloat> \
  inline T name(T x) {                                \
    return static_cast<T>(builtin_f(static_cast<float>(x))); \
  }                                                   \
  template <typename T, int N>                        \
  inline vec<T, N> name(vec<T, N> x) {                \
    for (int i = 0; i < N; ++i) {                     \
      x[i] = name(x[i]);                              \
    }                                                 \
    return x;                                         \
  }
METAL_SIM_UNARY_MATH(fabs, __builtin_fabsf)
METAL_SIM_UNARY_MATH(sqrt, __builtin_sqrtf)
METAL_SIM_UNARY_MATH(rsqrt, 1.0f / __builtin_sqrtf)
METAL_SIM_UNARY_MATH(exp, __builtin_expf)
METAL_SIM_UNARY_MATH(exp2, __builtin_exp2f)
METAL_SIM_UNARY_MATH(log, __builtin_logf)
METAL_SIM_UNARY_MATH(log2, __builtin_log2f)
METAL_SIM_UNARY_MATH(log1p, __builtin_log1pf)
METAL_SIM_UNARY_MATH(sin, __builtin_sinf)
METAL_SIM_UNARY_MATH(cos, __builtin_cosf)
METAL_SIM_UNARY_MATH(tanh, __builtin_tanhf)
METAL_SIM_UNARY_MATH(atan, __builtin_atanf)
METAL_SIM_UNARY_MATH(floor, __builtin_floorf)
METAL_SIM_UNARY_MATH(ceil, __builtin_ceilf)
METAL_SIM_UNARY_MATH(round, __builtin_roundf)
METAL_SIM_UNARY_MATH(rint, __builtin_rintf)
METAL_SIM_UNARY_MATH(trunc, __builtin_truncf)
#undef METAL_SIM_UNARY_MATH

namespace precise {
using metal::rsqrt;
using metal::sqrt;
} // namespace precise
namespace fast {
using metal::exp;
using metal::rsqrt;
using metal::sqrt;
} // namespace fast

template <typename T>
inline T abs(T x) {
  return x < T(0) ? T(-x) : x;
}
template <typename T>
inline T min(T a, T b) {
  return b < a ? b : a;
}
template <typename T>
inline T max(T a, T b) {
  return a < b ? b : a;
}
template <typename T>
inline T fmin(T a, T b) {
  return (b < a || a != a) ? b : a;
}
template <typename T>
inline T fmax(T a, T b) {
  return (a < b || a != a) ? b : a;
}
template <typename T>
inline T clamp(T x, T lo, T hi) {
  return min(max(x, lo), hi);
}
template <typename T>
inline T fma(T a, T b, T c) {
  return static_cast<T>(__builtin_fmaf(
      static_cast<float>(a), static_cast<float>(b), static_cast<float>(c)));
}
inline float fma(float a, float b, float c) {
  return __builtin_fmaf(a, b, c);
}
template <typename T>
inline T select(T a, T b, bool c) {
  return c ? b : a;
}
template <typename T, int N>
inline vec<T, N> select(vec<T, N> a, vec<T, N> b, vec<bool, N> c) {
  for (int i = 0; i < N; ++i) {
    a[i] = c[i] ? b[i] : a[i];
  }
  return a;
}
template <typename T>
inline bool isnan(T x) {
  return x != x;
}
template <typename T>
inline bool isinf(T x) {
  return x == numeric_limits<T>::infinity() ||
      x == -numeric_limits<T>::infinity();
}
template <typename T>
inline T pow(T a, T b) {
  return static_cast<T>(
      __builtin_powf(static_cast<float>(a), static_cast<float>(b)));
}
template <typename T, int N>
inline T dot(vec<T, N> a, vec<T, N> b) {
  T s = T(0);
  for (int i = 0; i < N; ++i) {
    s += a[i] * b[i];
  }
  return s;
}
template <int N>
inline bool all(vec<bool, N> v) {
  for (int i = 0; i < N; ++i) {
    if (!v[i]) {
      return false;
    }
  }
  return true;
}
template <int N>
inline bool any(vec<bool, N> v) {
  for (int i = 0; i < N; ++i) {
    if (v[i]) {
      return true;
    }
  }
  return false;
}

// -------------------------------- barriers ---------------------------------

enum class mem_flags : unsigned {
  mem_none = 0,
  mem_device = 1,
  mem_threadgroup = 2,
  mem_texture = 4,
  mem_threadgroup_imageblock = 8,
  mem_object_data = 16,
};
inline mem_flags operator|(mem_flags a, mem_flags b) {
  return static_cast<mem_flags>(unsigned(a) | unsigned(b));
}

inline void threadgroup_barrier(
    mem_flags = mem_flags::mem_none,
    const char* file = __builtin_FILE(),
    int line = __builtin_LINE()) {
  ::metal_sim::threadgroup_barrier(::metal_sim::site(file, line));
}

inline void simdgroup_barrier(
    mem_flags = mem_flags::mem_none,
    const char* file = __builtin_FILE(),
    int line = __builtin_LINE()) {
  ::metal_sim::simdgroup_barrier(::metal_sim::site(file, line));
}

// --------------------------- SIMD-group functions --------------------------

namespace detail {

// Gathers `value` from every lane of the caller's SIMD group and returns
// fn(values, present_mask, lane, width).
template <typename T, typename Fn>
inline auto simd_collective(
    const T& value,
    const char* file,
    int line,
    Fn&& fn) {
  auto x = ::metal_sim::simd_exchange(
      &value, sizeof(T), ::metal_sim::site(file, line));
  const T* values = reinterpret_cast<const T*>(x.values);
  return fn(values, x.lanes_present, x.lane, x.width);
}

// Which lanes of the caller's group a fold covers.
enum class Span { Group, UpToLane, BeforeLane };

// Folds `op` over the values of the lanes `span` selects in the caller's
// group of `group_width` lanes (0: the whole SIMD group); `empty` when the
// span has no lane (an exclusive scan's first lane).
template <typename T, typename Op>
inline T simd_fold(
    T value,
    const char* file,
    int line,
    uint32_t group_width,
    Span span,
    T empty,
    Op op) {
  return simd_collective(
      value, file, line, [&](const T* v, uint32_t, uint32_t lane, uint32_t w) {
        const uint32_t group = group_width ? group_width : w;
        const uint32_t first = lane / group * group;
        const uint32_t last = span == Span::Group ? std::min(first + group, w)
            : span == Span::UpToLane              ? lane + 1
                                                  : lane;
        if (first == last) {
          return empty;
        }
        T r = v[first];
        for (uint32_t i = first + 1; i < last; ++i) {
          r = op(r, v[i]);
        }
        return r;
      });
}

template <typename T>
inline T simd_select_lane(
    T value,
    const char* file,
    int line,
    uint32_t group_width,
    int (*source)(int lane, int arg, int width),
    int arg) {
  return simd_collective(
      value, file, line, [&](const T* v, uint32_t, uint32_t lane, uint32_t w) {
        const int group = static_cast<int>(group_width ? group_width : w);
        const int base = static_cast<int>(lane) / group * group;
        const int src = source(static_cast<int>(lane) - base, arg, group);
        return src < 0 ? v[lane] : v[base + src];
      });
}

} // namespace detail

#define METAL_SIM_SITE const char *file = __builtin_FILE(), int line = __builtin_LINE()

namespace detail {
template <typename T, typename Op>
T bitwise(T a, T b, Op op) {
  using Bits = std::conditional_t<
      sizeof(T) == 1,
      uint8_t,
      std::conditional_t<
          sizeof(T) == 2,
          uint16_t,
          std::conditional_t<sizeof(T) == 4, uint32_t, uint64_t>>>;
  return __builtin_bit_cast(
      T,
      static_cast<Bits>(
          op(__builtin_bit_cast(Bits, a), __builtin_bit_cast(Bits, b))));
}
} // namespace detail

#define METAL_SIM_FOLD(name, group, span, empty, expr)                  \
  template <typename T>                                                \
  T name(T x, METAL_SIM_SITE) {                                        \
    return detail::simd_fold(                                          \
        x, file, line, group, detail::Span::span, T(empty),            \
        [](T a, T b) { return expr; });                                \
  }
METAL_SIM_FOLD(simd_sum, 0, Group, 0, T(a + b))
METAL_SIM_FOLD(simd_product, 0, Group, 1, T(a * b))
METAL_SIM_FOLD(simd_max, 0, Group, 0, max(a, b))
METAL_SIM_FOLD(simd_min, 0, Group, 0, min(a, b))
METAL_SIM_FOLD(simd_prefix_inclusive_sum, 0, UpToLane, 0, T(a + b))
METAL_SIM_FOLD(simd_prefix_exclusive_sum, 0, BeforeLane, 0, T(a + b))
METAL_SIM_FOLD(simd_prefix_inclusive_product, 0, UpToLane, 1, T(a * b))
METAL_SIM_FOLD(simd_prefix_exclusive_product, 0, BeforeLane, 1, T(a * b))
METAL_SIM_FOLD(quad_sum, 4, Group, 0, T(a + b))
METAL_SIM_FOLD(quad_product, 4, Group, 1, T(a * b))
METAL_SIM_FOLD(quad_max, 4, Group, 0, max(a, b))
METAL_SIM_FOLD(quad_min, 4, Group, 0, min(a, b))
METAL_SIM_FOLD(quad_prefix_inclusive_sum, 4, UpToLane, 0, T(a + b))
METAL_SIM_FOLD(quad_prefix_exclusive_sum, 4, BeforeLane, 0, T(a + b))
// Bitwise folds act on the bits, also of floating-point values.
METAL_SIM_FOLD(simd_and, 0, Group, 0, detail::bitwise(a, b, std::bit_and<>()))
METAL_SIM_FOLD(simd_or, 0, Group, 0, detail::bitwise(a, b, std::bit_or<>()))
METAL_SIM_FOLD(simd_xor, 0, Group, 0, detail::bitwise(a, b, std::bit_xor<>()))
#undef METAL_SIM_FOLD

inline bool simd_all(bool x, METAL_SIM_SITE) {
  return detail::simd_fold(
      x, file, line, 0, detail::Span::Group, true, [](bool a, bool b) {
        return a && b;
      });
}
inline bool simd_any(bool x, METAL_SIM_SITE) {
  return detail::simd_fold(
      x, file, line, 0, detail::Span::Group, false, [](bool a, bool b) {
        return a || b;
      });
}

// Lane selection rules; -1 keeps the caller's own value.
namespace detail {
inline int from_lane(int, int src, int width) {
  return src >= 0 && src < width ? src : -1;
}
inline int from_lane_down(int lane, int delta, int width) {
  return lane + delta < width ? lane + delta : -1;
}
inline int from_lane_up(int lane, int delta, int) {
  return lane - delta >= 0 ? lane - delta : -1;
}
inline int from_lane_xor(int lane, int mask, int width) {
  return (lane ^ mask) < width ? (lane ^ mask) : -1;
}
} // namespace detail

// name(x, arg): the value of the lane `rule` picks in the caller's group of
// `group` lanes (0: the SIMD group).
#define METAL_SIM_SHUFFLE(name, group, rule)                          \
  template <typename T>                                               \
  T name(T x, ushort arg, METAL_SIM_SITE) {                           \
    return detail::simd_select_lane(x, file, line, group, rule, arg); \
  }
METAL_SIM_SHUFFLE(simd_shuffle, 0, detail::from_lane)
METAL_SIM_SHUFFLE(simd_broadcast, 0, detail::from_lane)
METAL_SIM_SHUFFLE(simd_shuffle_down, 0, detail::from_lane_down)
METAL_SIM_SHUFFLE(simd_shuffle_up, 0, detail::from_lane_up)
METAL_SIM_SHUFFLE(simd_shuffle_xor, 0, detail::from_lane_xor)
METAL_SIM_SHUFFLE(quad_shuffle, 4, detail::from_lane)
METAL_SIM_SHUFFLE(quad_broadcast, 4, detail::from_lane)
METAL_SIM_SHUFFLE(quad_shuffle_down, 4, detail::from_lane_down)
METAL_SIM_SHUFFLE(quad_shuffle_up, 4, detail::from_lane_up)
METAL_SIM_SHUFFLE(quad_shuffle_xor, 4, detail::from_lane_xor)
#undef METAL_SIM_SHUFFLE

template <typename T>
T simd_broadcast_first(T x, METAL_SIM_SITE) {
  return detail::simd_select_lane(x, file, line, 0, detail::from_lane, 0);
}

// Lanes shifted past the end take `fill` from the lanes at the other end.
template <typename T>
T simd_shuffle_and_fill_down(T x, T fill, ushort delta, METAL_SIM_SITE) {
  struct Pair {
    T x, fill;
  };
  return detail::simd_collective(
      Pair{x, fill},
      file,
      line,
      [&](const Pair* v, uint32_t, uint32_t lane, uint32_t width) {
        const uint32_t src = lane + delta;
        return src < width ? v[src].x : v[src - width].fill;
      });
}
template <typename T>
T simd_shuffle_and_fill_up(T x, T fill, ushort delta, METAL_SIM_SITE) {
  struct Pair {
    T x, fill;
  };
  return detail::simd_collective(
      Pair{x, fill},
      file,
      line,
      [&](const Pair* v, uint32_t, uint32_t lane, uint32_t width) {
        const int src = static_cast<int>(lane) - delta;
        return src >= 0 ? v[src].x : v[src + width].fill;
      });
}

// Rotations wrap around the SIMD group.
template <typename T>
T simd_shuffle_rotate_down(T x, ushort delta, METAL_SIM_SITE) {
  return detail::simd_collective(
      x, file, line, [&](const T* v, uint32_t, uint32_t lane, uint32_t w) {
        return v[(lane + delta) % w];
      });
}
template <typename T>
T simd_shuffle_rotate_up(T x, ushort delta, METAL_SIM_SITE) {
  return detail::simd_collective(
      x, file, line, [&](const T* v, uint32_t, uint32_t lane, uint32_t w) {
        return v[(lane + w - delta % w) % w];
      });
}

// ----------------------------- simdgroup_matrix ----------------------------
//
// An 8x8 matrix spread over the 32 lanes of a SIMD group, two elements a
// lane. Apple's layout (the one thread_elements() exposes, which MLX's steel
// kernels rely on): lane l holds row
//   (l / 4 & 4) + (l / 2) % 4
// and columns c, c + 1 with
//   c = (l / 4 & 2) * 2 + (l % 2) * 2.

struct simdgroup_layout {
  static int row(uint32_t lane) {
    return static_cast<int>(((lane / 4) & 4) + ((lane / 2) % 4));
  }
  static int col(uint32_t lane) {
    return static_cast<int>(((lane / 4) & 2) * 2 + (lane % 2) * 2);
  }
};

inline uint32_t simd_lane() {
  return ::metal_sim::builtin_value(
             ::metal_sim::Builtin::ThreadIndexInSimdgroup)
      .x;
}

template <typename T, int Rows, int Cols>
struct simdgroup_matrix {
  static_assert(Rows == 8 && Cols == 8, "simdgroup_matrix is 8x8");
  vec<T, 2> elements;

  simdgroup_matrix() = default;
  explicit simdgroup_matrix(T diagonal) {
    const uint32_t lane = simd_lane();
    const int r = simdgroup_layout::row(lane);
    const int c = simdgroup_layout::col(lane);
    elements[0] = r == c ? diagonal : T(0);
    elements[1] = r == c + 1 ? diagonal : T(0);
  }
  thread vec<T, 2>& thread_elements() {
    return elements;
  }
  const thread vec<T, 2>& thread_elements() const {
    return elements;
  }
};

using simdgroup_float8x8 = simdgroup_matrix<float, 8, 8>;
using simdgroup_half8x8 = simdgroup_matrix<half, 8, 8>;
using simdgroup_bfloat8x8 = simdgroup_matrix<bfloat, 8, 8>;

template <typename T, int R, int C>
simdgroup_matrix<T, R, C> make_filled_simdgroup_matrix(T value) {
  simdgroup_matrix<T, R, C> m;
  m.elements = vec<T, 2>(value);
  return m;
}

// Element (r, c) of the matrix at `origin` (x: column, y: row) in memory
// with `stride` elements per row; the transpose when `transpose`.
template <typename T, typename U, int R, int C>
void simdgroup_load(
    thread simdgroup_matrix<T, R, C>& d,
    const U* src,
    ulong stride = C,
    vec<ulong, 2> origin = vec<ulong, 2>(0ul),
    bool transpose = false) {
  const uint32_t lane = simd_lane();
  const int r = simdgroup_layout::row(lane);
  for (int i = 0; i < 2; ++i) {
    const int c = simdgroup_layout::col(lane) + i;
    const ulong mr = transpose ? c : r;
    const ulong mc = transpose ? r : c;
    d.elements[i] = static_cast<T>(src[(origin.y + mr) * stride + origin.x + mc]);
  }
}

template <typename T, typename U, int R, int C>
void simdgroup_store(
    const thread simdgroup_matrix<T, R, C>& m,
    U* dst,
    ulong stride = C,
    vec<ulong, 2> origin = vec<ulong, 2>(0ul),
    bool transpose = false) {
  const uint32_t lane = simd_lane();
  const int r = simdgroup_layout::row(lane);
  for (int i = 0; i < 2; ++i) {
    const int c = simdgroup_layout::col(lane) + i;
    const ulong mr = transpose ? c : r;
    const ulong mc = transpose ? r : c;
    dst[(origin.y + mr) * stride + origin.x + mc] = static_cast<U>(m.elements[i]);
  }
}

// d = a * b + c, accumulated in float: a collective of the SIMD group, each
// lane contributing its elements of a, b and c.
template <typename TD, typename TA, typename TB, typename TC>
void simdgroup_multiply_accumulate(
    thread simdgroup_matrix<TD, 8, 8>& d,
    const thread simdgroup_matrix<TA, 8, 8>& a,
    const thread simdgroup_matrix<TB, 8, 8>& b,
    const thread simdgroup_matrix<TC, 8, 8>& c,
    METAL_SIM_SITE) {
  struct Fragments {
    float a[2], b[2], c[2];
  };
  Fragments mine{
      {float(a.elements[0]), float(a.elements[1])},
      {float(b.elements[0]), float(b.elements[1])},
      {float(c.elements[0]), float(c.elements[1])}};
  d.elements = detail::simd_collective(
      mine,
      file,
      line,
      [](const Fragments* f, uint32_t, uint32_t lane, uint32_t width) {
        float A[8][8] = {}, B[8][8] = {}, Cm[8][8] = {};
        for (uint32_t l = 0; l < width; ++l) {
          const int r = simdgroup_layout::row(l);
          const int col = simdgroup_layout::col(l);
          for (int i = 0; i < 2; ++i) {
            A[r][col + i] = f[l].a[i];
            B[r][col + i] = f[l].b[i];
            Cm[r][col + i] = f[l].c[i];
          }
        }
        const int r = simdgroup_layout::row(lane);
        const int col = simdgroup_layout::col(lane);
        vec<TD, 2> out;
        for (int i = 0; i < 2; ++i) {
          float acc = Cm[r][col + i];
          for (int k = 0; k < 8; ++k) {
            acc += A[r][k] * B[k][col + i];
          }
          out[i] = static_cast<TD>(acc);
        }
        return out;
      });
}

template <typename TD, typename TA, typename TB>
void simdgroup_multiply(
    thread simdgroup_matrix<TD, 8, 8>& d,
    const thread simdgroup_matrix<TA, 8, 8>& a,
    const thread simdgroup_matrix<TB, 8, 8>& b,
    METAL_SIM_SITE) {
  simdgroup_matrix<TD, 8, 8> zero = make_filled_simdgroup_matrix<TD, 8, 8>(TD(0));
  simdgroup_multiply_accumulate(d, a, b, zero, file, line);
}

#undef METAL_SIM_SITE

} // namespace metal
