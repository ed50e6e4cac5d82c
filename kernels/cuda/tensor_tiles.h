// Copyright © 2026 mlx-qmm contributors.
//
// The tensor-core GEMM's tiles (float16 / bfloat16, transposed weights),
// defined once for the kernels and for the launch plan, which sizes the grid
// and the dynamic shared memory from them. Plain C++.
//
// A block computes a block_m x block_n tile of out with warps_m x warps_n
// warps, each a (block_m / warps_m) x (block_n / warps_n) sub-tile of
// m16n8k16 products. The K loop steps kTensorBlockK values at a time
// through `stages` shared-memory stages filled by cp.async, so the loads of
// the next steps overlap the products of this one.
//
// Shared memory of one block, per stage:
//   x tile      [kBlockM][kBlockK + kRowPad] elements
//   w tile      dense: [kBlockN][kBlockK + kRowPad] elements
//               quantized: [kBlockN][packed_row_words] words, the raw bit
//               stream of each row's kBlockK values
//   quantized: scales and biases [kBlockN][kTensorGroupsPerStep][2]
// and, quantized only, one dequantized w tile [kBlockN][kBlockK + kRowPad]
// that the products read. kRowPad (8 elements, 16 bytes) staggers rows
// across banks so that ldmatrix's eight 16-byte row reads hit distinct
// banks.

#pragma once

#include "kernels/cuda/launch_params.h"

namespace mlx_qmm::cuda {

inline constexpr int kTensorBlockK = 64;
inline constexpr int kTensorRowPad = 8;

// Small tiles keep every SM busy when M is small (M <= 32 and N = 14336
// still gives 224 blocks); large ones reuse each weight tile across 128 rows
// of x, and the huge one halves again the shared-memory reads per product
// (a 64 x 64 warp tile).
enum class TensorTile : int { Small = 0, Medium = 1, Large = 2, Huge = 3 };
inline constexpr int kTensorTiles = 4;

struct TensorTileShape {
  int block_m;
  int block_n;
  int warps_m;
  int warps_n;
  // K steps in flight. Small tiles move little per step, so only a deep
  // pipeline keeps enough bytes in flight per SM to stream the weights at
  // full bandwidth (M <= 64 is memory-bound).
  int stages;

  constexpr int threads() const {
    return warps_m * warps_n * 32;
  }
};

inline constexpr TensorTileShape kTensorTileShapes[kTensorTiles] = {
    {32, 64, 1, 4, 8}, // Small: 2 x 2 m16n8 products a warp
    {64, 128, 2, 4, 4}, // Medium: 2 x 4
    {128, 128, 2, 4, 3}, // Large: 4 x 4
    {128, 256, 2, 4, 3}, // Huge: 4 x 8
};

constexpr TensorTileShape tensor_tile_shape(TensorTile tile) {
  return kTensorTileShapes[static_cast<int>(tile)];
}

// Words of one row's kBlockK packed values in shared memory: the stream
// itself, rounded up to whole 16-byte copies, plus 16 bytes of padding (the
// padding also lets the unpacker read one word past a row's last value).
constexpr int packed_row_words(int bits) {
  return (kTensorBlockK * bits / 32 + 3) / 4 * 4 + 4;
}

// Groups one K step can touch (group sizes are at least 32): each stage
// keeps this many (scale, bias) pairs a row, so that the unpacker finds them
// in shared memory instead of waiting on global loads.
inline constexpr int kTensorGroupsPerStep = kTensorBlockK / 32;

constexpr int scale_stage_bytes(TensorTile tile) {
  return tensor_tile_shape(tile).block_n * kTensorGroupsPerStep * 2 * 2;
}

constexpr int tensor_row_elements() {
  return kTensorBlockK + kTensorRowPad;
}

// Dynamic shared memory of one block; bits 0 means dense weights.
constexpr int tensor_smem_bytes(TensorTile tile, int bits) {
  const TensorTileShape s = tensor_tile_shape(tile);
  const int x_stage = s.block_m * tensor_row_elements() * 2;
  if (bits == 0) {
    return s.stages * (x_stage + s.block_n * tensor_row_elements() * 2);
  }
  const int w_stage = s.block_n * packed_row_words(bits) * 4;
  return s.stages * (x_stage + w_stage + scale_stage_bytes(tile)) +
      s.block_n * tensor_row_elements() * 2;
}

} // namespace mlx_qmm::cuda
