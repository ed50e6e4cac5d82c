// Copyright © 2026 mlx-qmm contributors.
//
// Unpacking the affine format (csrc/quantized_format.h) eight values at a
// time. Eight consecutive values of a row are `bits` bytes of its bit
// stream, starting at bit 8 * i * bits for the i-th octet; since every
// octet of 1 to 8 bits that starts inside a word ends inside the next one,
// a 64-bit window of two words, shifted to the octet's start, always holds
// it.
//
// Integers become floats without an int-to-float conversion (a slow
// instruction on NVIDIA GPUs): OR-ing q < 2^23 into the mantissa of 2^23
// (0x4B000000) gives the float 2^23 + q exactly, and one subtraction leaves
// q. For 4 and 8 bits a byte permute builds four such floats from four bytes
// at once, so the cost is about one integer and one float instruction a
// value.

#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>
#include <type_traits>

namespace mlx_qmm::cuda {

inline constexpr uint32_t kMagicFloatBits = 0x4B000000u; // 2^23
inline constexpr float kMagicFloat = 8388608.0f;

__device__ __forceinline__ float magic_to_float(uint32_t q) {
  return __uint_as_float(kMagicFloatBits | q) - kMagicFloat;
}

// Byte b of `bytes` as the float 2^23 + byte: __byte_perm picks byte b of
// the first operand for the low byte and bytes 0, 0 and 3 of 0x4B000000 for
// the others. b may be a run-time value.
__device__ __forceinline__ float byte_to_float(uint32_t bytes, int b) {
  return __uint_as_float(__byte_perm(bytes, kMagicFloatBits, 0x7440u | b)) -
      kMagicFloat;
}
template <int b>
__device__ __forceinline__ float byte_to_float(uint32_t bytes) {
  return byte_to_float(bytes, b);
}

// The packed 16-bit magic numbers of dequantize_biased_pair: 2^7 twice in
// bfloat16 (7 mantissa bits), 2^10 twice in float16 (10).
template <typename T>
inline constexpr uint32_t kPairMagic =
    std::is_same_v<T, __nv_bfloat16> ? 0x43004300u : 0x64006400u;

// A 16-bit value twice in one register (the scale or bias of a pair).
template <typename T>
__device__ __forceinline__ uint32_t duplicate16(T v) {
  const uint32_t bits = *reinterpret_cast<const uint16_t*>(&v);
  return bits | (bits << 16);
}

// A pair of T (float16 or bfloat16) from two integers q already OR-ed into
// the mantissas of kPairMagic<T> (exact for q below 2^7 or 2^10), as
// s * q + z with a single rounding; scale2 and bias2 hold s and z twice. A
// packed subtraction leaves q, exactly, and a packed FMA applies the scale
// and the bias, where unpacking to float32, the FMA there and the
// conversion back take about seven instructions for two values. (Folding
// the subtraction into the bias, z - 2^7 s, would round that bias to T: an
// error of up to a quarter of a quantization step.)
template <typename T>
__device__ __forceinline__ uint32_t
dequantize_biased_pair(uint32_t biased, uint32_t scale2, uint32_t bias2) {
  using T2 = std::
      conditional_t<std::is_same_v<T, __nv_bfloat16>, __nv_bfloat162, __half2>;
  constexpr uint32_t kMagic = kPairMagic<T>;
  const T2 q = __hsub2(
      *reinterpret_cast<const T2*>(&biased),
      *reinterpret_cast<const T2*>(&kMagic));
  const T2 w = __hfma2(
      q,
      *reinterpret_cast<const T2*>(&scale2),
      *reinterpret_cast<const T2*>(&bias2));
  return *reinterpret_cast<const uint32_t*>(&w);
}

// Two 4-bit values, at bits 0-3 and 16-19 of `nibbles` (whatever the other
// bits hold), dequantized to a pair of T: the mask and the OR into the
// magic are one LOP3, so three instructions two values. (Written as C++,
// (nibbles & mask) | magic compiled to two: a LOP3 takes one immediate.)
template <typename T>
__device__ __forceinline__ uint32_t
dequantize_nibble_pair(uint32_t nibbles, uint32_t scale2, uint32_t bias2) {
  constexpr uint32_t kNibbleMask = 0x000F000Fu;
  constexpr uint32_t kMaskThenOr = 0xEA; // (a & b) | c
  uint32_t biased;
  asm("lop3.b32 %0, %1, %2, %3, %4;"
      : "=r"(biased)
      : "r"(nibbles), "n"(kNibbleMask), "r"(kPairMagic<T>), "n"(kMaskThenOr));
  return dequantize_biased_pair<T>(biased, scale2, bias2);
}

// Two words of x pairs, (x0 x1) and (x4 x5) four values apart, as the A
// pairs of the nibble-pair order (multiply_nibble_words): (x0 x4) into
// `low` and (x1 x5) into `high`.
__device__ __forceinline__ void nibble_pair_order(
    uint32_t first,
    uint32_t second,
    uint32_t& low,
    uint32_t& high) {
  // __byte_perm selectors: the low halves of two words, their high halves.
  constexpr uint32_t kLowHalves = 0x5410u;
  constexpr uint32_t kHighHalves = 0x7632u;
  low = __byte_perm(first, second, kLowHalves);
  high = __byte_perm(first, second, kHighHalves);
}

// q[t] = value t of the octet whose stream starts at bit 0 of `window`.
template <int bits>
__device__ __forceinline__ void unpack_octet(uint64_t window, float (&q)[8]) {
  if constexpr (bits == 4) {
    const uint32_t word = static_cast<uint32_t>(window);
    const uint32_t low = word & 0x0F0F0F0Fu; // values 0, 2, 4, 6
    const uint32_t high = (word >> 4) & 0x0F0F0F0Fu; // values 1, 3, 5, 7
    q[0] = byte_to_float<0>(low);
    q[1] = byte_to_float<0>(high);
    q[2] = byte_to_float<1>(low);
    q[3] = byte_to_float<1>(high);
    q[4] = byte_to_float<2>(low);
    q[5] = byte_to_float<2>(high);
    q[6] = byte_to_float<3>(low);
    q[7] = byte_to_float<3>(high);
  } else if constexpr (bits == 8) {
    const uint32_t lo = static_cast<uint32_t>(window);
    const uint32_t hi = static_cast<uint32_t>(window >> 32);
    q[0] = byte_to_float<0>(lo);
    q[1] = byte_to_float<1>(lo);
    q[2] = byte_to_float<2>(lo);
    q[3] = byte_to_float<3>(lo);
    q[4] = byte_to_float<0>(hi);
    q[5] = byte_to_float<1>(hi);
    q[6] = byte_to_float<2>(hi);
    q[7] = byte_to_float<3>(hi);
  } else {
    constexpr uint32_t mask = (1u << bits) - 1u;
#pragma unroll
    for (int t = 0; t < 8; ++t) {
      q[t] = magic_to_float(static_cast<uint32_t>(window >> (t * bits)) & mask);
    }
  }
}

// The window of octet i of a block of values held in registers (`bits`
// words for 32 values, or fewer words for a shorter block); i is a
// compile-time constant after unrolling.
template <int bits, int words_held>
__device__ __forceinline__ uint64_t
block_octet_window(const uint32_t (&words)[words_held], int i) {
  const int first_bit = 8 * i * bits;
  const int word = first_bit / 32;
  const int shift = first_bit % 32;
  uint64_t window = words[word];
  if (word + 1 < words_held) {
    window |= static_cast<uint64_t>(words[word + 1]) << 32;
  }
  return window >> shift;
}

// The window of octet i of a row whose stream starts at `words` (any
// memory); reads one word past the octet's last, which the caller provides.
template <int bits>
__device__ __forceinline__ uint64_t
row_octet_window(const uint32_t* words, int i) {
  const int first_bit = 8 * i * bits;
  const int word = first_bit / 32;
  const uint64_t window =
      words[word] | (static_cast<uint64_t>(words[word + 1]) << 32);
  return window >> (first_bit % 32);
}

// Value `index` of a row's stream for any bits (the CUDA-core fallback).
__device__ __forceinline__ uint32_t
packed_value(const uint32_t* row, int64_t index, int bits) {
  const int64_t first_bit = index * bits;
  const int64_t word = first_bit / 32;
  const int shift = static_cast<int>(first_bit % 32);
  uint32_t v = row[word] >> shift;
  if (shift + bits > 32) {
    v |= row[word + 1] << (32 - shift);
  }
  return v & ((1u << bits) - 1u);
}

} // namespace mlx_qmm::cuda
