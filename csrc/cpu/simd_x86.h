// Copyright © 2026 mlx-qmm contributors.
//
// Vector traits for the x86-64 kernel bodies (kernels_x86.h): the few
// operations those bodies need, on 8 float lanes (Vec256: AVX2, FMA, F16C)
// or 16 (Vec512: AVX-512 F, BW, DQ and VL). One kernel body serves both
// widths; only what differs between the instruction sets is here.
//
// Included only by the translation units that build the x86 tables, each
// compiled with its own instruction-set flags. Everything is in an anonymous
// namespace so that no inline function is shared between them (kernels.h
// says why); Vec512 exists only where the compiler targets AVX-512.

#pragma once

#if !defined(__x86_64__) && !defined(_M_X64)
#error "simd_x86.h is for x86-64 translation units"
#endif

#include <immintrin.h>

#include <cstdint>
#include <cstring>

namespace mlx_qmm::cpu {

namespace {

// The first `Bytes` bytes at p, little-endian, in whole loads (a memcpy of
// an odd size can become a library call), never reading past them.
template <int Bytes>
inline uint64_t load_le(const uint8_t* p) {
  static_assert(Bytes >= 1 && Bytes <= 8);
  if constexpr (Bytes == 1) {
    return p[0];
  } else if constexpr (Bytes == 2) {
    uint16_t w;
    std::memcpy(&w, p, 2);
    return w;
  } else if constexpr (Bytes == 4) {
    uint32_t w;
    std::memcpy(&w, p, 4);
    return w;
  } else if constexpr (Bytes == 8) {
    uint64_t w;
    std::memcpy(&w, p, 8);
    return w;
  } else {
    constexpr int kLow = Bytes > 4 ? 4 : 2;
    return load_le<kLow>(p) | (load_le<Bytes - kLow>(p + kLow) << (8 * kLow));
  }
}

struct Vec256 {
  using F = __m256;
  using I = __m256i;
  static constexpr int kLanes = 8;

  static F zero() {
    return _mm256_setzero_ps();
  }
  static F set1(float v) {
    return _mm256_set1_ps(v);
  }
  static F broadcast(const float* p) {
    return _mm256_broadcast_ss(p);
  }
  static F load(const float* p) {
    return _mm256_loadu_ps(p);
  }
  static void store(float* p, F v) {
    _mm256_storeu_ps(p, v);
  }
  static F add(F a, F b) {
    return _mm256_add_ps(a, b);
  }
  // a * b + c
  static F fma(F a, F b, F c) {
    return _mm256_fmadd_ps(a, b, c);
  }
  static float reduce(F v) {
    __m128 s =
        _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }

  static I load_int(const void* p) {
    return _mm256_loadu_si256(static_cast<const __m256i*>(p));
  }
  static I set1_int(int32_t v) {
    return _mm256_set1_epi32(v);
  }
  static I bit_and(I a, I b) {
    return _mm256_and_si256(a, b);
  }
  template <int Shift>
  static I shift_right(I v) {
    return _mm256_srli_epi32(v, Shift);
  }
  // Lane l shifted right by shifts[l].
  static I shift_right(I v, I shifts) {
    return _mm256_srlv_epi32(v, shifts);
  }
  // Within each 128-bit quarter, byte i = v[index[i]] (0 for index -1).
  static I shuffle_bytes(I v, I index) {
    return _mm256_shuffle_epi8(v, index);
  }
  // The `Bytes` (<= 16) bytes at p in every 128-bit quarter; reads no more.
  template <int Bytes>
  static I broadcast_bytes(const uint8_t* p) {
    static_assert(Bytes <= 8, "8 lanes of up to 8 bits");
    return _mm256_set1_epi64x(static_cast<long long>(load_le<Bytes>(p)));
  }
  // kLanes bytes at p, zero-extended to 32-bit lanes.
  static I widen_bytes(const uint8_t* p) {
    return _mm256_cvtepu8_epi32(
        _mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
  }
  static F to_float(I v) {
    return _mm256_cvtepi32_ps(v);
  }
  // Lane l = v[index[l]].
  static F permute(F v, I index) {
    return _mm256_permutevar8x32_ps(v, index);
  }
  // p[index[l]] in lane l; reads only p[0 .. count).
  static F gather_first(const float* p, int count, I index) {
    const I lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const I loaded = _mm256_cmpgt_epi32(_mm256_set1_epi32(count), lanes);
    return permute(_mm256_maskload_ps(p, loaded), index);
  }

  // kLanes 16-bit values (float16 or bfloat16 bits).
  using H = __m128i;
  static H load_halves(const uint16_t* p) {
    return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  }
  // The first `count` (even) of them; reads only those, zero past them.
  static H load_first_halves(const uint16_t* p, int count) {
    const __m128i words = _mm_setr_epi32(0, 1, 2, 3);
    return _mm_maskload_epi32(
        reinterpret_cast<const int*>(p),
        _mm_cmpgt_epi32(_mm_set1_epi32(count / 2), words));
  }
  static F f16_to_float(H h) {
    return _mm256_cvtph_ps(h);
  }
  static F bf16_to_float(H h) {
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
  }
  static F load_f16(const uint16_t* p) {
    return f16_to_float(load_halves(p));
  }
  static F load_bf16(const uint16_t* p) {
    return bf16_to_float(load_halves(p));
  }
  // Round to nearest even, like MLX's float16 conversion.
  static void store_f16(uint16_t* p, F v) {
    _mm_storeu_si128(
        reinterpret_cast<__m128i*>(p),
        _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  }
  // Round to nearest even and quiet NaN 0x7FC0, exactly as MLX's bfloat16.
  static void store_bf16(uint16_t* p, F v) {
    const I bits = _mm256_castps_si256(v);
    const I odd =
        _mm256_and_si256(_mm256_srli_epi32(bits, 16), _mm256_set1_epi32(1));
    I rounded = _mm256_srli_epi32(
        _mm256_add_epi32(
            _mm256_add_epi32(bits, _mm256_set1_epi32(0x7FFF)), odd),
        16);
    const I nan = _mm256_castps_si256(_mm256_cmp_ps(v, v, _CMP_UNORD_Q));
    rounded = _mm256_blendv_epi8(rounded, _mm256_set1_epi32(0x7FC0), nan);
    // packus narrows within each 128-bit half; gather the halves' results.
    const I packed =
        _mm256_permute4x64_epi64(_mm256_packus_epi32(rounded, rounded), 0b1000);
    _mm_storeu_si128(
        reinterpret_cast<__m128i*>(p), _mm256_castsi256_si128(packed));
  }
};

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512DQ__) && \
    defined(__AVX512VL__)

struct Vec512 {
  using F = __m512;
  using I = __m512i;
  static constexpr int kLanes = 16;

