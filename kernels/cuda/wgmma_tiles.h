// Copyright © 2026 mlx-qmm contributors.
//
// The warpgroup GEMM's tiles (wgmma_gemm.cuh; sm_90a, float16 / bfloat16,
// transposed weights), defined once for the kernel and for the launch plan,
// which sizes the grid and the dynamic shared memory from them. Plain C++.
//
// A block is two consumer warpgroups and one or two producer ones. The
// producers fill a ring of shared-memory stages: each holds the x tile
// [kWgmmaBlockM][kWgmmaBlockK] and the w tile [block_n][kWgmmaBlockK], both
// K-major in the 128-byte swizzle that wgmma reads (wgmma.cuh). Dense w
// arrives by cp.async; a quantized w arrives as its raw bit stream (with its
// scales and biases) in a second, smaller ring of raw slots, and the
// producers dequantize it into the stage. The consumers each multiply 64
// rows of the x tile by the whole w tile with wgmma (64 x block_n x 16
// products, float32 accumulators in registers) and hand the stage back.
//
// Shared memory of one block:
//   stages x (x tile + w tile)     16 KB + block_n * 128 bytes each
//   quantized: kWgmmaRawStages x   block_n * raw slot words * 4 bytes
//   2 * stages mbarriers, and 1 KB to align the tiles to the swizzle atom.

#pragma once

namespace mlx_qmm::cuda {

inline constexpr int kWgmmaBlockM = 128;
inline constexpr int kWgmmaBlockK = 64; // one 128-byte swizzle row
inline constexpr int kWgmmaConsumerThreads = 256;

// Wide tiles reuse each x tile over 256 rows of w (m64n256k16, the largest
// wgmma); narrow ones halve the block where wide blocks would not fill the
// GPU (N = 4096 and M = 512: 64 wide blocks against 128 narrow ones).
enum class WgmmaTile : int { Narrow = 0, Wide = 1 };
inline constexpr int kWgmmaTiles = 2;

constexpr int wgmma_block_n(WgmmaTile tile) {
  return tile == WgmmaTile::Wide ? 256 : 128;
}

// One producer warpgroup. Two, one thread a row of a wide quantized tile,
// would halve each thread's dequantization, but a 512-thread block caps
// ptxas at 128 registers a thread, fewer than a 64 x 256 wgmma's 128
// accumulators need (ptxas does not raise the cap for code after
// setmaxnreg.inc). With 384 threads every thread may use 168.
inline constexpr int kWgmmaProducerThreads = 128;
inline constexpr int kWgmmaThreads =
    kWgmmaProducerThreads + kWgmmaConsumerThreads;

// Quantized: the raw words of one w row per K step, the bit stream of
// kWgmmaBlockK values. 4- and 8-bit rows are unpacked word by word; other
// widths are padded to whole 16-byte units plus 16 bytes, since their
// unpacker reads a 64-bit window that may reach one word past the row's
// last value. After them, kWgmmaScaleWords words with the (scale, bias)
// of the step's two 32-value halves: each the aligned word holding it and
// its neighbour (cp.async copies 4 bytes at least).
constexpr bool wgmma_whole_word_octets(int bits) {
  return bits == 4 || bits == 8;
}
constexpr int wgmma_raw_row_words(int bits) {
  const int words = kWgmmaBlockK * bits / 32;
  return wgmma_whole_word_octets(bits) ? words : (words + 3) / 4 * 4 + 4;
}
inline constexpr int kWgmmaScaleWords = 4;
constexpr int wgmma_raw_slot_words(int bits) {
  return wgmma_raw_row_words(bits) + kWgmmaScaleWords;
}

// Raw slots: the producer copies a step's raw rows kWgmmaRawStages - 1
// steps before it dequantizes them.
inline constexpr int kWgmmaRawStages = 3;

constexpr int wgmma_stage_bytes(WgmmaTile tile) {
  return (kWgmmaBlockM + wgmma_block_n(tile)) * kWgmmaBlockK * 2;
}
constexpr int wgmma_raw_ring_bytes(WgmmaTile tile, int bits) {
  return bits == 0
      ? 0
      : kWgmmaRawStages * wgmma_block_n(tile) * wgmma_raw_slot_words(bits) * 4;
}

// The deepest ring of stages (at most kWgmmaMaxStages) that fits the 227 KB
// an sm_90 block may use beside the raw slots: wide tiles get four stages
// dense and three quantized, narrow ones five or six.
inline constexpr int kWgmmaMaxSharedBytes = 227 * 1024;
inline constexpr int kWgmmaAlignSlack = 1024;
inline constexpr int kWgmmaMaxStages = 6;
constexpr int wgmma_ring_bytes(WgmmaTile tile, int bits, int stages) {
  // Each stage also has its two mbarriers.
  return stages * (wgmma_stage_bytes(tile) + 16) +
      wgmma_raw_ring_bytes(tile, bits) + kWgmmaAlignSlack;
}
constexpr int wgmma_stages(WgmmaTile tile, int bits) {
  int stages = kWgmmaMaxStages;
  while (wgmma_ring_bytes(tile, bits, stages) > kWgmmaMaxSharedBytes) {
    --stages;
  }
  return stages;
}
static_assert(
    wgmma_stages(WgmmaTile::Wide, 8) >= 3,
    "the widest raw slots still leave a ring of three stages");

constexpr int wgmma_smem_bytes(WgmmaTile tile, int bits) {
  return wgmma_ring_bytes(tile, bits, wgmma_stages(tile, bits));
}

} // namespace mlx_qmm::cuda
