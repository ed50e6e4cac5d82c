// Copyright © 2026 mlx-qmm contributors.
//
// The warpgroup GEMM (sm_90a; float16 / bfloat16, transposed weights
// w [N, K]): out = x @ W^T (+ bias) with W dense or affine quantized, on
// wgmma. Tiles, stages and the register split in wgmma_tiles.h; the
// instructions in wgmma.cuh.
//
// Why producer warpgroups: wgmma runs asynchronously and reads both
// operands from shared memory, so the tensor cores only stay busy if the
// next stage is ready when a product is issued. The tensor-core GEMM of
// tensor_gemm.cuh has every warp copy, dequantize, synchronise and then
// multiply, so its products wait on each step's dequantization; here the
// producers copy and dequantize ahead while the consumers multiply, and
// the two sides meet only at the mbarriers of a stage: full[s] (stage s is
// written) and empty[s] (the consumers' 256 threads are done reading it).
//
// Dense producer, per K step j: wait empty[j % stages] (the consumers are
// done with step j - stages), cp.async the x and w tiles of step j into the
// swizzled stage and arrive on full through the copies themselves
// (cp.async.mbarrier.arrive: the producer never waits for its copies, so
// all stages can be in flight).
// Quantized producer (each thread one or two rows of w), per K step j:
//   1. wait for the raw slot of step j (copied kWgmmaRawStages - 1 steps
//      earlier), dequantize its row into the stage (w_hat = s q + b,
//      rounded once, as mx.dequantize does), fence it to the async proxy and
//      arrive full;
//   2. wait empty for step j - 1 and cp.async the x tile of step
//      j + stages - 1 into its stage, arriving through the copies;
//   3. cp.async the raw row, scales and biases of step
//      j + kWgmmaRawStages - 1 into their slot.
// Step 1 comes first because a consumer hands a stage back only once the
// products of the next step are issued: the release of step j - 1 needs
// step j dequantized.
// Consumer warpgroup g, per K step: wait full, fence, four wgmma
// 64 x block_n x 16 over the stage, commit, wait for the previous step's
// products and arrive empty on its stage. At the end each thread stores
// its accumulators (rows 64 g + ... of the tile) with the bias.
//
// Edges: rows of x past M, rows of w past N and values past K are zero
// (zero-filled copies; zero scales and biases past N and past the last
// group), so partial tiles need no other branch than the epilogue's store
// guard. K must be a multiple of 8 and every operand 16-byte aligned (the
// launch plan checks).

#pragma once

#include "kernels/cuda/affine_unpack.cuh"
#include "kernels/cuda/float_types.cuh"
#include "kernels/cuda/mma.cuh"
#include "kernels/cuda/wgmma.cuh"
#include "kernels/cuda/wgmma_tiles.h"

