// Copyright © 2026 mlx-qmm contributors.
//
// Reading the affine packed format (csrc/quantized_format.h) in Metal: a
// 32-value block is `bits` consecutive words, value i at bit i * bits of
// their little-endian concatenation, so 3-, 5- and 6-bit values may straddle
// two words.

#pragma once

#include <metal_stdlib>

namespace qmm {

// Loads the `bits` words of one block into registers (with a zero word after
// them, for the straddling read of the last value).
template <int bits>
struct PackedBlock {
  uint32_t words[bits + 1];

  METAL_FUNC explicit PackedBlock(const device uint32_t* from) {
    for (int i = 0; i < bits; ++i) {
      words[i] = from[i];
    }
    words[bits] = 0;
  }

  // Quantized value i, 0 <= i < 32.
  METAL_FUNC uint32_t operator[](int i) const {
    const int bit = i * bits;
    // A 64-bit window over two words covers a value that straddles them.
    const uint64_t window =
        uint64_t(words[bit / 32]) | (uint64_t(words[bit / 32 + 1]) << 32);
    return uint32_t(window >> (bit % 32)) & ((1u << bits) - 1u);
  }
};

} // namespace qmm
