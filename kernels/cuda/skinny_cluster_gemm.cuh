// Copyright © 2026 mlx-qmm contributors.
//
// Quantized matmul for 17 to 32 rows of x on sm_90: the few-row GEMM of
// skinny_gemm.cuh (same K order, W fragments straight from global memory
// to registers) with x read from shared memory, and K split between the
// blocks of a thread-block cluster that add up their partial tiles through
// distributed shared memory.
//
// Why. In skinny_gemm every warp loads its own 32 rows of x for its own K
// range into registers: at 32 rows that is 64 registers a thread (the kernel
// spills at its bound of 128), 16 warps an SM, 1.7 waves for 14336 rows of
// W, and 32 x K x 2 bytes of x read from L2 for every 32 rows of W (117 MB
// at 14336 x 4096, four times the weights). Nsight Compute found it bound
// by load latency with too few warps (bench/cuda_kernels.md).
//
// Here a block's kSkinnyWarps warps each own kSkinnyCols rows of W as there,
// but all walk the same K chunks, so one copy of each x chunk in shared
// memory serves the block's kSkinnyClusterCols rows of W (x traffic: a
// quarter of the weights' at 4 bits). So that 14336 / 256 = 56 column tiles
// still fill the GPU, the blocks of a cluster (its x axis, `splits` of them)
// take consecutive shares of K; at the end each writes its float32 partial
// tile to its own shared memory, and block r of the cluster sums share r of
// the tile over all of them (DSMEM) and writes it out: no second kernel, no
// partials in global memory.
//
// The K loop is a two-stage pipeline with one barrier a chunk: while chunk
// c is multiplied (x from shared buffer c % 2), every thread holds its share
// of chunk c + 1's x (and, up to 4 bits, its W fragments of chunk c + 1) in
// registers, and stores that x to the other buffer after the products.
//
// x in shared memory is kept in fragment order: for m16 tile mi and
// product s of a chunk (values 4s .. 4s + 3 of each lane's 32-value block,
// skinny_gemm.cuh's K order), lane l finds its whole A fragment, rows g and
// g + 8, as one 16-byte vector at [mi][s][l]: one conflict-free LDS.128 a
// product, where row-major rows took two 8-byte loads and four register
// moves to assemble. At 4 bits the pairs are those of
// multiply_nibble_words (values four apart), permuted once when stored
// rather than by every warp. The stores cost four 4-byte writes per 16 bytes
// of x, once a block, against the reads of all kSkinnyWarps warps.
//
// Scales and biases reach the warps through shared memory, 8 groups of each
// row at a time (AffineWindows, below).
//
// Measured on the H100 (bench/cuda_kernels.md): q4 14336 x 4096 at 32 rows
// in 31.7 us against skinny_gemm's 39.2 with per-lane scale loads, 28.5 us
// under Nsight Compute, where 3.5 warps a scheduler issued once every 2.8
// cycles with no single dominant stall; 25.9 us in the benchmark with the
// scale windows (29.5 against 31.1 alternated with the version before).

#pragma once

#include <cooperative_groups.h>

#include "kernels/cuda/skinny_gemm.cuh"

namespace mlx_qmm::cuda {

// The shape of a block's tile and of its shared memory.
template <int rows>
struct SkinnyClusterTile {
  static_assert(rows == 16 || rows == kSkinnyMaxRows);
  static constexpr int kThreads = kSkinnyWarps * 32;
  static constexpr int kMTiles = rows / 16;
  static constexpr int kCols = kSkinnyClusterCols;
  // Products of a chunk (m16n8k16: 16 values of K each).
  static constexpr int kProducts = kSkinnyChunk / 16;
  // 16-byte vectors of x a chunk, and a thread's share of them.
  static constexpr int kRowVectors = kSkinnyChunk * 2 / 16;
  static constexpr int kXVectors = rows * kRowVectors;
  static constexpr int kXVectorsPerThread = kXVectors / kThreads;
  static_assert(kXVectors % kThreads == 0);
  static_assert(kThreads % kRowVectors == 0, "a thread's vectors share q");
  // The partial tile's row stride in floats: 8 past a multiple of 32, so
  // that a warp's float2 stores (rows g, columns 2t) take two wavefronts.
  static constexpr int kPartialStride = kCols + 8;