namespace mlx_qmm::cuda {

// A 16-bit value twice in one register (the scale or bias of a pair).
template <typename T>
__device__ __forceinline__ uint32_t duplicate16(T v) {
  const uint32_t bits = *reinterpret_cast<const uint16_t*>(&v);
  return bits | (bits << 16);
}

// Eight values of one row (one 16-byte chunk of the swizzled w tile) from
// the word(s) of their bit stream, as w_hat = s q + b in T.
template <typename T, int bits>
__device__ __forceinline__ uint4
dequantize_chunk(const uint32_t* row_words, int chunk, T s, T b) {
  uint4 v;
  if constexpr (bits == 4) {
    // Values 0-7 are the nibbles of one word. A byte permute puts value
    // 2i at bits 0-3 and value 2i + 1 at bits 16-19 of a register, the
    // layout dequantize_nibble_pair takes (three instructions a pair).
    const uint32_t word = row_words[chunk];
    const uint32_t shifted = word >> 4;
    const uint32_t s2 = duplicate16(s);
    const uint32_t b2 = duplicate16(b);
    v.x = dequantize_nibble_pair<T>(__byte_perm(word, shifted, 0x0400), s2, b2);
    v.y = dequantize_nibble_pair<T>(__byte_perm(word, shifted, 0x0501), s2, b2);
    v.z = dequantize_nibble_pair<T>(__byte_perm(word, shifted, 0x0602), s2, b2);
    v.w = dequantize_nibble_pair<T>(__byte_perm(word, shifted, 0x0703), s2, b2);
  } else if constexpr (bits == 8 && std::is_same_v<T, __half>) {
    // Bytes 2i and 2i + 1 become the low bytes of two float16 2^10 + q
    // (exact for q < 1024); one packed subtraction and one packed FMA.
    const uint32_t lo = row_words[2 * chunk];
    const uint32_t hi = row_words[2 * chunk + 1];
    const uint32_t s2 = duplicate16(s);
    const uint32_t b2 = duplicate16(b);
    constexpr uint32_t kMagic = 0x64006400u; // float16 1024, twice
    auto pair = [&](uint32_t biased) {
      const __half2 q = __hsub2(
          *reinterpret_cast<const __half2*>(&biased),
          *reinterpret_cast<const __half2*>(&kMagic));
      const __half2 w = __hfma2(
          q,
          *reinterpret_cast<const __half2*>(&s2),
          *reinterpret_cast<const __half2*>(&b2));
      return *reinterpret_cast<const uint32_t*>(&w);
    };
    v.x = pair(__byte_perm(lo, kMagic, 0x7150));
    v.y = pair(__byte_perm(lo, kMagic, 0x7352));
    v.z = pair(__byte_perm(hi, kMagic, 0x7150));
    v.w = pair(__byte_perm(hi, kMagic, 0x7352));
  } else {
    // bfloat16 holds integers exactly only below 2^8 (and 8-bit q - 2^7
    // would round the folded bias), so the other cases go through float32.
    uint64_t window;
    if constexpr (wgmma_whole_word_octets(bits)) {
      window = row_words[chunk * bits / 4];
      if constexpr (bits == 8) {
        window |= static_cast<uint64_t>(row_words[2 * chunk + 1]) << 32;
      }
    } else {
      window = row_octet_window<bits>(row_words, chunk);
    }
    float q[8];
    unpack_octet<bits>(window, q);
    const float sf = to_float(s);
    const float bf = to_float(b);
    v.x = pack2<T>(fmaf(sf, q[0], bf), fmaf(sf, q[1], bf));
    v.y = pack2<T>(fmaf(sf, q[2], bf), fmaf(sf, q[3], bf));
    v.z = pack2<T>(fmaf(sf, q[4], bf), fmaf(sf, q[5], bf));
    v.w = pack2<T>(fmaf(sf, q[6], bf), fmaf(sf, q[7], bf));
  }
  return v;
}

// bits == 0: dense weights.
template <typename T, int bits, WgmmaTile tile>
__global__ void __launch_bounds__(kWgmmaThreads, 1)
    wgmma_gemm(const MatmulArgs a) {
#if MLX_QMM_WGMMA
  constexpr int BM = kWgmmaBlockM;
  constexpr int BN = wgmma_block_n(tile);
  constexpr int BK = kWgmmaBlockK;
  constexpr int kStages = wgmma_stages(tile, bits);
  constexpr bool kQuantized = bits != 0;
  constexpr int kChunks = BK / 8; // 16-byte chunks of a tile row
  constexpr int kXTileBytes = BM * BK * 2;
  constexpr int kStageBytes = wgmma_stage_bytes(tile);
  constexpr int kProducers = kWgmmaProducerThreads;
  // Quantized: rows of the w tile each producer thread copies and
  // dequantizes (rows tid, tid + 128), reading only raw words it copied.
  constexpr int kRowsPerProducer = BN / kProducers;
  constexpr int RW = kQuantized ? wgmma_raw_row_words(bits) : 0;
  constexpr int kSlotWords = kQuantized ? wgmma_raw_slot_words(bits) : 0;
  static_assert(kStages >= 3 && (BM * kChunks) % kProducers == 0);

  extern __shared__ unsigned char shared_bytes[];
  // The swizzle is a function of address bits 4-9: tiles start on 1 KB.
  const uint32_t misalignment = shared_address(shared_bytes) % 1024;
  unsigned char* stages =
      shared_bytes + (misalignment ? 1024 - misalignment : 0);
  // Quantized: [raw slot][row][kSlotWords].
  uint32_t* raw_slots =
      reinterpret_cast<uint32_t*>(stages + kStages * kStageBytes);
  uint64_t* full = reinterpret_cast<uint64_t*>(
      stages + kStages * kStageBytes + wgmma_raw_ring_bytes(tile, bits));
  uint64_t* empty = full + kStages;

  const int tid = threadIdx.x;
  if (tid == 0) {
#pragma unroll
    for (int s = 0; s < kStages; ++s) {
      // Each producer arrives through its copies, and quantized once more
      // when its row is dequantized.
      barrier_init(&full[s], kQuantized ? 2 * kProducers : kProducers);
      barrier_init(&empty[s], kWgmmaConsumerThreads);
    }
  }
  __syncthreads();

  // x tiles along blockIdx.x: the blocks of one wave share a few w tiles
  // and all of x, which stays in L2, so w is read from DRAM about once.
  const int m0 = blockIdx.x * BM;
  const int n0 = blockIdx.y * BN;
  const int k_steps = (a.k + BK - 1) / BK;

  if (tid < kProducers) {
    const T* x = static_cast<const T*>(a.x);

    // Waits for the stage of `step` to be free (its previous use, step -
    // kStages, read), then copies x's tile into it; the copies arrive on
    // full themselves.
    auto issue_x = [&](int step) {
      const int stage = step % kStages;
      if (step >= kStages) {
        barrier_wait(&empty[stage], ((step / kStages) + 1) & 1);
      }
      unsigned char* xs = stages + stage * kStageBytes;
      const int k0 = step * BK;
#pragma unroll
      for (int u = 0; u < BM * kChunks / kProducers; ++u) {
        const int i = tid + u * kProducers;
        const int r = i / kChunks;
        const int c = i % kChunks;
        const bool valid = m0 + r < a.m && k0 + 8 * c < a.k;
        copy_async<16>(
            xs + swizzled_chunk_offset(r, c),
            valid ? x + static_cast<int64_t>(m0 + r) * a.k + k0 + 8 * c : x,
            valid);
      }
      if constexpr (!kQuantized) {
        const T* w = static_cast<const T*>(a.w);
        unsigned char* ws = xs + kXTileBytes;
#pragma unroll
        for (int u = 0; u < BN * kChunks / kProducers; ++u) {
          const int i = tid + u * kProducers;
          const int r = i / kChunks;
          const int c = i % kChunks;
          const bool valid = n0 + r < a.n && k0 + 8 * c < a.k;
          copy_async<16>(
              ws + swizzled_chunk_offset(r, c),
              valid ? w + static_cast<int64_t>(n0 + r) * a.k + k0 + 8 * c : w,
              valid);
        }
      }
      copy_async_arrive(&full[stage]);
    };

    if constexpr (!kQuantized) {
      for (int j = 0; j < k_steps; ++j) {
        issue_x(j);
      }
    } else {
      const int groups = a.k >> a.group_size_log2;
      const int64_t scale_count = static_cast<int64_t>(a.n) * groups;
      // The index in scales (biases) of the group of row n holding value
      // 32 * half of `step`.
      auto scale_index = [&](int n, int step, int half) {
        return static_cast<int64_t>(n) * groups +
            ((step * BK + half * 32) >> a.group_size_log2);
      };
      auto slot_of = [&](int step, int r) {
        return raw_slots + ((step % kWgmmaRawStages) * BN + r) * kSlotWords;
      };

      // This thread's raw rows of `step`, then their scale and bias words,
      // into slot step % kWgmmaRawStages.
      auto issue_raw = [&](int step) {
        // 4- and 8-bit rows are whole 16-byte copies (K is a multiple of
        // 32); other widths are only 4-byte aligned.
        constexpr int kCopyWords = wgmma_whole_word_octets(bits) ? 4 : 1;
        constexpr int kCopies = BK * bits / 32 / kCopyWords;
        const uint32_t* w = static_cast<const uint32_t*>(a.w);
        const int64_t row_words = static_cast<int64_t>(a.k) * bits / 32;
        const int64_t first_word = static_cast<int64_t>(step) * BK * bits / 32;
        const char* sb[2] = {
            static_cast<const char*>(a.scales),
            static_cast<const char*>(a.biases)};
#pragma unroll
        for (int rr = 0; rr < kRowsPerProducer; ++rr) {
          const int r = tid + rr * kProducers;
          const int n = n0 + r;
          uint32_t* slot = slot_of(step, r);
          const uint32_t* src = w + static_cast<int64_t>(n) * row_words;
#pragma unroll
          for (int v = 0; v < kCopies; ++v) {
            const int64_t word = first_word + v * kCopyWords;
            const bool valid = n < a.n && word < row_words;
            copy_async<kCopyWords * 4>(
                slot + v * kCopyWords, valid ? src + word : w, valid);
          }
#pragma unroll
          for (int half = 0; half < 2; ++half) {
            const int64_t e = scale_index(n, step, half);
            const bool valid = n < a.n &&
                ((step * BK + half * 32) >> a.group_size_log2) < groups;
            // The word from the even index e & ~1; only its first element
            // exists when that is the array's last.
            const int bytes = !valid ? 0 : ((e | 1) < scale_count ? 4 : 2);
#pragma unroll
            for (int which = 0; which < 2; ++which) {
              copy_async_word(
                  slot + RW + 2 * which + half,
                  valid ? sb[which] + (e & ~int64_t{1}) * 2 : sb[which],
                  bytes);
            }
          }
        }
      };

      // Dequantizes this thread's rows of `step` into its stage.
      auto dequantize_rows = [&](int step) {
        unsigned char* ws =
            stages + (step % kStages) * kStageBytes + kXTileBytes;
#pragma unroll
        for (int rr = 0; rr < kRowsPerProducer; ++rr) {
          const int r = tid + rr * kProducers;
          const uint32_t* slot = slot_of(step, r);
          T sb[2][2]; // [half][scale, bias]
#pragma unroll
          for (int half = 0; half < 2; ++half) {
            const int shift =
                16 * static_cast<int>(scale_index(n0 + r, step, half) & 1);
#pragma unroll
            for (int which = 0; which < 2; ++which) {
              const uint16_t bits16 =
                  static_cast<uint16_t>(slot[RW + 2 * which + half] >> shift);
              sb[half][which] = *reinterpret_cast<const T*>(&bits16);
            }
          }
#pragma unroll
          for (int c = 0; c < kChunks; ++c) {
            const int half = c / (kChunks / 2);
            *reinterpret_cast<uint4*>(ws + swizzled_chunk_offset(r, c)) =
                dequantize_chunk<T, bits>(slot, c, sb[half][0], sb[half][1]);
          }
        }
      };

      // One commit group per raw step (the prologue's, then one an
      // iteration), so that at iteration j waiting for all but the last
      // kWgmmaRawStages - 2 groups means step j's raw slot has landed.
      for (int j = 0; j < kWgmmaRawStages - 1; ++j) {
        if (j < k_steps) {
          issue_raw(j);
        }
        copy_async_commit();
      }
      for (int j = 0; j < kStages - 1 && j < k_steps; ++j) {
        issue_x(j);
      }
      for (int j = 0; j < k_steps; ++j) {
        copy_async_wait<kWgmmaRawStages - 2>();
        dequantize_rows(j);
        fence_async_shared();
        barrier_arrive(&full[j % kStages]);
        if (j + kStages - 1 < k_steps) {
          issue_x(j + kStages - 1);
        }
        if (j + kWgmmaRawStages - 1 < k_steps) {
          issue_raw(j + kWgmmaRawStages - 1);
        }
        copy_async_commit();
      }
    }
  } else {
    const int ct = tid - kProducers;
    const int group = ct / 128;
    const int warp = (ct % 128) / 32;
    const int lane = ct % 32;

    float acc[BN / 2];
#pragma unroll
    for (int i = 0; i < BN / 2; ++i) {
      acc[i] = 0.0f;
    }
    for (int step = 0; step < k_steps; ++step) {
      const int stage = step % kStages;
      barrier_wait(&full[stage], (step / kStages) & 1);
      // The copies were written through the generic proxy.
      fence_async_shared();
      const unsigned char* xs =
          stages + stage * kStageBytes + group * 64 * kSwizzleRowBytes;
      const uint64_t da = swizzled_tile_descriptor(xs);
      const uint64_t db =
          swizzled_tile_descriptor(stages + stage * kStageBytes + kXTileBytes);
      wgmma_fence();
#pragma unroll
      for (int kk = 0; kk < BK / 16; ++kk) {
        wgmma_64xNx16<T, BN>(
            acc, da + kk * kDescriptorStepK16, db + kk * kDescriptorStepK16, 1);
      }
      wgmma_commit();
      // The products of the previous step are done: its stage is free.
      wgmma_wait<1>();
      if (step > 0) {
        barrier_arrive(&empty[(step - 1) % kStages]);
      }
    }
    wgmma_wait<0>();

    const T* bias = static_cast<const T*>(a.bias);
    T* out = static_cast<T*>(a.out);
    const bool pairs_aligned = a.n % 2 == 0;
#pragma unroll
    for (int j = 0; j < BN / 8; ++j) {
      const int n = n0 + 8 * j + 2 * (lane % 4);
      if (n >= a.n) {
        continue;
      }
      const bool second = n + 1 < a.n;
      float b0 = 0.0f;
      float b1 = 0.0f;
      if (bias) {
        b0 = to_float(bias[n]);
        b1 = second ? to_float(bias[n + 1]) : 0.0f;
      }
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int m = m0 + 64 * group + 16 * warp + lane / 4 + 8 * h;
        if (m < a.m) {
          T* p = out + static_cast<int64_t>(m) * a.n + n;
          const float v0 = acc[4 * j + 2 * h] + b0;
          const float v1 = acc[4 * j + 2 * h + 1] + b1;
          if (pairs_aligned) {
            *reinterpret_cast<uint32_t*>(p) = pack2<T>(v0, v1);
          } else {
            store2(p, v0, v1, second);
          }
        }
      }
    }
  }
#endif
}

} // namespace mlx_qmm::cuda
