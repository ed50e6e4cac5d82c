// Copyright © 2026 mlx-qmm contributors.
//
// The warpgroup GEMM for 4- and 8-bit affine quantized weights (sm_90a;
// float16 / bfloat16, transposed weights w [N, K]): out = x @ W^T (+ bias).
// Tiles and stages in wgmma_tiles.h; the instructions in wgmma.cuh.
//
// Why w is the A operand, in registers: wgmma reads B from shared memory
// only, but A may come from registers, in the m16n8k16 fragment layout. So
// each consumer warpgroup dequantizes its 64 rows of w for 16 values of K
// straight into the four A registers a thread holds, while the tensor
// cores run the previous 16, and the dequantized tile never goes through
// shared memory (no stores, no proxy fence, no barrier between the threads
// that dequantize and those that multiply). An earlier version had the
// producer warpgroup dequantize a w tile into shared memory as wgmma's B;
// at 128 threads for 256 rows it, not the tensor cores, set the pace, and
// it was no faster than the tensor-core GEMM (bench/cuda_kernels.md).
// With w as A the block computes out^T: 128 rows of w (two consumer
// warpgroups of 64) by block_n rows of x.
//
// Producer warpgroup, per K step j: wait empty[j % stages] (the consumers
// are done with step j - stages), cp.async the x tile (swizzled) and the
// raw rows of w with their scales and biases (one row a thread) into the
// stage, and arrive on full through the copies themselves
// (cp.async.mbarrier.arrive), so it never waits for its own copies.
// Consumer warpgroup g, per K step: wait full, fence the x tile to the async
// proxy, then for each 16 values of K: dequantize this thread's A fragment
// (rows 16 warp + lane / 4 and + 8, values 2 (lane % 4), + 1, + 8, + 9) from
// the raw rows, wgmma it against the x tile, and wait for the product
// before last, whose A registers the next fragment reuses; once the first
// product of a step is issued, the previous step's stage is handed back.
//
// A fragment from the bit stream: the thread's values 2t, 2t + 1 (t = lane
// % 4) of a 16-value slice are byte t of one word (4-bit) or half-word t % 2
// of one word (8-bit), so a quad of lanes reads each raw word once between
// them, and a byte permute lines a pair up for the packed dequantization
// (affine_unpack.cuh).
//
// Edges: rows of x past M, rows of w past N and values past K are zero
// (zero-filled copies; zero scales and biases past N and past the last
// group), so partial tiles need no other branch than the epilogue's store
// guard. K is a multiple of 32 and every operand 16-byte aligned (the
// launch plan checks).

#pragma once

#include "kernels/cuda/affine_unpack.cuh"
#include "kernels/cuda/float_types.cuh"
#include "kernels/cuda/mma.cuh"
#include "kernels/cuda/wgmma.cuh"
#include "kernels/cuda/wgmma_tiles.h"