  union Shared {
    struct {
      uint4 x[2][kMTiles][kProducts][32]; // [buffer][mi][s][lane]
      // Scales and biases of each warp's 32 rows of W, a window of
      // kSkinnyClusterWindowGroups groups at a time, double-buffered:
      // [buffer][warp][scale, bias][row (ni * 8 + g)][group].
      uint16_t affine[2][kSkinnyWarps][2][kSkinnyCols]
                     [kSkinnyClusterWindowGroups];
    } loop;
    float partial[rows][kPartialStride];
  };
};

// A lane's W fragments of one chunk: its 32-value block of the row of each
// n8 tile, and the block's scale and bias as raw 16-bit T.
template <int bits>
struct SkinnyClusterW {
  uint32_t words[kSkinnyTilesN][bits];
  uint32_t scale[kSkinnyTilesN];
  uint32_t bias[kSkinnyTilesN];
};

// The rows of W a lane loads (row g of each of its warp's n8 tiles),
// clamped to the last row so that the loads need no branch: the columns
// past N are computed from that row and never written.
template <int bits>
struct SkinnyClusterRows {
  static constexpr int kBlocksPerChunk = kSkinnyChunk / 32;
  int row[kSkinnyTilesN];

  __device__ SkinnyClusterRows(const MatmulArgs& a, int n0, int g) {
#pragma unroll
    for (int ni = 0; ni < kSkinnyTilesN; ++ni) {
      row[ni] = min(n0 + ni * 8 + g, a.n - 1);
    }
  }

  // The W words of a chunk (the scales and biases come from the warp's
  // window in shared memory, AffineWindows).
  __device__ void
  load(const MatmulArgs& a, int chunk, int t, SkinnyClusterW<bits>& w) const {
    const int block = chunk * kBlocksPerChunk + t;
    const uint64_t row_words = static_cast<uint64_t>(a.k) * bits / 32;
    const uint32_t* words =
        static_cast<const uint32_t*>(a.w) + static_cast<int64_t>(block) * bits;
#pragma unroll
    for (int ni = 0; ni < kSkinnyTilesN; ++ni) {
      const uint32_t r = static_cast<uint32_t>(row[ni]);
      load_block_words<bits>(words + r * row_words, w.words[ni]);
    }
  }
};

// The scales and biases of a warp's 32 rows of W, copied into shared memory
// a window of kSkinnyClusterWindowGroups groups at a time (16 bytes of each
// row: one cp.async of scales and one of biases a lane, lane l taking warp
// row l), instead of one 2-byte load a lane, tile and chunk. Why: those
// loads touch eight rows each for 2 or 4 bytes of each; on the H100 they
// took a pass over the 4-bit 14336 x 4096 weights in this kernel's pattern
// from 15.8 to 26.3 us (experiments/dram_patterns.cu, bench/cuda_kernels.md).
// Window w holds groups [8 w, 8 w + 8): aligned, so a chunk (one, two or
// four groups) never straddles two. Where a row's groups are not a
// multiple of 8 (its scales not 16-byte aligned), the copies are plain
// 2-byte loads and stores instead.
struct AffineWindows {
  static constexpr int kGroups = kSkinnyClusterWindowGroups;
  static_assert(kGroups * 2 == 16, "one 16-byte copy a row and array");
  const uint16_t* scales; // this lane's row, group 0
  const uint16_t* biases;
  int groups; // a row's
  int group_size_log2;
  int lane; // copies warp row `lane`

