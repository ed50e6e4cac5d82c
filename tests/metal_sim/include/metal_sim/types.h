// Copyright © 2026 mlx-qmm contributors.
//
// Metal's scalar and vector types for the host compiler (clang).
//
// half is _Float16 and bfloat is __bf16: real 16-bit floating types whose
// arithmetic promotes to float and whose conversions round to nearest even,
// as on Apple GPUs. vec<T, N> is a small aggregate with Metal's layout (a
// 3-vector is padded to 4 elements) and component names x, y, z, w.

#pragma once

#include <cstddef>
#include <cstdint>
#include <type_traits>

using half = _Float16;
using bfloat = __bf16;
using uint = unsigned int;
using ushort = unsigned short;
using uchar = unsigned char;
using ulong = unsigned long;

namespace metal {

template <typename T, int N>
struct vec;

namespace detail {

template <typename T, int N>
struct vec_storage;

template <typename T>
struct alignas(2 * sizeof(T)) vec_storage<T, 2> {
  union {
    T v_[2];
    struct {
      T x, y;
    };
    struct {
      T r, g;
    };
  };
};

template <typename T>
struct alignas(4 * sizeof(T)) vec_storage<T, 3> {
  union {
    T v_[4];
    struct {
      T x, y, z;
    };
    struct {
      T r, g, b;
    };
  };
};

template <typename T>
struct alignas(4 * sizeof(T)) vec_storage<T, 4> {
  union {
    T v_[4];
    struct {
      T x, y, z, w;
    };
    struct {
      T r, g, b, a;
    };
  };
};

} // namespace detail

template <typename T, int N>
struct vec : detail::vec_storage<T, N> {
  using value_type = T;
  static constexpr int size = N;

  constexpr vec() : detail::vec_storage<T, N>{} {}
  // A scalar fills every component.
  constexpr vec(T s) {
    for (int i = 0; i < N; ++i) {
      this->v_[i] = s;
    }
  }
  template <
      typename... Ts,
      typename = std::enable_if_t<(sizeof...(Ts) == N && N > 1)>>
  constexpr vec(Ts... values) {
    T list[] = {static_cast<T>(values)...};
    for (int i = 0; i < N; ++i) {
      this->v_[i] = list[i];
    }
  }
  // Concatenations: (vec2, s), (s, vec2), (vec2, vec2), (vec3, s).
  template <int M, typename = std::enable_if_t<(M < N)>>
  constexpr vec(vec<T, M> head, T tail) {
    for (int i = 0; i < M; ++i) {
      this->v_[i] = head[i];
    }
    this->v_[M] = tail;
  }
  constexpr vec(vec<T, 2> a, vec<T, 2> b)
    requires(N == 4)
  {
    this->v_[0] = a[0];
    this->v_[1] = a[1];
    this->v_[2] = b[0];
    this->v_[3] = b[1];
  }
  // Copies from a vector in another address space (a load from device or
  // threadgroup memory): C++ would only bind the implicit copy constructor
  // to the default address space.
  template <typename V>
    requires(
        sizeof(V) == sizeof(vec) && !std::is_same_v<V, vec> &&
        requires(const V& v) {
          { v.v_[0] };
        })
  vec(const V& other) {
    for (int i = 0; i < N; ++i) {
      this->v_[i] = other.v_[i];
    }
  }
  template <typename V>
    requires(
        sizeof(V) == sizeof(vec) && !std::is_same_v<V, vec> &&
        requires(const V& v) {
          { v.v_[0] };
        })
  vec& operator=(const V& other) {
    for (int i = 0; i < N; ++i) {
      this->v_[i] = other.v_[i];
    }
    return *this;
  }
  constexpr vec(const vec&) = default;
  constexpr vec& operator=(const vec&) = default;

  // Conversions between element types are explicit, as in Metal.
  template <typename U>
  constexpr explicit vec(const vec<U, N>& other) {
    for (int i = 0; i < N; ++i) {
      this->v_[i] = static_cast<T>(other[i]);
    }
  }

  constexpr T& operator[](int i) {
    return this->v_[i];
  }
  constexpr const T& operator[](int i) const {
    return this->v_[i];
  }

#define METAL_SIM_VEC_COMPOUND(op)                \
  vec& operator op##=(const vec & o) {            \
    for (int i = 0; i < N; ++i) {                 \
      this->v_[i] op## = o.v_[i];                 \
    }                                             \
    return *this;                                 \
  }                                               \
  vec& operator op##=(T s) {                      \
    for (int i = 0; i < N; ++i) {                 \
      this->v_[i] op## = s;                       \
    }                                             \
    return *this;                                 \
  }
  METAL_SIM_VEC_COMPOUND(+)
  METAL_SIM_VEC_COMPOUND(-)
  METAL_SIM_VEC_COMPOUND(*)
  METAL_SIM_VEC_COMPOUND(/)
