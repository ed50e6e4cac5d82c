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
// them, for the straddling read of the last value), in the widest loads the
// block's alignment allows: a block starts at a multiple of `bits` words
// (rows of w hold a multiple of 32 values), so 4- and 8-bit blocks are one
// and two 16-byte loads, 2- and 6-bit blocks 8-byte loads.
template <int bits>
struct PackedBlock {
  uint32_t words[bits + 1];

  METAL_FUNC explicit PackedBlock(const device uint32_t* from) {
    if (bits % 4 == 0) {
      const device uint4* wide = reinterpret_cast<const device uint4*>(from);
      for (int i = 0; i < bits / 4; ++i) {
        const uint4 v = wide[i];
        words[4 * i] = v.x;
        words[4 * i + 1] = v.y;
        words[4 * i + 2] = v.z;
        words[4 * i + 3] = v.w;
      }
    } else if (bits % 2 == 0) {
      const device uint2* wide = reinterpret_cast<const device uint2*>(from);
      for (int i = 0; i < bits / 2; ++i) {
        const uint2 v = wide[i];
        words[2 * i] = v.x;
        words[2 * i + 1] = v.y;
      }
    } else {
      for (int i = 0; i < bits; ++i) {
        words[i] = from[i];
      }
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
