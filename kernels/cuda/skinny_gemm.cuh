// Copyright © 2026 mlx-qmm contributors.
//
// Quantized matmul for a few rows of x (2 <= M <= kSkinnyMaxRows, float16 /
// bfloat16, transposed weights, K a multiple of kSkinnyChunk) on tensor
// cores, with the weights going straight from global memory to registers:
// no shared-memory stage, no barrier in the K loop. At such M the work is
// streaming the weights; the tile kernel (tensor_gemm.cuh) spent about 12
// instructions a weight there, most of them copying and indexing shared
// memory, and reached a quarter of the bandwidth.
//
// The trick is the order of K. A sum over k does not care about the order
// in which the products are taken, as long as x and W use the same one. In
// an m16n8k16 product, lane (g = lane / 4, t = lane % 4) holds B (W) values
// at k = 2t, 2t + 1 (register b0) and 2t + 8, 2t + 9 (b1) of column g, and
// the A (x) values at the same k of rows g and g + 8. Here lane t takes
// the 32 consecutive values [32t, 32t + 32) of each 128-value chunk of K,
// one packed block of MLX's layout (`bits` words), and product s of the
// chunk (s = 0..7) reads values 4s .. 4s + 3 of it:
//
//   mma position k:    2t, 2t+1  |  2t+8, 2t+9
//   chunk value:    32t+4s+{0,1} | 32t+4s+{2,3}
//
// Over t = 0..3 and s = 0..7 that is every value of the chunk once. So a
// lane's B registers are its own block unpacked in order, and its A
// registers are 32-bit pairs of the x row read in order: both come from
// plain 16-byte loads, with no shuffle. (At 4 bits the values are
// dequantized in pairs that are four apart, multiply_nibble_words, and x
// takes one byte permute a pair to match.)
//
// A block is kSkinnyWarps warps on the same kSkinnyCols rows of W (n8
// tiles) and `rows` rows of x (8: one m16 tile whose rows g + 8 are zero,
// which spares their registers; 16; 32: two tiles); the warps split the
// chunks of K between them, so that N = 4096 still gives 1024 warps to keep
// loads in flight, and sum their partial tiles through shared memory at the
// end.
//
// On sm_90 the launch plan gives 17 to 32 rows to skinny_cluster_gemm.cuh
// instead, which shares each x chunk between a block's warps.

#pragma once

#include "kernels/cuda/float_types.cuh"
#include "kernels/cuda/launch_params.h"
#include "kernels/cuda/matvec.cuh"
#include "kernels/cuda/mma.cuh"

namespace mlx_qmm::cuda {

// What a lane reads for one chunk of K: its block of each n8 tile's row
// (with the group's scale and bias) and the same 32 values of its rows of x,
// as 16 words of two elements. x rows g + 8 exist only for rows >= 16.
template <typename T, int bits, int rows>
struct SkinnyOperands {
  static constexpr int kHalves = rows / 8; // x rows a lane holds
  typename AffineRows<T, bits>::Chunk w[kSkinnyTilesN];
  uint32_t x[kHalves][16];

  __device__ void load(const MatmulArgs& a, int n0, int m0, int g, int block) {
#pragma unroll
    for (int ni = 0; ni < kSkinnyTilesN; ++ni) {
      const int n = n0 + ni * 8 + g;
      if (n < a.n) {
        w[ni] = AffineRows<T, bits>::load(a, n, block);
      } else {
        w[ni] = {};
      }
    }
    const T* xs = static_cast<const T*>(a.x);
#pragma unroll
    for (int h = 0; h < kHalves; ++h) {
      // Half h is row g + 8 h: rows g, g + 8 of m16 tile h / 2.
      const int m = m0 + (h / 2) * 16 + g + 8 * (h % 2);
      const uint4* src = reinterpret_cast<const uint4*>(
          xs + static_cast<int64_t>(m) * a.k + block * 32);
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        const uint4 v = m < a.m ? __ldg(src + i) : make_uint4(0, 0, 0, 0);
        x[h][4 * i] = v.x;
        x[h][4 * i + 1] = v.y;
        x[h][4 * i + 2] = v.z;
        x[h][4 * i + 3] = v.w;
      }
    }
  }
};

// The B registers of the two products of octet o of a lane's block (values
// 8o .. 8o + 7): unpacked to float32, scaled (s) and biased (z) there and
// rounded to T pairs; b[p] feeds product 2o + p.
template <typename T, int bits>
__device__ __forceinline__ void dequantize_octet_fragments(
    const uint32_t (&words)[bits],
    int o,
    float s,
    float z,
    uint32_t (&b)[2][2]) {
  float q[8];
  unpack_octet<bits>(block_octet_window<bits>(words, o), q);
#pragma unroll
  for (int p = 0; p < 2; ++p) {
    b[p][0] = pack2<T>(fmaf(s, q[4 * p], z), fmaf(s, q[4 * p + 1], z));
    b[p][1] = pack2<T>(fmaf(s, q[4 * p + 2], z), fmaf(s, q[4 * p + 3], z));
  }
}

