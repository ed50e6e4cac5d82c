// Copyright © 2026 mlx-qmm contributors.
//
// Unpacking of the affine format (csrc/quantized_format.h) on the CPU.

#pragma once

#include <cstdint>

#include "csrc/quantized_format.h"

namespace mlx_qmm::cpu {

// Unpacks one 32-value block: `words` points at its first word, successive
// words `word_stride` apart; the block's `bits` words hold value i at bit
// i * bits of their little-endian concatenation. Writes
// scale * q[i] + bias to out[i * out_stride].
template <int Bits, typename Acc>
inline void dequantize_block(
    const uint32_t* words,
    int64_t word_stride,
    Acc scale,
    Acc bias,
    Acc* out,
    int64_t out_stride) {
  static_assert(is_supported_bits(Bits));
  uint32_t w[block_words(Bits) + 1];
  for (int i = 0; i < block_words(Bits); ++i) {
    w[i] = words[i * word_stride];
  }
  w[block_words(Bits)] = 0; // spill word for the last straddling read
  constexpr uint32_t mask = max_quantized_value(Bits);
  for (int i = 0; i < kValuesPerBlock; ++i) {
    const int bit = i * Bits;
    const int word = bit / kWordBits;
    const int shift = bit % kWordBits;
    // A 64-bit window over two words covers a value that straddles them.
    const uint64_t window =
        w[word] | (static_cast<uint64_t>(w[word + 1]) << kWordBits);
    const uint32_t q = static_cast<uint32_t>(window >> shift) & mask;
    out[i * out_stride] = scale * static_cast<Acc>(q) + bias;
  }
}

// Calls fn.template operator()<Bits>() for the run-time `bits`, so that the
// unpacking is specialised per width.
template <typename Fn>
inline void dispatch_bits(int bits, Fn&& fn) {
  switch (bits) {
    case 1:
      return fn.template operator()<1>();
    case 2:
      return fn.template operator()<2>();
    case 3:
      return fn.template operator()<3>();
    case 4:
      return fn.template operator()<4>();
    case 5:
      return fn.template operator()<5>();
    case 6:
      return fn.template operator()<6>();
    case 8:
      return fn.template operator()<8>();
  }
}

} // namespace mlx_qmm::cpu