namespace mlx_qmm::cuda {

// The (scale, bias) of one row for one 32-value half of a step.
template <typename T>
struct RowAffine {
  uint32_t scale2; // the scale twice
  uint32_t bias2;
  float scale;
  float bias;
};

// From the raw slot's scale words; `odd`: the element's index in the array
// is odd, so it is the high half of its word.
template <typename T>
__device__ __forceinline__ RowAffine<T>
row_affine(const uint32_t* scale_words, int half, bool odd) {
  const int shift = odd ? 16 : 0;
  const uint16_t s16 = static_cast<uint16_t>(scale_words[half] >> shift);
  const uint16_t b16 = static_cast<uint16_t>(scale_words[2 + half] >> shift);
  const T s = *reinterpret_cast<const T*>(&s16);
  const T b = *reinterpret_cast<const T*>(&b16);
  return {duplicate16(s), duplicate16(b), to_float(s), to_float(b)};
}

// Values 2t and 2t + 1 (t = lane % 4) of 16-value slice `slice` of one raw
// row, dequantized to a pair of T.
template <typename T, int bits>
__device__ __forceinline__ uint32_t dequantize_fragment_pair(
    const uint32_t* row,
    int slice,
    int second_eight,
    int t,
    const RowAffine<T>& f) {
  if constexpr (bits == 4) {
    // Byte t of word 2 slice + second_eight: its low nibble at bits 0-3 and
    // its high nibble (from the word shifted by 4) at bits 16-19.
    const uint32_t word = row[2 * slice + second_eight];
    return dequantize_nibble_pair<T>(
        __byte_perm(word, word >> 4, t | ((4 + t) << 8)), f.scale2, f.bias2);
  } else {
    // Bytes 2 (t % 2) and the next of word 4 slice + 2 second_eight + t / 2.
    const uint32_t word = row[4 * slice + 2 * second_eight + t / 2];
    const int b0 = 2 * (t % 2);
    if constexpr (std::is_same_v<T, __half>) {
      // Each byte below a magic byte 0x64: float16 1024 + q.
      return dequantize_biased_pair<T>(
          __byte_perm(
              word, kPairMagic<T>, b0 | (5 << 4) | ((b0 + 1) << 8) | (7 << 12)),
          f.scale2,
          f.bias2);
    } else {
      // bfloat16's 8 significant bits cannot hold 2^8 + q: through float32.
      return pack2<T>(
          fmaf(f.scale, byte_to_float(word, b0), f.bias),
          fmaf(f.scale, byte_to_float(word, b0 + 1), f.bias));
    }
  }
}

template <typename T, int bits, WgmmaTile tile>
__global__ void __launch_bounds__(kWgmmaThreads, 1)
    wgmma_affine_gemm(const MatmulArgs a) {
#if MLX_QMM_WGMMA
  static_assert(wgmma_affine_bits(bits));
  constexpr int BW = wgmma_w_rows(tile, bits);
  constexpr int BX = wgmma_x_rows(tile, bits);
  constexpr int BK = kWgmmaBlockK;
  constexpr int kStages = wgmma_stages(tile, bits);
  constexpr int kXTileBytes = BX * BK * 2;
  constexpr int kStageBytes = wgmma_stage_bytes(tile, bits);
  constexpr int kProducers = kWgmmaProducerThreads;
  constexpr int kRawWords = BK * bits / 32;
  constexpr int kSlotWords = wgmma_raw_slot_words(bits);
  static_assert(BW == kProducers, "one raw row a producer thread");

  extern __shared__ unsigned char shared_bytes[];
  const auto ring = make_stage_ring<kStages, kStageBytes>(
      shared_bytes, kProducers, kWgmmaConsumerThreads);
  const int tid = threadIdx.x;
  // The raw rows of a stage, after its x tile: [row][kSlotWords].
  auto raw_rows = [&](int stage) {
    return reinterpret_cast<uint32_t*>(ring.stage(stage) + kXTileBytes);
  };

  // x tiles along blockIdx.x: the blocks of one wave share a few w tiles
  // and all of x, which stays in L2, so w is read from DRAM about once.
  const int m0 = blockIdx.x * BX;
  const int n0 = blockIdx.y * BW;
  // This block's K steps: all of them, or its share of a split; `step`
  // below counts from step_begin.
  const int step_begin = blockIdx.z * a.steps_per_split;
  const int k_steps = min((a.k + BK - 1) / BK - step_begin, a.steps_per_split);
  const int groups = a.k >> a.group_size_log2;
  // The group of the value 32 * half of a step.
  auto group_of = [&](int step, int half) {
    return ((step_begin + step) * BK + half * 32) >> a.group_size_log2;
  };

  if (tid < kProducers) {
    // Set up once: the x tile's copies, this thread's raw row (n) and the
    // first of its scales and biases; the loop adds each step's offset.
    const SwizzledTileCopy<BX, kProducers, T> x_copy(
        static_cast<const T*>(a.x), m0, a.m, a.k, tid);
    const int n = n0 + tid;
    const bool row_valid = n < a.n;
    const int row_words = a.k / 32 * bits;
    const uint32_t* w_row = static_cast<const uint32_t*>(a.w) +
        static_cast<int64_t>(row_valid ? n : n0) * row_words;
    const int64_t scale_count = static_cast<int64_t>(a.n) * groups;
    const int64_t row_first_scale = static_cast<int64_t>(n) * groups;
    const char* affine[2] = {
        static_cast<const char*>(a.scales), static_cast<const char*>(a.biases)};
    const uint32_t first_slot = shared_address(raw_rows(0) + tid * kSlotWords);
    const uint32_t first_stage = shared_address(ring.stage(0));
    for (int j = 0; j < k_steps; ++j) {
      const int stage = j % kStages;
      if (j >= kStages) {
        barrier_wait(&ring.empty[stage], ((j / kStages) + 1) & 1);
      }
      const int k0 = (step_begin + j) * BK;
      x_copy.copy(first_stage + stage * kStageBytes, k0, a.k);
      // The raw row: whole 16-byte copies, since K is a multiple of 32.
      const uint32_t slot = first_slot + stage * kStageBytes;
      const int first_word = (step_begin + j) * kRawWords;
#pragma unroll
      for (int v = 0; v < kRawWords / 4; ++v) {
        const int word = first_word + 4 * v;
        const bool valid = row_valid && word < row_words;
        copy_async<16>(
            slot + 16 * v, w_row + (valid ? word : 0), valid ? 16 : 0);
      }
#pragma unroll
      for (int half = 0; half < 2; ++half) {
        const int g = group_of(j, half);
        const bool valid = row_valid && g < groups;
        const int64_t e = row_first_scale + g;
        // The word from the even index e & ~1; only its first element
        // exists when that is the array's last.
        const int bytes = !valid ? 0 : ((e | 1) < scale_count ? 4 : 2);
        const int64_t word_byte = valid ? (e & ~int64_t{1}) * 2 : 0;
#pragma unroll
        for (int which = 0; which < 2; ++which) {
          copy_async<4>(
              slot + 4 * (kRawWords + 2 * which + half),
              affine[which] + word_byte,
              bytes);
        }
      }
      copy_async_arrive(&ring.full[stage]);
    }
  } else {
    const int ct = tid - kProducers;
    const int group = ct / 128;
    const int warp = (ct % 128) / 32;
    const int lane = ct % 32;
    const int t = lane % 4;
    // This thread's two rows of the w tile (A fragment rows).
    const int r0 = 64 * group + 16 * warp + lane / 4;
    const int64_t e0 = static_cast<int64_t>(n0 + r0) * groups;
    const int64_t e1 = e0 + 8 * static_cast<int64_t>(groups);

    float acc[BX / 2];
#pragma unroll
    for (int i = 0; i < BX / 2; ++i) {
      acc[i] = 0.0f;
    }
    uint32_t fragments[2][4];
    for (int step = 0; step < k_steps; ++step) {
      const int stage = step % kStages;
      barrier_wait(&ring.full[stage], (step / kStages) & 1);
      // The x tile was written through the generic proxy.
      fence_async_shared();
      const uint64_t db = swizzled_tile_descriptor(ring.stage(stage));
      const uint32_t* row0 = raw_rows(stage) + r0 * kSlotWords;
      const uint32_t* row1 = row0 + 8 * kSlotWords;
#pragma unroll
      for (int half = 0; half < 2; ++half) {
        const int g = group_of(step, half);
        const RowAffine<T> f0 =
            row_affine<T>(row0 + kRawWords, half, (e0 + g) & 1);
        const RowAffine<T> f1 =
            row_affine<T>(row1 + kRawWords, half, (e1 + g) & 1);
#pragma unroll
        for (int s2 = 0; s2 < 2; ++s2) {
          const int slice = 2 * half + s2;
          uint32_t(&frag)[4] = fragments[slice % 2];
          frag[0] = dequantize_fragment_pair<T, bits>(row0, slice, 0, t, f0);
          frag[1] = dequantize_fragment_pair<T, bits>(row1, slice, 0, t, f1);
          frag[2] = dequantize_fragment_pair<T, bits>(row0, slice, 1, t, f0);
          frag[3] = dequantize_fragment_pair<T, bits>(row1, slice, 1, t, f1);
          wgmma_fence();
          wgmma_64xNx16_registers<T, BX>(
              acc, frag, db + slice * kDescriptorStepK16, 1);
          wgmma_commit();
          // The product before this one is done: its fragment registers
          // are free, and after a step's first product, so is the previous
          // step's stage.
          wgmma_wait<1>();
          wgmma_keep_operand(fragments[(slice + 1) % 2]);
          if (slice == 0 && step > 0) {
            barrier_arrive(&ring.empty[(step - 1) % kStages]);
          }
        }
      }
    }
    wgmma_wait<0>();
    wgmma_keep_operand(fragments[1]);

    // Accumulator d[4j + 2h + e] is w row r0 + 8h and x row 8j + 2t + e of
    // the tile: out[m][n] with m the x row.
    const T* bias = static_cast<const T*>(a.bias);
    T* out = static_cast<T*>(a.out);
    // A K split's share: float32, no bias (split_sum.cuh adds it).
    float* partials = a.partials
        ? a.partials + blockIdx.z * static_cast<int64_t>(a.m) * a.n
        : nullptr;
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int n = n0 + r0 + 8 * h;
      if (n >= a.n) {
        continue;
      }
      const float b = bias && !partials ? to_float(bias[n]) : 0.0f;
#pragma unroll
      for (int j = 0; j < BX / 8; ++j) {
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          const int m = m0 + 8 * j + 2 * t + e;
          if (m >= a.m) {
            continue;
          }
          const int64_t i = static_cast<int64_t>(m) * a.n + n;
          if (partials) {
            partials[i] = acc[4 * j + 2 * h + e];
          } else {
            out[i] = from_float<T>(acc[4 * j + 2 * h + e] + b);
          }
        }
      }
    }
  }
#endif
}

} // namespace mlx_qmm::cuda