// The B registers of product 2j + p of a lane's 4-bit block from its word
// j (multiply_nibble_words' order): nibbles 2p and 2p + 1 with their
// partners four on, as pairs of T.
template <typename T>
__device__ __forceinline__ void dequantize_nibble_fragment(
    uint32_t word,
    int p,
    uint32_t scale2,
    uint32_t bias2,
    uint32_t (&b)[2]) {
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    b[r] = dequantize_nibble_pair<T>(word >> (4 * (2 * p + r)), scale2, bias2);
  }
}

// The products of one chunk at any bits: each octet of a lane's block
// unpacked to float32, scaled and biased there and converted to T pairs;
// octet o feeds products 2o and 2o + 1.
template <typename T, int bits, int kMTiles, class Operands>
__device__ __forceinline__ void multiply_octets(
    const Operands& now,
    float (&acc)[kMTiles][kSkinnyTilesN][4]) {
#pragma unroll
  for (int o = 0; o < 4; ++o) {
    uint32_t b[kSkinnyTilesN][2][2]; // [tile][product of the octet][reg]
#pragma unroll
    for (int ni = 0; ni < kSkinnyTilesN; ++ni) {
      dequantize_octet_fragments<T, bits>(
          now.w[ni].words, o, now.w[ni].scale, now.w[ni].bias, b[ni]);
    }
#pragma unroll
    for (int p = 0; p < 2; ++p) {
      const int s = 2 * o + p; // values 4s .. 4s + 3: words 2s, 2s + 1
#pragma unroll
      for (int mi = 0; mi < kMTiles; ++mi) {
        // Rows g + 8 are zero where the block has only 8 rows.
        const int lo = 2 * mi;
        const int hi = 2 * mi + 1;
        const uint32_t af[4] = {
            now.x[lo][2 * s],
            hi < Operands::kHalves ? now.x[hi][2 * s] : 0u,
            now.x[lo][2 * s + 1],
            hi < Operands::kHalves ? now.x[hi][2 * s + 1] : 0u};
#pragma unroll
        for (int ni = 0; ni < kSkinnyTilesN; ++ni) {
          mma_16816<T>(acc[mi][ni], af, b[ni][p]);
        }
      }
    }
  }
}

// The products of one chunk at 4 bits, dequantized two values at a time
// (dequantize_nibble_pair). Word j of a lane's block holds values 8j .. 8j
// + 7 (relative to the block), nibble i at bits 4i; shifted right by 4i and
// masked, it yields the pair (8j + i, 8j + i + 4). So word j feeds products
// 2j and 2j + 1 with B registers
//   product 2j:     b0 = (i = 0) values 0, 4    b1 = (i = 1) values 1, 5
//   product 2j + 1: b0 = (i = 2) values 2, 6    b1 = (i = 3) values 3, 7
// and x follows the same order: its words hold consecutive pairs (x0, x1),
// (x2, x3), ..., and a byte permute makes (x0, x4), (x1, x5), ... of them,
// once for all kSkinnyTilesN tiles.
template <typename T, int kMTiles, class Operands>
__device__ __forceinline__ void multiply_nibble_words(
    Operands& now,
    float (&acc)[kMTiles][kSkinnyTilesN][4]) {
  // x words 4j + p = (x[2p], x[2p + 1]) and 4j + p + 2 = (x[2p + 4],
  // x[2p + 5]) (relative to 8j) become (x[2p], x[2p + 4]), the A pair of
  // b0, and (x[2p + 1], x[2p + 5]), that of b1, in place: 32-row blocks are
  // at their register bound.
#pragma unroll
  for (int h = 0; h < Operands::kHalves; ++h) {
#pragma unroll
    for (int j = 0; j < 4; ++j) {
#pragma unroll
      for (int p = 0; p < 2; ++p) {
        const uint32_t first = now.x[h][4 * j + p];
        const uint32_t second = now.x[h][4 * j + p + 2];
        nibble_pair_order(
            first, second, now.x[h][4 * j + p], now.x[h][4 * j + p + 2]);
      }
    }
  }
  uint32_t scale2[kSkinnyTilesN];
  uint32_t bias2[kSkinnyTilesN];
#pragma unroll
  for (int ni = 0; ni < kSkinnyTilesN; ++ni) {
    scale2[ni] = pack2<T>(now.w[ni].scale, now.w[ni].scale);
    bias2[ni] = pack2<T>(now.w[ni].bias, now.w[ni].bias);
  }
#pragma unroll
  for (int j = 0; j < 4; ++j) {
#pragma unroll
    for (int p = 0; p < 2; ++p) {
      // [tile][reg]: pairs i = 2p (b0) and 2p + 1 (b1), dequantized per
      // product, so that only two pairs a tile are live at a time.
      uint32_t b[kSkinnyTilesN][2];
#pragma unroll
      for (int ni = 0; ni < kSkinnyTilesN; ++ni) {
        dequantize_nibble_fragment<T>(
            now.w[ni].words[j], p, scale2[ni], bias2[ni], b[ni]);
      }
#pragma unroll
      for (int mi = 0; mi < kMTiles; ++mi) {
        uint32_t af[4];
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          const int half = 2 * mi + h; // rows g + 8 h of m16 tile mi
          // Rows g + 8 of an 8-row block are zero.
          af[h] = half < Operands::kHalves ? now.x[half][4 * j + p] : 0u;
          af[2 + h] =
              half < Operands::kHalves ? now.x[half][4 * j + p + 2] : 0u;
        }
#pragma unroll
        for (int ni = 0; ni < kSkinnyTilesN; ++ni) {
          mma_16816<T>(acc[mi][ni], af, b[ni]);
        }
      }
    }
  }
}

