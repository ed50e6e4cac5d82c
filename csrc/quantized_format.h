// Copyright © 2026 mlx-qmm contributors.
//
// The affine quantized format, defined once for the op validation, the CPU
// kernels, the bindings (and through them the tests) and, later, the Metal
// launch plans and the simulator.
//
// It is exactly the storage of mx.quantize(w, group_size, bits,
// mode="affine") for a float matrix w of shape [R, C]:
//
//   w_q     uint32 [R, C * bits / 32]   each row a little-endian bit stream:
//                                       value j of the row occupies bits
//                                       [j * bits, (j + 1) * bits), least
//                                       significant bit first; 3-, 5- and
//                                       6-bit values straddle word boundaries
//   scales  float  [R, C / group_size]
//   biases  float  [R, C / group_size]
//
//   w_hat[r, j] = scales[r, j / group_size] * q[r, j]
//               + biases[r, j / group_size]
//
// Groups run along the last (packed) axis. 32 consecutive values always fill
// exactly `bits` whole words, and every supported group size is a multiple
// of 32, so every group starts on a word boundary: code may unpack a group
// (or any 32-value block) without looking at its neighbours.

#pragma once

#include <array>

namespace mlx_qmm {

inline constexpr int kWordBits = 32;
inline constexpr int kValuesPerBlock = 32;

inline constexpr std::array<int, 7> kSupportedBits = {1, 2, 3, 4, 5, 6, 8};
inline constexpr std::array<int, 3> kSupportedGroupSizes = {32, 64, 128};

inline constexpr int kDefaultGroupSize = 64;
inline constexpr int kDefaultBits = 4;

constexpr bool is_supported_bits(int bits) {
  for (int b : kSupportedBits) {
    if (b == bits) {
      return true;
    }
  }
  return false;
}

constexpr bool is_supported_group_size(int group_size) {
  for (int g : kSupportedGroupSizes) {
    if (g == group_size) {
      return true;
    }
  }
  return false;
}

// Words that hold one 32-value block.
constexpr int block_words(int bits) {
  return bits;
}

// Largest representable quantized value.
constexpr unsigned max_quantized_value(int bits) {
  return (1u << bits) - 1u;
}

} // namespace mlx_qmm
