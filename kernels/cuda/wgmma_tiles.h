// Copyright © 2026 mlx-qmm contributors.
//
// The warpgroup GEMMs' tiles (sm_90a, float16 / bfloat16, transposed
// weights; wgmma_gemm.cuh for dense weights, wgmma_affine_gemm.cuh for 4-
// and 8-bit ones, whose section is at the end), defined once for the
// kernels and for the launch plan, which sizes the grids and the dynamic
// shared memory from them. Plain C++.
//
// Dense: a block is one producer warpgroup and two consumer ones. The producer
// fills a ring of shared-memory stages: each holds the x tile
// [kWgmmaBlockM][kWgmmaBlockK] and the w tile [block_n][kWgmmaBlockK], both
// K-major in the 128-byte swizzle that wgmma reads (wgmma.cuh). The
// consumers each multiply 64 rows of the x tile by the whole w tile with
// wgmma (64 x block_n x 16 products, float32 accumulators in registers) and
// hand the stage back.
//
// Shared memory of one block: stages x (x tile + w tile), 16 KB + block_n *
// 128 bytes each, 2 * stages mbarriers, and 1 KB to align the tiles to the
// swizzle atom.

#pragma once

namespace mlx_qmm::cuda {

inline constexpr int kWgmmaBlockM = 128;
inline constexpr int kWgmmaBlockK = 64; // one 128-byte swizzle row
inline constexpr int kWgmmaConsumerThreads = 256;

// Wide tiles reuse each x tile over 256 rows of w (m64n256k16, the largest
// wgmma); narrow ones halve the block where wide blocks would not fill the
// GPU (N = 4096 and M = 512: 64 wide blocks against 128 narrow ones).
enum class WgmmaTile : int { Narrow = 0, Wide = 1 };

constexpr int wgmma_block_n(WgmmaTile tile) {
  return tile == WgmmaTile::Wide ? 256 : 128;
}

// One producer warpgroup: with 384 threads a thread may use 168 registers,
// enough for a 64 x 256 wgmma's 128 accumulators. (A 512-thread block caps
// ptxas at 128, and ptxas does not raise the cap for code after
// setmaxnreg.inc.)
inline constexpr int kWgmmaProducerThreads = 128;
inline constexpr int kWgmmaThreads =
    kWgmmaProducerThreads + kWgmmaConsumerThreads;

// ---------------------- quantized weights ----------------------
// wgmma_affine_gemm.cuh swaps the operands' roles: w is the wgmma's A, 64
// rows a consumer warpgroup dequantized straight into registers, and x its
// B, wgmma_block_n(tile) rows from shared memory; out^T tiles accumulate.
// A block covers kWgmmaAffineBlockW rows of w and wgmma_block_n(tile) rows
// of x. A stage holds the x tile [block_n][kWgmmaBlockK] (swizzled) and the
// raw rows of the w tile [kWgmmaAffineBlockW][raw slot words]: the bit
// stream of the step's kWgmmaBlockK values, then kWgmmaScaleWords words with
// the (scale, bias) of its two 32-value halves, each the aligned word that
// holds it and its neighbour (cp.async copies 4 bytes at least). 4 and 8
// bits only: the bits values the targets name; the others stay
// with the tensor-core GEMM.
inline constexpr int kWgmmaAffineBlockW = 128;
inline constexpr int kWgmmaScaleWords = 4;

constexpr bool wgmma_affine_bits(int bits) {
  return bits == 4 || bits == 8;
}

// A slot of 12 (4-bit) or 20 (8-bit) words: the eight rows a warp reads at
// once start on eight different banks.
constexpr int wgmma_raw_slot_words(int bits) {
  return kWgmmaBlockK * bits / 32 + kWgmmaScaleWords;
}

// ------------------------- stage rings -------------------------

// A tile's rows of x and of w: the wgmma's M side (64 a consumer
// warpgroup) is x's for dense weights and w's for 4- and 8-bit ones.
constexpr int wgmma_x_rows(WgmmaTile tile, int bits) {
  return bits == 0 ? kWgmmaBlockM : wgmma_block_n(tile);
}
constexpr int wgmma_w_rows(WgmmaTile tile, int bits) {
  return bits == 0 ? wgmma_block_n(tile) : kWgmmaAffineBlockW;
}

// One stage: the x tile [x rows][kWgmmaBlockK], then the w tile (dense,
// [w rows][kWgmmaBlockK]) or its raw slots (4- and 8-bit).
constexpr int wgmma_stage_bytes(WgmmaTile tile, int bits) {
  const int w_bytes = bits == 0
      ? wgmma_w_rows(tile, bits) * kWgmmaBlockK * 2
      : wgmma_w_rows(tile, bits) * wgmma_raw_slot_words(bits) * 4;
  return wgmma_x_rows(tile, bits) * kWgmmaBlockK * 2 + w_bytes;
}

// The deepest ring (at most kWgmmaMaxStages) that fits the 227 KB an sm_90
// block may use, with each stage's two mbarriers and kWgmmaAlignSlack:
// wide tiles get four dense stages (48 KB) or five quantized ones (38 or
// 42 KB), narrow ones six.
inline constexpr int kWgmmaMaxSharedBytes = 227 * 1024;
inline constexpr int kWgmmaAlignSlack = 1024;
inline constexpr int kWgmmaMaxStages = 6;

constexpr int wgmma_ring_bytes(WgmmaTile tile, int bits, int stages) {
  return stages * (wgmma_stage_bytes(tile, bits) + 16) + kWgmmaAlignSlack;
}

constexpr int wgmma_stages(WgmmaTile tile, int bits) {
  int stages = kWgmmaMaxStages;
  while (wgmma_ring_bytes(tile, bits, stages) > kWgmmaMaxSharedBytes) {
    --stages;
  }
  return stages;
}

constexpr int wgmma_smem_bytes(WgmmaTile tile, int bits) {
  return wgmma_ring_bytes(tile, bits, wgmma_stages(tile, bits));
}

} // namespace mlx_qmm::cuda