  __device__ AffineWindows(const MatmulArgs& a, int n0, int lane) : lane(lane) {
    groups = a.k >> a.group_size_log2;
    group_size_log2 = a.group_size_log2;
    const int64_t row = min(n0 + lane, a.n - 1);
    scales = static_cast<const uint16_t*>(a.scales) + row * groups;
    biases = static_cast<const uint16_t*>(a.biases) + row * groups;
  }

  // The window of chunk c, and the place of value v of the chunk's
  // 128 in it.
  __device__ int window(int chunk) const {
    return ((chunk * kSkinnyChunk) >> group_size_log2) / kGroups;
  }
  __device__ int slot(int chunk, int value) const {
    return ((chunk * kSkinnyChunk + value) >> group_size_log2) % kGroups;
  }

  // Starts copying window w into `table` ([scale, bias][row][group] of this
  // lane's warp), each lane its own row.
  __device__ void issue(int w, uint16_t (*table)[kSkinnyCols][kGroups]) const {
    const int first = w * kGroups;
    if (groups % kGroups == 0) {
      copy_async<16>(shared_address(&table[0][lane][0]), scales + first);
      copy_async<16>(shared_address(&table[1][lane][0]), biases + first);
      copy_async_commit();
    } else {
#pragma unroll
      for (int i = 0; i < kGroups; ++i) {
        const bool valid = first + i < groups;
        table[0][lane][i] = valid ? __ldg(scales + first + i) : uint16_t{0};
        table[1][lane][i] = valid ? __ldg(biases + first + i) : uint16_t{0};
      }
    }
  }
};

// The products of one chunk: W fragments from registers, x fragments from
// shared memory; at 4 bits dequantized in pairs (multiply_nibble_words'
// order), otherwise an octet at a time (multiply_octets').
template <typename T, int bits, int rows>
__device__ __forceinline__ void multiply_shared_x(
    const SkinnyClusterW<bits>& w,
    const uint4 (&x)[SkinnyClusterTile<rows>::kMTiles]
                    [SkinnyClusterTile<rows>::kProducts][32],
    int lane,
    float (&acc)[SkinnyClusterTile<rows>::kMTiles][kSkinnyTilesN][4]) {
  constexpr int kMTiles = SkinnyClusterTile<rows>::kMTiles;
  // Product s of the chunk for every m16 tile and n8 tile, b[ni] the B
  // registers of tile ni.
  auto multiply = [&](int s, const uint32_t(&b)[kSkinnyTilesN][2]) {
#pragma unroll
    for (int mi = 0; mi < kMTiles; ++mi) {
      const uint4 v = x[mi][s][lane];
      const uint32_t af[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
      for (int ni = 0; ni < kSkinnyTilesN; ++ni) {
        mma_16816<T>(acc[mi][ni], af, b[ni]);
      }
    }
  };
  if constexpr (bits == 4) {
    // The raw 16-bit scale and bias twice: __byte_perm repeats bytes 0, 1.
    constexpr uint32_t kLowHalfTwice = 0x1010u;
    uint32_t scale2[kSkinnyTilesN];
    uint32_t bias2[kSkinnyTilesN];
#pragma unroll
    for (int ni = 0; ni < kSkinnyTilesN; ++ni) {
      scale2[ni] = __byte_perm(w.scale[ni], 0, kLowHalfTwice);
      bias2[ni] = __byte_perm(w.bias[ni], 0, kLowHalfTwice);
    }
#pragma unroll
    for (int j = 0; j < 4; ++j) {
#pragma unroll
      for (int p = 0; p < 2; ++p) {
        uint32_t b[kSkinnyTilesN][2];
#pragma unroll
        for (int ni = 0; ni < kSkinnyTilesN; ++ni) {
          dequantize_nibble_fragment<T>(
              w.words[ni][j], p, scale2[ni], bias2[ni], b[ni]);
        }
        multiply(2 * j + p, b);
      }
    }
  } else {
#pragma unroll
    for (int o = 0; o < 4; ++o) {
      uint32_t b[2][kSkinnyTilesN][2]; // [product of the octet][tile][reg]
#pragma unroll
      for (int ni = 0; ni < kSkinnyTilesN; ++ni) {
        const uint16_t s16 = static_cast<uint16_t>(w.scale[ni]);
        const uint16_t z16 = static_cast<uint16_t>(w.bias[ni]);
        uint32_t tile[2][2]; // [product of the octet][reg]
        dequantize_octet_fragments<T, bits>(
            w.words[ni],
            o,
            to_float(*reinterpret_cast<const T*>(&s16)),
            to_float(*reinterpret_cast<const T*>(&z16)),
            tile);
#pragma unroll
        for (int p = 0; p < 2; ++p) {
          b[p][ni][0] = tile[p][0];
          b[p][ni][1] = tile[p][1];
        }
      }
#pragma unroll
      for (int p = 0; p < 2; ++p) {
        multiply(2 * o + p, b[p]);
      }
    }
  }
}

// A thread's share of one x chunk: vectors q (8 values: 8q .. 8q + 7 of
// the chunk) of rows r0, r0 + kThreads / kRowVectors, ... (zero past a.m).
// Values 8q .. 8q + 7 are words 4j .. 4j + 3 (j = q % 4) of lane block t =
// q / 4, and feed products 2j and 2j + 1 of lane (g, t), g = r % 8: the four
// words a[h] and a[2 + h] (h = r / 8 % 2) of fragments [r / 16][2j + p][4g +
// t], p = 0, 1.
template <typename T, int bits, int rows>
struct SharedXStage {
  using Tile = SkinnyClusterTile<rows>;
  static constexpr int kRowStep = Tile::kThreads / Tile::kRowVectors;
  // The rows a thread stores are kRowStep apart: whole m16 tiles.
  static_assert(kRowStep % 16 == 0);
  static constexpr int kTileStep = kRowStep / 16;
  uint4 v[Tile::kXVectorsPerThread];
  const T* src; // row r0, vector q, of chunk 0
  int valid_rows; // of this thread's rows, those below a.m
  int word; // fragment word of row r0, product 2j, p = e = 0

  __device__ SharedXStage(const MatmulArgs& a, int m0) {
    const int r0 = threadIdx.x / Tile::kRowVectors;
    const int q = threadIdx.x % Tile::kRowVectors;
    src = static_cast<const T*>(a.x) + static_cast<int64_t>(m0 + r0) * a.k +
        8 * q;
    valid_rows = 0;
#pragma unroll
    for (int i = 0; i < Tile::kXVectorsPerThread; ++i) {
      valid_rows += m0 + r0 + i * kRowStep < a.m;
    }
    const int g = r0 % 8;
    const int h = (r0 / 8) % 2;
    const int lane = 4 * g + q / 4;
    word = ((r0 / 16) * Tile::kProducts + 2 * (q % 4)) * 32 * 4 + lane * 4 + h;
  }

  __device__ void load(const MatmulArgs& a, int chunk) {
#pragma unroll
    for (int i = 0; i < Tile::kXVectorsPerThread; ++i) {
      v[i] = i < valid_rows
          ? __ldg(reinterpret_cast<const uint4*>(
                src + static_cast<int64_t>(i) * kRowStep * a.k +
                chunk * kSkinnyChunk))
          : make_uint4(0, 0, 0, 0);
    }
  }

  __device__ void store(uint4 (&x)[Tile::kMTiles][Tile::kProducts][32]) const {
    // Word offsets: product 2j + 1 is 32 vectors on, a[2 + h] two words.
    constexpr int kNextProduct = 32 * 4;
    constexpr int kSecondK = 2;
    constexpr int kNextTile = Tile::kProducts * 32 * 4;
    uint32_t* words = reinterpret_cast<uint32_t*>(x);
#pragma unroll
    for (int i = 0; i < Tile::kXVectorsPerThread; ++i) {
      const uint4 u = v[i];
      uint32_t* out = words + word + i * kTileStep * kNextTile;
      if constexpr (bits == 4) {
        // Words (x0 x1), (x2 x3), (x4 x5), (x6 x7): product 2j takes the
        // pairs (x0 x4) and (x1 x5), product 2j + 1 (x2 x6) and (x3 x7).
        nibble_pair_order(u.x, u.z, out[0], out[kSecondK]);
        nibble_pair_order(
            u.y, u.w, out[kNextProduct], out[kNextProduct + kSecondK]);
      } else {
        out[0] = u.x;
        out[kSecondK] = u.y;
        out[kNextProduct] = u.z;
        out[kNextProduct + kSecondK] = u.w;
      }
    }
  }
};

// out[m0 + r, n] for the block's rows and kCols rows of W; grid.x is
// column tiles x splits, with the splits of a tile consecutive (one
// cluster), grid.y the blocks of `rows` rows of x. K is a multiple of
// kSkinnyChunk with at least one chunk a split.
template <typename T, int bits, int rows>
__global__ void __launch_bounds__(kSkinnyWarps * 32, kSkinnyClusterBlocksPerSM)
    skinny_cluster_gemm(const MatmulArgs a) {
  using Tile = SkinnyClusterTile<rows>;
  constexpr int kMTiles = Tile::kMTiles;
  // Chunk c + 1's W fragments are loaded before chunk c's products up to 4
  // bits; wider ones would spill under the 128-register bound, so they are
  // loaded at the top of their own iteration and the two blocks an SM
  // overlap their waits.
  constexpr bool kPrefetchW = bits <= 4;

  __shared__ typename Tile::Shared shared;

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  namespace cg = cooperative_groups;
  cg::cluster_group cluster = cg::this_cluster();
  const int splits = static_cast<int>(cluster.num_blocks());
  const int split = static_cast<int>(cluster.block_rank());
#else
  const int splits = 1;
  const int split = 0;
#endif

  const int warp = threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  const int g = lane / 4;
  const int t = lane % 4;
  const int block_n = (blockIdx.x / splits) * Tile::kCols;
  const int m0 = blockIdx.y * rows;
  const int chunks = a.k / kSkinnyChunk;
  const int first = chunks * split / splits;
  const int last = chunks * (split + 1) / splits;

  const SkinnyClusterRows<bits> w_rows(a, block_n + warp * kSkinnyCols, g);
  const AffineWindows windows(a, block_n + warp * kSkinnyCols, lane);
  auto table = [&](int w) { return shared.loop.affine[w % 2][warp]; };
  SharedXStage<T, bits, rows> x_next(a, m0);
  float acc[kMTiles][kSkinnyTilesN][4] = {};

  // One chunk: `now` holds its W fragments (loaded here when not
  // prefetched), `next` receives chunk c + 1's.
  auto step =
      [&](int c, SkinnyClusterW<bits>& now, SkinnyClusterW<bits>& next) {
        const bool more = c + 1 < last;
        // Chunk c + 1's scales and biases, where they start a new window: its
        // buffer last served window w - 1, whose reads ended at the barrier
        // of the step before.
        const int w = windows.window(c);
        if (more && windows.window(c + 1) != w) {
          windows.issue(w + 1, table(w + 1));
        }
        if constexpr (kPrefetchW) {
          if (more) {
            w_rows.load(a, c + 1, t, next);
          }
        } else {
          w_rows.load(a, c, t, now);
        }
        if (more) {
          x_next.load(a, c + 1);
        }
        // This lane's blocks' scale and bias (block t of each tile's row g).
        const int s = windows.slot(c, 32 * t);
#pragma unroll
        for (int ni = 0; ni < kSkinnyTilesN; ++ni) {
          now.scale[ni] = table(w)[0][ni * 8 + g][s];
          now.bias[ni] = table(w)[1][ni * 8 + g][s];
        }
        multiply_shared_x<T, bits, rows>(
            now, shared.loop.x[(c - first) % 2], lane, acc);
        if (more) {
          x_next.store(shared.loop.x[(c - first + 1) % 2]);
        }
        // Buffer (c + 1) % 2 is complete, and buffer c % 2 free for c + 2;
        // so are the copies of chunk c + 1's window.
        copy_async_wait<0>();
        __syncthreads();
      };

  SkinnyClusterW<bits> w_even;
  SkinnyClusterW<bits> w_odd;
  windows.issue(windows.window(first), table(windows.window(first)));
  x_next.load(a, first);
  if constexpr (kPrefetchW) {
    w_rows.load(a, first, t, w_even);
  }
  x_next.store(shared.loop.x[0]);
  copy_async_wait<0>();
  __syncthreads();
  // Two chunks an iteration, so that the two fragment sets trade roles
  // without copies.
  for (int c = first; c < last; c += 2) {
    step(c, w_even, w_odd);
    if (c + 1 < last) {
      step(c + 1, w_odd, w_even);
    }
  }

  // The partial tile (the x buffers' memory: the barrier above ended their
  // reads). Accumulator (mi, ni) holds rows g and g + 8 of its 16 x 8
  // tile, columns 2t and 2t + 1.
#pragma unroll
  for (int mi = 0; mi < kMTiles; ++mi) {
#pragma unroll
    for (int ni = 0; ni < kSkinnyTilesN; ++ni) {
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        *reinterpret_cast<float2*>(
            &shared.partial[16 * mi + 8 * h + g]
                           [warp * kSkinnyCols + ni * 8 + 2 * t]) =
            make_float2(acc[mi][ni][2 * h], acc[mi][ni][2 * h + 1]);
      }
    }
  }
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  cluster.sync();
#else
  __syncthreads();
#endif

  // Block `split` of the cluster sums its share of the tile's 4-column
  // groups over every block's partial tile and writes them out.
  constexpr int kRowGroups = Tile::kCols / 4;
  constexpr int kGroups = rows * kRowGroups;
  const T* bias = static_cast<const T*>(a.bias);
  T* out = static_cast<T*>(a.out);
  const int group_end = kGroups * (split + 1) / splits;
  for (int i = kGroups * split / splits + threadIdx.x; i < group_end;
       i += Tile::kThreads) {
    const int r = i / kRowGroups;
    const int col = (i % kRowGroups) * 4;
    float* mine = &shared.partial[r][col];
    // Every block's share first, then the sums: the distributed
    // shared-memory loads are then in flight together rather than one
    // latency after another.
    float4 v[kSkinnyClusterMaxSplits];
#pragma unroll
    for (int b = 0; b < kSkinnyClusterMaxSplits; ++b) {
      if (b < splits) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
        v[b] =
            *reinterpret_cast<const float4*>(cluster.map_shared_rank(mine, b));
#else
        v[b] = *reinterpret_cast<const float4*>(mine);
#endif
      }
    }
    float4 sum = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
#pragma unroll
    for (int b = 0; b < kSkinnyClusterMaxSplits; ++b) {
      if (b < splits) {
        sum.x += v[b].x;
        sum.y += v[b].y;
        sum.z += v[b].z;
        sum.w += v[b].w;
      }
    }
    const int m = m0 + r;
    if (m >= a.m) {
      continue;
    }
    const float values[4] = {sum.x, sum.y, sum.z, sum.w};
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const int n = block_n + col + e;
      if (n < a.n) {
        const float v = values[e] + (bias ? to_float(bias[n]) : 0.0f);
        out[static_cast<int64_t>(m) * a.n + n] = from_float<T>(v);
      }
    }
  }
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  // No block may leave while the others still read its partial tile. A
  // relaxed arrival: the reads have returned (their sums were stored),
  // and this block's output stores need no ordering, so the GPU-scope
  // fence of cluster.sync()'s release would only wait for those stores.
  asm volatile(
      "barrier.cluster.arrive.relaxed.aligned;\n"
      "barrier.cluster.wait.aligned;\n" ::
          : "memory");
#endif
}

} // namespace mlx_qmm::cuda
