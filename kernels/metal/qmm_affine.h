// Copyright © 2026 mlx-qmm contributors.
//
// Tiled affine quantized matmul for more rows of x (see tiled_matmul.h for
// the tile loop): y = x @ dequantize(w).T (transpose) or x @ dequantize(w).
//
// The w tile is dequantized straight from the packed weights, one thread
// per 32-value block, [k][n] in the tile whichever way w is packed. For
// x @ w.T block j is row n0 + j of w (packed along K), values k0..k0+31,
// and fills column j; for x @ w w is packed along N, and block j is row
// k0 + j / (tile / 32) of w, values n0 + 32 * (j % (tile / 32)) onwards,
// filling that stretch of row j / (tile / 32). Either way there are `tile`
// blocks (kTileK = 32). A block lies in one quantization group, so it needs
// one scale and one bias, and w, scales and biases are each read once per
// tile of rows.

#pragma once

#include <metal_stdlib>

#include "kernels/metal/affine_block.h"
#include "kernels/metal/tiled_matmul.h"

namespace qmm {
namespace qmm_affine {

using namespace tiled_matmul;

template <typename T, int group_size, int bits, bool transpose, int tile>
struct AffineTileLoader {
  const device uint32_t* w;
  const device T* scales;
  const device T* biases;
  int N;
  int K;

  METAL_FUNC void load(
      threadgroup float* w_tile,
      const int n0,
      const int k0,
      const uint thread_index) const {
    constexpr int kStride = tile_stride(tile);
    constexpr int kBlocksPerRow = tile / 32; // x @ w: blocks per tile row
    if (thread_index >= uint(tile)) {
      return;
    }
    const int block = int(thread_index);
    // The block's row of w, where the block starts in it, and where its
    // values go in the tile: value c at out[c * value_stride].
    const int row = transpose ? n0 + block : k0 + block / kBlocksPerRow;
    const int rows = transpose ? N : K;
    const int row_length = transpose ? K : N; // values
    const int start = transpose ? k0 : n0 + 32 * (block % kBlocksPerRow);
    const int value_stride = transpose ? kStride : 1;
    threadgroup float* out = w_tile +
        (transpose ? block
                   : (block / kBlocksPerRow) * kStride +
                 32 * (block % kBlocksPerRow));
    // Past the last row, or (x @ w, a 64-tile) past the end of a row.
    if (row >= rows || start >= row_length) {
      for (int c = 0; c < 32; ++c) {
        out[c * value_stride] = 0.0f;
      }
      return;
    }
    const int64_t group =
        int64_t(row) * (row_length / group_size) + start / group_size;
    const float scale = float(scales[group]);
    const float bias = float(biases[group]);
    const PackedBlock<bits> q(
        w + int64_t(row) * (row_length * bits / 32) + (start / 32) * bits);
    for (int c = 0; c < 32; ++c) {
      out[c * value_stride] = scale * float(q[c]) + bias;
    }
  }
};

} // namespace qmm_affine
} // namespace qmm
