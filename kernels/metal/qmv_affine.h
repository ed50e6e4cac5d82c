// Copyright © 2026 mlx-qmm contributors.
//
// Affine quantized matrix-vector product for small M (decode):
//   y[m, n] = sum_k x[m, k] * (scale[n, g] * q[n, k] + bias[n, g]) + b[n]
// with w packed along K ([N, K * bits / 32], csrc/quantized_format.h).
//
// Layout of the work. Threadgroup (i, m) computes row m of y, columns
// [i * kRowsPerThreadgroup, (i + 1) * kRowsPerThreadgroup); SIMD group s
// owns kRowsPerSimdgroup of them. K is walked in blocks of
// kGroupsPerBlock * group_size values:
//   1. the threadgroup copies the block of x into threadgroup memory as
//      float (x leaves device memory once per threadgroup);
//   2. lane l of every SIMD group takes group l of the block, computes
//      sum(x) over it once, and for each of its rows reads the group's
//      bits * group_size / 32 packed words (consecutive lanes read
//      consecutive words: coalesced, and 16 bytes or more per lane for 4
//      bits and up), its scale and its bias, each exactly once, and adds
//        scale * sum(q * x) + bias * sum(x)
//      to that row's partial sum, q unpacked in registers.
// At the end simd_sum combines the lanes' partial sums and lane 0 writes
// each row with the bias added. Rows past N and lanes past the end of a
// short last block skip the work but still reach every barrier and
// simd_sum, which all threads must.

#pragma once

#include <metal_stdlib>

#include "kernels/metal/affine_block.h"
#include "kernels/metal/qmv_affine_params.h"

namespace qmm {
namespace qmv_affine {

// sum over one 32-value block of q * x.
template <int bits>
METAL_FUNC float dot_block(
    const device uint32_t* words,
    const threadgroup float* x) {
  const PackedBlock<bits> q(words);
  float sum = 0.0f;
  for (int i = 0; i < 32; ++i) {
    sum += float(q[i]) * x[i];
  }
  return sum;
}

template <typename T, int group_size, int bits>
METAL_FUNC void qmv_affine(
    const device T* x,
    const device uint32_t* w,
    const device T* scales,
    const device T* biases,
    const device T* bias,
    device T* y,
    const int K,
    const int N,
    const bool has_bias,
    threadgroup float* x_block,
    const uint3 threadgroup_id,
    const uint thread_index,
    const uint simd_group,
    const uint simd_lane) {
  constexpr int kBlock = kGroupsPerBlock * group_size;
  constexpr int kWordsPerGroup = bits * group_size / 32;
  constexpr int kThreads = kSimdgroups * kSimdWidth;
  const int m = threadgroup_id.y;
  const int first_row =
      threadgroup_id.x * kRowsPerThreadgroup + simd_group * kRowsPerSimdgroup;
  const int groups_per_row = K / group_size;
  const int words_per_row = K * bits / 32;
  x += int64_t(m) * K;

  float sums[kRowsPerSimdgroup] = {0.0f};
  for (int block = 0; block < K; block += kBlock) {
    const int block_size = metal::min(kBlock, K - block);
    metal::threadgroup_barrier(metal::mem_flags::mem_threadgroup);
    for (int i = thread_index; i < block_size; i += kThreads) {
      x_block[i] = float(x[block + i]);
    }
    metal::threadgroup_barrier(metal::mem_flags::mem_threadgroup);

    const int group = block / group_size + simd_lane;
    if (int(simd_lane) * group_size < block_size) {
      const threadgroup float* xg = x_block + simd_lane * group_size;
      float x_sum = 0.0f;
      for (int i = 0; i < group_size; ++i) {
        x_sum += xg[i];
      }
      for (int r = 0; r < kRowsPerSimdgroup; ++r) {
        const int n = first_row + r;
        if (n >= N) {
          break;
        }
        const device uint32_t* words =
            w + int64_t(n) * words_per_row + group * kWordsPerGroup;
        float q_dot_x = 0.0f;
        for (int b = 0; b < group_size / 32; ++b) {
          q_dot_x += dot_block<bits>(words + b * bits, xg + b * 32);
        }
        const int64_t g = int64_t(n) * groups_per_row + group;
        sums[r] += float(scales[g]) * q_dot_x + float(biases[g]) * x_sum;
      }
    }
  }

  for (int r = 0; r < kRowsPerSimdgroup; ++r) {
    const float total = metal::simd_sum(sums[r]);
    const int n = first_row + r;
    if (simd_lane == 0 && n < N) {
      y[int64_t(m) * N + n] = T(has_bias ? total + float(bias[n]) : total);
    }
  }
}

} // namespace qmv_affine
} // namespace qmm