// Blocks an SM: without a bound the compiler took up to 162 registers a
// thread at 32 rows (one block of 8 warps an SM) and 92 at 8 rows (two).
// Three blocks of 8 rows (80 registers) spill from 6 bits up, and q8 then
// ran 20% slower than with two; q4 ran 15% faster. At 32 rows (128
// registers) ptxas reports spill stores of 40 bytes at 4 bits and 48 at 8.
template <typename T, int bits, int rows>
__global__ void __launch_bounds__(
    kSkinnyWarps * 32,
    rows == 8 && bits <= 5 ? 3 : 2) skinny_gemm(const MatmulArgs a) {
  static_assert(rows == 8 || rows == 16 || rows == 32);
  constexpr int kMTiles = (rows + 15) / 16;
  constexpr int kBlocksPerChunk = kSkinnyChunk / 32; // one per lane of a quad
  static_assert(kBlocksPerChunk == 4, "a quad of lanes covers one chunk");
  using Operands = SkinnyOperands<T, bits, rows>;

  __shared__ float partial[kSkinnyWarps][16 * kMTiles][kSkinnyCols];

  const int warp = threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  const int g = lane / 4;
  const int t = lane % 4;
  const int n0 = blockIdx.x * kSkinnyCols;
  const int m0 = blockIdx.y * rows;
  const int chunks = a.k / kSkinnyChunk;
  const int first = chunks * warp / kSkinnyWarps;
  const int last = chunks * (warp + 1) / kSkinnyWarps;

  float acc[kMTiles][kSkinnyTilesN][4] = {};

  // No software pipeline: holding the next chunk's operands too cost more
  // registers (one block an SM instead of two at 16 rows) than it hid
  // latency; the 16 to 24 warps an SM overlap their loads instead.
  for (int c = first; c < last; ++c) {
    Operands now;
    now.load(a, n0, m0, g, c * kBlocksPerChunk + t);
    if constexpr (bits == 4) {
      multiply_nibble_words<T, kMTiles>(now, acc);
    } else {
      multiply_octets<T, bits, kMTiles>(now, acc);
    }
  }

  // Accumulator (mi, ni) holds rows g and g + 8 of its 16 x 8 tile,
  // columns 2t and 2t + 1.
#pragma unroll
  for (int mi = 0; mi < kMTiles; ++mi) {
#pragma unroll
    for (int ni = 0; ni < kSkinnyTilesN; ++ni) {
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        float* row = partial[warp][mi * 16 + g + 8 * h] + ni * 8 + 2 * t;
        row[0] = acc[mi][ni][2 * h];
        row[1] = acc[mi][ni][2 * h + 1];
      }
    }
  }
  __syncthreads();

  const T* bias = static_cast<const T*>(a.bias);
  T* out = static_cast<T*>(a.out);
  for (int i = threadIdx.x; i < rows * kSkinnyCols; i += kSkinnyWarps * 32) {
    const int r = i / kSkinnyCols;
    const int col = i % kSkinnyCols;
    const int m = m0 + r;
    const int n = n0 + col;
    if (m >= a.m || n >= a.n) {
      continue;
    }
    float sum = bias ? to_float(bias[n]) : 0.0f;
#pragma unroll
    for (int v = 0; v < kSkinnyWarps; ++v) {
      sum += partial[v][r][col];
    }
    out[static_cast<int64_t>(m) * a.n + n] = from_float<T>(sum);
  }
}

} // namespace mlx_qmm::cuda