#undef METAL_SIM_VEC_COMPOUND
};

#define METAL_SIM_VEC_BINARY(op, result_t)                            \
  template <typename T, int N>                                        \
  vec<result_t, N> operator op(const vec<T, N>& a, const vec<T, N>& b) { \
    vec<result_t, N> r;                                               \
    for (int i = 0; i < N; ++i) {                                     \
      r[i] = a[i] op b[i];                                            \
    }                                                                 \
    return r;                                                         \
  }                                                                   \
  template <typename T, int N, typename S>                            \
  vec<result_t, N> operator op(const vec<T, N>& a, S s) {             \
    return a op vec<T, N>(static_cast<T>(s));                         \
  }                                                                   \
  template <typename T, int N, typename S>                            \
  vec<result_t, N> operator op(S s, const vec<T, N>& a) {             \
    return vec<T, N>(static_cast<T>(s)) op a;                         \
  }
METAL_SIM_VEC_BINARY(+, T)
METAL_SIM_VEC_BINARY(-, T)
METAL_SIM_VEC_BINARY(*, T)
METAL_SIM_VEC_BINARY(/, T)
METAL_SIM_VEC_BINARY(%, T)
METAL_SIM_VEC_BINARY(&, T)
METAL_SIM_VEC_BINARY(|, T)
METAL_SIM_VEC_BINARY(^, T)
METAL_SIM_VEC_BINARY(<<, T)
METAL_SIM_VEC_BINARY(>>, T)
METAL_SIM_VEC_BINARY(==, bool)
METAL_SIM_VEC_BINARY(!=, bool)
METAL_SIM_VEC_BINARY(<, bool)
METAL_SIM_VEC_BINARY(<=, bool)
METAL_SIM_VEC_BINARY(>, bool)
METAL_SIM_VEC_BINARY(>=, bool)
#undef METAL_SIM_VEC_BINARY

template <typename T, int N>
vec<T, N> operator-(const vec<T, N>& a) {
  vec<T, N> r;
  for (int i = 0; i < N; ++i) {
    r[i] = -a[i];
  }
  return r;
}

// Packed vectors have no padding or extra alignment.
template <typename T, int N>
struct packed_vec {
  T v_[N];
  T& operator[](int i) {
    return v_[i];
  }
  const T& operator[](int i) const {
    return v_[i];
  }
  operator vec<T, N>() const {
    vec<T, N> r;
    for (int i = 0; i < N; ++i) {
      r[i] = v_[i];
    }
    return r;
  }
};

} // namespace metal

#define METAL_SIM_VECTOR_TYPES(T)      \
  using T##2 = metal::vec<T, 2>;       \
  using T##3 = metal::vec<T, 3>;       \
  using T##4 = metal::vec<T, 4>;       \
  using packed_##T##2 = metal::packed_vec<T, 2>; \
  using packed_##T##3 = metal::packed_vec<T, 3>; \
  using packed_##T##4 = metal::packed_vec<T, 4>;

METAL_SIM_VECTOR_TYPES(float)
METAL_SIM_VECTOR_TYPES(half)
METAL_SIM_VECTOR_TYPES(bfloat)
METAL_SIM_VECTOR_TYPES(int)
METAL_SIM_VECTOR_TYPES(uint)
METAL_SIM_VECTOR_TYPES(short)
METAL_SIM_VECTOR_TYPES(ushort)
METAL_SIM_VECTOR_TYPES(char)
METAL_SIM_VECTOR_TYPES(uchar)
METAL_SIM_VECTOR_TYPES(bool)
METAL_SIM_VECTOR_TYPES(long)
METAL_SIM_VECTOR_TYPES(ulong)
#undef METAL_SIM_VECTOR_TYPES

// Metal's half literals (1.0h). Suffixes without an underscore are reserved
// in C++, hence the pragma.
#pragma clang diagnostic push
#pragma clang diagnostic ignored "-Wuser-defined-literals"
constexpr half operator""h(long double v) {
  return static_cast<half>(v);
}
constexpr half operator""h(unsigned long long v) {
  return static_cast<half>(v);
}
#pragma clang diagnostic pop

// Reinterprets the bits of a value as another type of the same size.
template <typename To, typename From>
To as_type(const From& from) {
  static_assert(sizeof(To) == sizeof(From), "as_type needs equal sizes");
  To to;
  __builtin_memcpy(&to, &from, sizeof(To));
  return to;
}