  static F zero() {
    return _mm512_setzero_ps();
  }
  static F set1(float v) {
    return _mm512_set1_ps(v);
  }
  static F broadcast(const float* p) {
    return _mm512_set1_ps(*p);
  }
  static F load(const float* p) {
    return _mm512_loadu_ps(p);
  }
  static void store(float* p, F v) {
    _mm512_storeu_ps(p, v);
  }
  static F add(F a, F b) {
    return _mm512_add_ps(a, b);
  }
  static F fma(F a, F b, F c) {
    return _mm512_fmadd_ps(a, b, c);
  }
  static float reduce(F v) {
    const __m256 half = _mm256_add_ps(
        _mm512_castps512_ps256(v),
        _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
    return Vec256::reduce(half);
  }

  static I load_int(const void* p) {
    return _mm512_loadu_si512(p);
  }
  static I set1_int(int32_t v) {
    return _mm512_set1_epi32(v);
  }
  static I bit_and(I a, I b) {
    return _mm512_and_si512(a, b);
  }
  template <int Shift>
  static I shift_right(I v) {
    return _mm512_srli_epi32(v, Shift);
  }
  static I shift_right(I v, I shifts) {
    return _mm512_srlv_epi32(v, shifts);
  }
  static I shuffle_bytes(I v, I index) {
    return _mm512_shuffle_epi8(v, index);
  }
  // A masked load: the bytes past `Bytes` are neither read nor faulted on.
  template <int Bytes>
  static I broadcast_bytes(const uint8_t* p) {
    static_assert(Bytes <= 16);
    const __mmask16 mask = static_cast<__mmask16>((1u << Bytes) - 1u);
    return _mm512_broadcast_i32x4(_mm_maskz_loadu_epi8(mask, p));
  }
  static I widen_bytes(const uint8_t* p) {
    return _mm512_cvtepu8_epi32(
        _mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  }
  static F to_float(I v) {
    return _mm512_cvtepi32_ps(v);
  }
  static F permute(F v, I index) {
    return _mm512_permutexvar_ps(index, v);
  }
  static F gather_first(const float* p, int count, I index) {
    const __mmask16 mask = static_cast<__mmask16>((1u << count) - 1u);
    return permute(_mm512_maskz_loadu_ps(mask, p), index);
  }

  using H = __m256i;
  static H load_halves(const uint16_t* p) {
    return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  }
  static H load_first_halves(const uint16_t* p, int count) {
    const __mmask16 mask = static_cast<__mmask16>((1u << count) - 1u);
    return _mm256_maskz_loadu_epi16(mask, p);
  }
  static F f16_to_float(H h) {
    return _mm512_cvtph_ps(h);
  }
  static F bf16_to_float(H h) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
  }
  static F load_f16(const uint16_t* p) {
    return f16_to_float(load_halves(p));
  }
  static F load_bf16(const uint16_t* p) {
    return bf16_to_float(load_halves(p));
  }
  static void store_f16(uint16_t* p, F v) {
    _mm256_storeu_si256(
        reinterpret_cast<__m256i*>(p),
        _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  }
  // As Vec256::store_bf16; AVX-512 narrows 32-bit lanes to 16 in one step.
  static void store_bf16(uint16_t* p, F v) {
    const I bits = _mm512_castps_si512(v);
    const I odd =
        _mm512_and_si512(_mm512_srli_epi32(bits, 16), _mm512_set1_epi32(1));
    I rounded = _mm512_srli_epi32(
        _mm512_add_epi32(
            _mm512_add_epi32(bits, _mm512_set1_epi32(0x7FFF)), odd),
        16);
    const __mmask16 nan = _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
    rounded = _mm512_mask_mov_epi32(rounded, nan, _mm512_set1_epi32(0x7FC0));
    _mm256_storeu_si256(
        reinterpret_cast<__m256i*>(p), _mm512_cvtepi32_epi16(rounded));
  }
};

#endif

} // namespace

} // namespace mlx_qmm::cpu
