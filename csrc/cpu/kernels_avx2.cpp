// Copyright © 2026 mlx-qmm contributors.
//
// The AVX2 + FMA + F16C kernels (x86-64). CMake compiles this file alone with
// -mavx2 -mfma -mf16c; isa.cpp calls into it only after checking the CPU
// (__builtin_cpu_supports). Everything here lives in an anonymous namespace
// and uses no library templates (see kernels.h for why).
//
// Unpacking 8 quantized values into one vector of 8 float lanes: 8
// consecutive values of a row occupy exactly `bits` bytes starting at byte
// k * bits / 8 (k a multiple of 8), so one load of those bytes, broadcast to
// every lane, holds them all; lane l shifts right by l * bits and masks.
// Values of up to 4 bits fit a 32-bit lane at any shift; 5- and 6-bit values
// reach bit 48, so a byte shuffle first moves the two bytes that hold lane
// l's value into lane l; 8-bit values are plain byte widening.
//
// Matrix-vector products never materialise dequantized weights: per group
// they accumulate x * q with q the raw integer (as float), and apply the
// scale once per group and the bias through the group sums of x:
//   sum_k x_k (s q_k + b) = s * sum_k x_k q_k + b * sum_k x_k.
// That costs 4 vector operations per 8 weights (shift, mask, convert, FMA)
// and keeps the loop near the memory bandwidth on two cores.

#include "csrc/cpu/kernels.h"

#if defined(__x86_64__) || defined(_M_X64)

#include <immintrin.h>

#include <cstring>
#include <type_traits>
#include <utility>

namespace mlx_qmm::cpu {

namespace {

// ----------------------------- conversions -----------------------------

inline __m256 load_f16(const uint16_t* p) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}

inline __m256 load_bf16(const uint16_t* p) {
  const __m256i wide = _mm256_cvtepu16_epi32(
      _mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  return _mm256_castsi256_ps(_mm256_slli_epi32(wide, 16));
}

inline __m256 load_as_float(FloatType type, const void* src, int64_t i) {
  switch (type) {
    case FloatType::Float16:
      return load_f16(static_cast<const uint16_t*>(src) + i);
    case FloatType::BFloat16:
      return load_bf16(static_cast<const uint16_t*>(src) + i);
    default:
      return _mm256_loadu_ps(static_cast<const float*>(src) + i);
  }
}

// Round to nearest even, like MLX's float16 conversion.
inline void store_f16(uint16_t* p, __m256 v) {
  _mm_storeu_si128(
      reinterpret_cast<__m128i*>(p),
      _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}

// Round to nearest even and quiet NaN 0x7FC0, exactly as MLX's bfloat16.
inline void store_bf16(uint16_t* p, __m256 v) {
  const __m256i bits = _mm256_castps_si256(v);
  const __m256i odd =
      _mm256_and_si256(_mm256_srli_epi32(bits, 16), _mm256_set1_epi32(1));
  __m256i rounded = _mm256_srli_epi32(
      _mm256_add_epi32(_mm256_add_epi32(bits, _mm256_set1_epi32(0x7FFF)), odd),
      16);
  const __m256i nan = _mm256_castps_si256(_mm256_cmp_ps(v, v, _CMP_UNORD_Q));
  rounded = _mm256_blendv_epi8(rounded, _mm256_set1_epi32(0x7FC0), nan);
  // packus narrows within each 128-bit half; gather the two halves' results.
  const __m256i packed =
      _mm256_permute4x64_epi64(_mm256_packus_epi32(rounded, rounded), 0b1000);
  _mm_storeu_si128(
      reinterpret_cast<__m128i*>(p), _mm256_castsi256_si128(packed));
}

inline void store_as(FloatType type, void* dst, int64_t i, __m256 v) {
  switch (type) {
    case FloatType::Float16:
      return store_f16(static_cast<uint16_t*>(dst) + i, v);
    case FloatType::BFloat16:
      return store_bf16(static_cast<uint16_t*>(dst) + i, v);
    default:
      return _mm256_storeu_ps(static_cast<float*>(dst) + i, v);
  }
}

// A tail of fewer than 8 elements goes through a zero-padded 8-lane buffer
// so that it shares the vector path (and its rounding).
void to_float(
    FloatType type,
    const void* src,
    int64_t src_stride,
    int rows,
    int cols,
    float* dst,
    int64_t dst_stride) {
  const int size = float_type_size(type);
  for (int r = 0; r < rows; ++r) {
    const char* row = static_cast<const char*>(src) + r * src_stride * size;
    float* out = dst + r * dst_stride;
    int i = 0;
    for (; i + 8 <= cols; i += 8) {
      _mm256_storeu_ps(out + i, load_as_float(type, row, i));
    }
    if (i < cols) {
      alignas(32) char tail[32] = {};
      std::memcpy(tail, row + i * size, (cols - i) * size);
      alignas(32) float converted[8];
      _mm256_store_ps(converted, load_as_float(type, tail, 0));
      std::memcpy(out + i, converted, (cols - i) * sizeof(float));
    }
  }
}

void from_float(
    FloatType type,
    const float* acc,
    const float* bias,
    void* dst,
    int n) {
  const int size = float_type_size(type);
  int i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256 v = _mm256_loadu_ps(acc + i);
    if (bias) {
      v = _mm256_add_ps(v, _mm256_loadu_ps(bias + i));
    }
    store_as(type, dst, i, v);
  }
  if (i < n) {
    alignas(32) float sum[8] = {};
    for (int j = i; j < n; ++j) {
      sum[j - i] = acc[j] + (bias ? bias[j] : 0.0f);
    }
    alignas(32) char converted[32];
    store_as(type, converted, 0, _mm256_load_ps(sum));
    std::memcpy(static_cast<char*>(dst) + i * size, converted, (n - i) * size);
  }
}

// ----------------------------- unpacking -----------------------------

// The first `Bytes` bytes at p, little-endian, in whole loads (a memcpy of
// an odd size can become a library call).
template <int Bytes>
inline uint64_t load_le(const uint8_t* p) {
  static_assert(Bytes >= 1 && Bytes <= 8);
  if constexpr (Bytes == 1) {
    return p[0];
  } else if constexpr (Bytes == 2 || Bytes == 4 || Bytes == 8) {
    using Word = std::conditional_t<
        Bytes == 2,
        uint16_t,
        std::conditional_t<Bytes == 4, uint32_t, uint64_t>>;
    Word w;
    std::memcpy(&w, p, Bytes);
    return w;
  } else {
    constexpr int kLow = Bytes > 4 ? 4 : 2;
    return load_le<kLow>(p) | (load_le<Bytes - kLow>(p + kLow) << (8 * kLow));
  }
}

// The 8 values of a row starting at value k (a multiple of 8), whose
// `Bits` bytes start at `bytes`, as floats. Reads exactly those bytes: the
// last values of the last row may end a buffer.
template <int Bits>
inline __m256 unpack8(const uint8_t* bytes) {
  if constexpr (Bits == 8) {
    return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(
        _mm_loadl_epi64(reinterpret_cast<const __m128i*>(bytes))));
  } else if constexpr (Bits <= 4) {
    const uint32_t word = static_cast<uint32_t>(load_le<Bits>(bytes));
    const __m256i shifts = _mm256_setr_epi32(
        0, Bits, 2 * Bits, 3 * Bits, 4 * Bits, 5 * Bits, 6 * Bits, 7 * Bits);
    const __m256i q = _mm256_and_si256(
        _mm256_srlv_epi32(_mm256_set1_epi32(static_cast<int>(word)), shifts),
        _mm256_set1_epi32((1 << Bits) - 1));
    return _mm256_cvtepi32_ps(q);
  } else {
    static_assert(Bits == 5 || Bits == 6);
    const uint64_t window = load_le<Bits>(bytes);
    // Lane l's value starts at bit l * Bits: its two bytes are l * Bits / 8
    // and the next (indices into each 128-bit half, which both hold the
    // broadcast window); -1 clears the lane's upper two bytes.
    constexpr auto lo = [](int l) { return static_cast<char>(l * Bits / 8); };
    constexpr auto hi = [](int l) {
      return static_cast<char>(l * Bits / 8 + 1);
    };
    const __m256i gather = _mm256_setr_epi8(
        lo(0),
        hi(0),
        -1,
        -1,
        lo(1),
        hi(1),
        -1,
        -1, //
        lo(2),
        hi(2),
        -1,
        -1,
        lo(3),
        hi(3),
        -1,
        -1, //
        lo(4),
        hi(4),
        -1,
        -1,
        lo(5),
        hi(5),
        -1,
        -1, //
        lo(6),
        hi(6),
        -1,
        -1,
        lo(7),
        hi(7),
        -1,
        -1);
    const __m256i shifts = _mm256_setr_epi32(
        0,
        Bits % 8,
        2 * Bits % 8,
        3 * Bits % 8,
        4 * Bits % 8,
        5 * Bits % 8,
        6 * Bits % 8,
        7 * Bits % 8);
    const __m256i spread = _mm256_shuffle_epi8(
        _mm256_set1_epi64x(static_cast<long long>(window)), gather);
    return _mm256_cvtepi32_ps(_mm256_and_si256(
        _mm256_srlv_epi32(spread, shifts), _mm256_set1_epi32((1 << Bits) - 1)));
  }
}

inline float horizontal_sum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// In-register transpose of 8 rows of 8 floats.
inline void transpose8x8(__m256 (&v)[8]) {
  __m256 t[8];
  for (int i = 0; i < 8; i += 2) {
    t[i] = _mm256_unpacklo_ps(v[i], v[i + 1]);
    t[i + 1] = _mm256_unpackhi_ps(v[i], v[i + 1]);
  }
  __m256 u[8];
  for (int i = 0; i < 8; i += 4) {
    u[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
    u[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xEE);
    u[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
    u[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
  }
  for (int i = 0; i < 4; ++i) {
    v[i] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x20);
    v[i + 4] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x31);
  }
}

inline float dot(const float* a, const float* b, int n) {
  __m256 acc = _mm256_setzero_ps();
  int i = 0;
  for (; i + 8 <= n; i += 8) {
    acc = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc);
  }
  float sum = horizontal_sum(acc);
  for (; i < n; ++i) {
    sum += a[i] * b[i];
  }
  return sum;
}

// ----------------------------- quantized GEMV -----------------------------
//
// A tile of Rows rows of x times Cols rows of w: the Rows * Cols group
// accumulators are independent FMA chains (their latency is hidden), and
// each x vector and each unpacked weight vector is reused Cols and Rows
// times. Two ways through a row:
//
//   natural (3, 5, 6 and 8 bits): unpack8, 8 consecutive values a vector,
//     x as it is; shift, mask, convert and FMA per 8 weights.
//   word-major (1, 2 and 4 bits): one 32-byte load holds 8 whole words and
//     lane l works on word l. Field f of every word (value l * per_word + f
//     of the block) is isolated by one AND with the field's mask, without
//     shifting it down: the lane holds q * 2^(f * Bits), exactly (at most 8
//     significant bits), and x, arranged once per GEMV (arrange_x), carries
//     the compensating factor 2^(-f * Bits), also exact (it only moves the
//     exponent; x below 2^-96 in magnitude would lose bits as a subnormal).
//     The top field is shifted down instead, since its AND would set the
//     sign bit. Mask, convert and FMA: one operation fewer per 8 weights,
//     on the ports the FMAs need. Within a block lane l belongs to group
//     (l * per_word) / group_size, so blocks wider than a group take one
//     scale per lane.

template <int Bits>
inline constexpr bool kWordMajor = Bits == 1 || Bits == 2 || Bits == 4;

template <int Bits>
inline constexpr int kPerWord = 32 / Bits;

// Values that one 32-byte load of 8 words holds.
template <int Bits>
inline constexpr int kBlockValues = 8 * kPerWord<Bits>;

template <int Bits>
void arrange_x(const float* x, int k, float* out) {
  static_assert(kWordMajor<Bits>);
  constexpr int per_word = kPerWord<Bits>;
  constexpr int block = kBlockValues<Bits>;
  const int blocks_end = k / block * block;
  for (int base = 0; base < blocks_end; base += block) {
    for (int f = 0; f < per_word; ++f) {
      const float factor =
          f + 1 < per_word ? 1.0f / static_cast<float>(1u << (f * Bits)) : 1.0f;
      for (int l = 0; l < 8; ++l) {
        out[base + f * 8 + l] = x[base + l * per_word + f] * factor;
      }
    }
  }
  for (int i = blocks_end; i < k; ++i) {
    out[i] = x[i];
  }
}

template <int Bits, int F>
inline __m256 word_field(__m256i words) {
  if constexpr (F + 1 == kPerWord<Bits>) {
    return _mm256_cvtepi32_ps(_mm256_srli_epi32(words, F * Bits));
  } else {
    constexpr uint32_t mask = ((1u << Bits) - 1u) << (F * Bits);
    return _mm256_cvtepi32_ps(
        _mm256_and_si256(words, _mm256_set1_epi32(static_cast<int>(mask))));
  }
}

// Weights stream from memory once, in short runs (a tile's rows, a few KiB
// each, then the next tile's): the hardware prefetchers lose time at every
// new run, and one core keeps few misses in flight. So while a tile works on
// bytes [p, p + bytes) of its rows, it asks for the same bytes of the next
// tile's rows, which start next_tile_bytes further (past the last tile the
// hints point past the weights; prefetches never fault).
inline void
prefetch_next_tile(const uint8_t* p, int64_t next_tile_bytes, int bytes) {
  for (int i = 0; i < bytes; i += 64) {
    _mm_prefetch(
        reinterpret_cast<const char*>(p + next_tile_bytes + i), _MM_HINT_T0);
  }
}

template <int Rows, int Cols>
struct GemvTile {
  const uint8_t* w[Cols];
  const float* scales[Cols];
  // From a weight row to the same place in the next tile's row: the loops
  // prefetch that far ahead (see prefetch_next_tile).
  int64_t next_tile_bytes;
  __m256 total[Rows][Cols];
  // Group accumulators; the word-major loop alternates fields between acc
  // and acc_odd, so that each FMA chain is half as long (a block's 8 fields
  // in one chain would make the loop wait on FMA latency).
  __m256 acc[Rows][Cols];
  __m256 acc_odd[Rows][Cols];

  GemvTile(const QuantizedGemvArgs& a, int j0)
      : next_tile_bytes(Cols * a.w_stride * 4) {
    for (int c = 0; c < Cols; ++c) {
      w[c] = reinterpret_cast<const uint8_t*>(a.w + (j0 + c) * a.w_stride);
      scales[c] = a.scales + (j0 + c) * a.sb_stride;
    }
    for (int r = 0; r < Rows; ++r) {
      for (int c = 0; c < Cols; ++c) {
        total[r][c] = _mm256_setzero_ps();
      }
    }
  }

  void clear_acc() {
    for (int r = 0; r < Rows; ++r) {
      for (int c = 0; c < Cols; ++c) {
        acc[r][c] = _mm256_setzero_ps();
        acc_odd[r][c] = _mm256_setzero_ps();
      }
    }
  }

  // total += acc * scale, scale per column of the tile.
  void apply_scales(const __m256 (&scale)[Cols]) {
    for (int r = 0; r < Rows; ++r) {
      for (int c = 0; c < Cols; ++c) {
        total[r][c] = _mm256_fmadd_ps(
            _mm256_add_ps(acc[r][c], acc_odd[r][c]), scale[c], total[r][c]);
      }
    }
  }

  // out = sum of total's lanes + biases . group sums of x.
  void store(const QuantizedGemvArgs& a, int j0) const {
    const int groups = a.k / a.group_size;
    for (int r = 0; r < Rows; ++r) {
      for (int c = 0; c < Cols; ++c) {
        const float bias_term =
            dot(a.biases + (j0 + c) * a.sb_stride,
                a.x_group_sums + r * a.sums_stride,
                groups);
        a.out[r * a.out_stride + j0 + c] =
            horizontal_sum(total[r][c]) + bias_term;
      }
    }
  }
};

// Groups covering values [begin, end) the natural way.
template <int Bits, int Rows, int Cols>
void natural_groups(
    const QuantizedGemvArgs& a,
    GemvTile<Rows, Cols>& t,
    int begin,
    int end) {
  // Pointers advance by whole chunks (8 values: 8 floats of x, `Bits`
  // bytes of each weight row), so no index arithmetic competes with the
  // vector work for the ALU ports.
  const float* x = a.x + begin;
  const uint8_t* w[Cols];
  for (int c = 0; c < Cols; ++c) {
    w[c] = t.w[c] + begin / 8 * Bits;
  }
  const int group_bytes = a.group_size / 8 * Bits;
  for (int v0 = begin; v0 < end; v0 += a.group_size) {
    for (int c = 0; c < Cols; ++c) {
      prefetch_next_tile(w[c], t.next_tile_bytes, group_bytes);
    }
    t.clear_acc();
    for (int i = 0; i < a.group_size; i += 8) {
      __m256 xv[Rows];
      for (int r = 0; r < Rows; ++r) {
        xv[r] = _mm256_loadu_ps(x + r * a.x_stride);
      }
      x += 8;
      for (int c = 0; c < Cols; ++c) {
        const __m256 q = unpack8<Bits>(w[c]);
        w[c] += Bits;
        for (int r = 0; r < Rows; ++r) {
          t.acc[r][c] = _mm256_fmadd_ps(xv[r], q, t.acc[r][c]);
        }
      }
    }
    __m256 scale[Cols];
    for (int c = 0; c < Cols; ++c) {
      scale[c] = _mm256_broadcast_ss(t.scales[c] + v0 / a.group_size);
    }
    t.apply_scales(scale);
  }
}

// Whole blocks covering values [0, end) the word-major way (x arranged).
template <int Bits, int Rows, int Cols>
void word_major_blocks(
    const QuantizedGemvArgs& a,
    GemvTile<Rows, Cols>& t,
    int end) {
  constexpr int block = kBlockValues<Bits>;
  const int group_size = a.group_size;
  // A segment shares one scale vector: a group, or a block of several.
  const int segment = group_size > block ? group_size : block;
  const int groups_per_block = block > group_size ? block / group_size : 1;
  __m256i lane_group = _mm256_setzero_si256();
  __m256i first_groups = _mm256_setzero_si256();
  if (groups_per_block > 1) {
    alignas(32) int lanes[8], loaded[8];
    for (int l = 0; l < 8; ++l) {
      lanes[l] = l * kPerWord<Bits> / group_size;
      loaded[l] = l < groups_per_block ? -1 : 0;
    }
    lane_group = _mm256_load_si256(reinterpret_cast<const __m256i*>(lanes));
    first_groups = _mm256_load_si256(reinterpret_cast<const __m256i*>(loaded));
  }
  const float* x = a.x;
  const uint8_t* w[Cols];
  for (int c = 0; c < Cols; ++c) {
    w[c] = t.w[c];
  }
  for (int v0 = 0; v0 < end; v0 += segment) {
    t.clear_acc();
    for (int v = v0; v < v0 + segment; v += block) {
      __m256i words[Cols];
      for (int c = 0; c < Cols; ++c) {
        prefetch_next_tile(w[c], t.next_tile_bytes, 32);
        words[c] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w[c]));
        w[c] += 32;
      }
      [&]<int... F>(std::integer_sequence<int, F...>) {
        (
            [&] {
              __m256 xv[Rows];
              for (int r = 0; r < Rows; ++r) {
                xv[r] = _mm256_loadu_ps(x + r * a.x_stride + F * 8);
              }
              for (int c = 0; c < Cols; ++c) {
                const __m256 q = word_field<Bits, F>(words[c]);
                for (int r = 0; r < Rows; ++r) {
                  __m256& sum = F % 2 ? t.acc_odd[r][c] : t.acc[r][c];
                  sum = _mm256_fmadd_ps(xv[r], q, sum);
                }
              }
            }(),
            ...);
      }(std::make_integer_sequence<int, kPerWord<Bits>>{});
      x += block;
    }
    __m256 scale[Cols];
    for (int c = 0; c < Cols; ++c) {
      const float* s = t.scales[c] + v0 / group_size;
      scale[c] = groups_per_block > 1
          ? _mm256_permutevar8x32_ps(
                _mm256_maskload_ps(s, first_groups), lane_group)
          : _mm256_broadcast_ss(s);
    }
    t.apply_scales(scale);
  }
}

template <int Bits, int Rows, int Cols>
void quantized_gemv_tile(const QuantizedGemvArgs& a, int j0) {
  GemvTile<Rows, Cols> t(a, j0);
  if constexpr (kWordMajor<Bits>) {
    // Whole blocks, then the remaining groups (K a multiple of the group
    // size but not of the block) the natural way; arrange_x leaves that
    // tail of x as it is.
    const int blocks_end = a.k / kBlockValues<Bits> * kBlockValues<Bits>;
    word_major_blocks<Bits>(a, t, blocks_end);
    natural_groups<Bits>(a, t, blocks_end, a.k);
  } else {
    natural_groups<Bits>(a, t, 0, a.k);
  }
  t.store(a, j0);
}

template <int Bits, int Rows, int Cols>
void quantized_gemv_rows(const QuantizedGemvArgs& a) {
  int j = 0;
  for (; j + Cols <= a.n; j += Cols) {
    quantized_gemv_tile<Bits, Rows, Cols>(a, j);
  }
  for (; j < a.n; ++j) {
    quantized_gemv_tile<Bits, Rows, 1>(a, j);
  }
}

template <int Bits>
void quantized_gemv(const QuantizedGemvArgs& a) {
  static_assert(kGemvMaxRows == 4);
  switch (a.rows) {
    case 1:
      return quantized_gemv_rows<Bits, 1, 4>(a);
    case 2:
      return quantized_gemv_rows<Bits, 2, 2>(a);
    case 3:
      return quantized_gemv_rows<Bits, 3, 2>(a);
    default:
      return quantized_gemv_rows<Bits, 4, 2>(a);
  }
}

template <int Bits>
void dequantize(const DequantizeArgs& a) {
  const int first_group = a.first / a.group_size;
  for (int r = 0; r < a.rows; ++r) {
    const uint8_t* w = reinterpret_cast<const uint8_t*>(a.w + r * a.w_stride);
    const float* s = a.scales + r * a.sb_stride;
    const float* b = a.biases + r * a.sb_stride;
    float* out = a.out + r * a.out_stride;
    for (int i = 0; i < a.count; i += 8) {
      const int v = a.first + i;
      const int g = v / a.group_size - first_group;
      _mm256_storeu_ps(
          out + i,
          _mm256_fmadd_ps(
              _mm256_broadcast_ss(s + g),
              unpack8<Bits>(w + v / 8 * Bits),
              _mm256_broadcast_ss(b + g)));
    }
  }
}

// Eight rows at a time: 8 values of each, dequantized into registers,
// transposed in them and stored as 8 panel rows.
template <int Bits>
void dequantize_panel(const DequantizeArgs& a) {
  const int first_group = a.first / a.group_size;
  for (int r0 = 0; r0 < kPanelColumns; r0 += 8) {
    const uint8_t* w[8];
    const float* s[8];
    const float* b[8];
    for (int r = 0; r < 8; ++r) {
      // Rows past the last read row 0 again; their lanes are zeroed.
      const int row = r0 + r < a.rows ? r0 + r : 0;
      w[r] = reinterpret_cast<const uint8_t*>(a.w + row * a.w_stride);
      s[r] = a.scales + row * a.sb_stride;
      b[r] = a.biases + row * a.sb_stride;
    }
    const int live = a.rows - r0;
    float* out = a.out + r0;
    for (int i = 0; i < a.count; i += 8) {
      const int v = a.first + i;
      const int g = v / a.group_size - first_group;
      __m256 rows[8];
      for (int r = 0; r < 8; ++r) {
        rows[r] = r < live ? _mm256_fmadd_ps(
                                 _mm256_broadcast_ss(s[r] + g),
                                 unpack8<Bits>(w[r] + v / 8 * Bits),
                                 _mm256_broadcast_ss(b[r] + g))
                           : _mm256_setzero_ps();
      }
      transpose8x8(rows);
      for (int t = 0; t < 8; ++t) {
        _mm256_storeu_ps(out + (i + t) * kPanelColumns, rows[t]);
      }
    }
  }
}

// ----------------------------- dense -----------------------------

template <FloatType Type>
inline __m256 load_weights(const void* w, int64_t i) {
  return load_as_float(Type, w, i);
}

template <FloatType Type>
inline float load_weight(const void* w, int64_t i) {
  if constexpr (Type == FloatType::Float32) {
    return static_cast<const float*>(w)[i];
  } else {
    alignas(16) uint16_t lanes[8] = {static_cast<const uint16_t*>(w)[i]};
    return _mm256_cvtss_f32(load_as_float(Type, lanes, 0));
  }
}

template <FloatType Type, int Rows, int Cols>
void dense_gemv_tile(const DenseGemvArgs& a, int j0) {
  __m256 acc[Rows][Cols];
  for (int r = 0; r < Rows; ++r) {
    for (int c = 0; c < Cols; ++c) {
      acc[r][c] = _mm256_setzero_ps();
    }
  }
  const char* w[Cols];
  for (int c = 0; c < Cols; ++c) {
    w[c] = static_cast<const char*>(a.w) +
        (j0 + c) * a.w_stride * float_type_size(Type);
  }
  // Prefetch as the quantized GEMV does (prefetch_next_tile), a line per
  // 64 bytes of each row.
  constexpr int kSize = float_type_size(Type);
  const int64_t next_tile_bytes = Cols * a.w_stride * kSize;
  int k = 0;
  for (; k + 8 <= a.k; k += 8) {
    __m256 xv[Rows];
    for (int r = 0; r < Rows; ++r) {
      xv[r] = _mm256_loadu_ps(a.x + r * a.x_stride + k);
    }
    for (int c = 0; c < Cols; ++c) {
      if ((k * kSize) % 64 == 0) {
        _mm_prefetch(w[c] + next_tile_bytes + k * kSize, _MM_HINT_T0);
      }
      const __m256 wv = load_weights<Type>(w[c], k);
      for (int r = 0; r < Rows; ++r) {
        acc[r][c] = _mm256_fmadd_ps(xv[r], wv, acc[r][c]);
      }
    }
  }
  for (int r = 0; r < Rows; ++r) {
    for (int c = 0; c < Cols; ++c) {
      float sum = horizontal_sum(acc[r][c]);
      for (int kk = k; kk < a.k; ++kk) {
        sum += a.x[r * a.x_stride + kk] * load_weight<Type>(w[c], kk);
      }
      a.out[r * a.out_stride + j0 + c] = sum;
    }
  }
}

template <FloatType Type, int Rows, int Cols>
void dense_gemv_rows(const DenseGemvArgs& a) {
  int j = 0;
  for (; j + Cols <= a.n; j += Cols) {
    dense_gemv_tile<Type, Rows, Cols>(a, j);
  }
  for (; j < a.n; ++j) {
    dense_gemv_tile<Type, Rows, 1>(a, j);
  }
}

template <FloatType Type>
void dense_gemv_typed(const DenseGemvArgs& a) {
  switch (a.rows) {
    case 1:
      return dense_gemv_rows<Type, 1, 4>(a);
    case 2:
      return dense_gemv_rows<Type, 2, 2>(a);
    case 3:
      return dense_gemv_rows<Type, 3, 2>(a);
    default:
      return dense_gemv_rows<Type, 4, 2>(a);
  }
}

void dense_gemv(const DenseGemvArgs& a) {
  switch (a.w_type) {
    case FloatType::Float16:
      return dense_gemv_typed<FloatType::Float16>(a);
    case FloatType::BFloat16:
      return dense_gemv_typed<FloatType::BFloat16>(a);
    default:
      return dense_gemv_typed<FloatType::Float32>(a);
  }
}

// ----------------------------- GEMM -----------------------------

void transpose_panel(
    const float* src,
    int64_t src_stride,
    int rows,
    int depth,
    float* panel) {
  for (int j0 = 0; j0 < kPanelColumns; j0 += 8) {
    int k = 0;
    for (; k + 8 <= depth; k += 8) {
      __m256 v[8];
      for (int i = 0; i < 8; ++i) {
        v[i] = j0 + i < rows ? _mm256_loadu_ps(src + (j0 + i) * src_stride + k)
                             : _mm256_setzero_ps();
      }
      transpose8x8(v);
      for (int i = 0; i < 8; ++i) {
        _mm256_storeu_ps(panel + (k + i) * kPanelColumns + j0, v[i]);
      }
    }
    for (; k < depth; ++k) {
      for (int i = 0; i < 8; ++i) {
        panel[k * kPanelColumns + j0 + i] =
            j0 + i < rows ? src[(j0 + i) * src_stride + k] : 0.0f;
      }
    }
  }
}

// Rows x 16 outputs in 2 * Rows accumulators (12 of the 16 registers at
// Rows = 6): per k, two panel loads and Rows broadcasts feed 2 * Rows FMAs.
template <int Rows>
void gemm_tile_rows(
    const float* x,
    const float* panel,
    int depth,
    float* c,
    bool accumulate) {
  // The accumulators are named through a fold over the rows: GCC keeps an
  // array of them in memory (a store per FMA) when the row loops are not
  // unrolled before it decides.
  __m256 lo[Rows], hi[Rows];
  auto each_row = [&]<typename F>(F&& f) {
    [&]<int... R>(std::integer_sequence<int, R...>) {
      (f(std::integral_constant<int, R>{}), ...);
    }(std::make_integer_sequence<int, Rows>{});
  };
  each_row([&](auto r) {
    lo[r] = _mm256_setzero_ps();
    hi[r] = _mm256_setzero_ps();
  });
  for (int k = 0; k < depth; ++k) {
    const __m256 b0 = _mm256_loadu_ps(panel);
    const __m256 b1 = _mm256_loadu_ps(panel + 8);
    panel += kPanelColumns;
    each_row([&](auto r) {
      const __m256 xv = _mm256_broadcast_ss(x + r);
      lo[r] = _mm256_fmadd_ps(xv, b0, lo[r]);
      hi[r] = _mm256_fmadd_ps(xv, b1, hi[r]);
    });
    x += kMicroRows;
  }
  each_row([&](auto r) {
    float* out = c + r * kPanelColumns;
    if (accumulate) {
      lo[r] = _mm256_add_ps(lo[r], _mm256_loadu_ps(out));
      hi[r] = _mm256_add_ps(hi[r], _mm256_loadu_ps(out + 8));
    }
    _mm256_storeu_ps(out, lo[r]);
    _mm256_storeu_ps(out + 8, hi[r]);
  });
}

void gemm_tile(
    const float* x,
    int rows,
    const float* panel,
    int depth,
    float* c,
    bool accumulate) {
  static_assert(kMicroRows == 6 && kPanelColumns == 16);
  switch (rows) {
    case 1:
      return gemm_tile_rows<1>(x, panel, depth, c, accumulate);
    case 2:
      return gemm_tile_rows<2>(x, panel, depth, c, accumulate);
    case 3:
      return gemm_tile_rows<3>(x, panel, depth, c, accumulate);
    case 4:
      return gemm_tile_rows<4>(x, panel, depth, c, accumulate);
    case 5:
      return gemm_tile_rows<5>(x, panel, depth, c, accumulate);
    default:
      return gemm_tile_rows<6>(x, panel, depth, c, accumulate);
  }
}

// Ten independent 8-lane FMA chains: enough to cover the FMA latency on
// the two FMA ports of current x86 cores.
double fma_peak(int64_t iterations) {
  constexpr int kChains = 10;
  __m256 acc[kChains];
  for (int i = 0; i < kChains; ++i) {
    acc[i] = _mm256_set1_ps(static_cast<float>(i));
  }
  const __m256 a = _mm256_set1_ps(0.999f);
  const __m256 b = _mm256_set1_ps(0.001f);
  for (int64_t it = 0; it < iterations; ++it) {
    for (int i = 0; i < kChains; ++i) {
      acc[i] = _mm256_fmadd_ps(acc[i], a, b);
    }
  }
  __m256 sum = acc[0];
  for (int i = 1; i < kChains; ++i) {
    sum = _mm256_add_ps(sum, acc[i]);
  }
  // Feed the result back so the loop is not dead code.
  volatile float sink = horizontal_sum(sum);
  (void)sink;
  return 2.0 * 8 * kChains * static_cast<double>(iterations);
}

const Kernels kAvx2Kernels = {
    "avx2",
    to_float,
    from_float,
    {nullptr,
     quantized_gemv<1>,
     quantized_gemv<2>,
     quantized_gemv<3>,
     quantized_gemv<4>,
     quantized_gemv<5>,
     quantized_gemv<6>,
     nullptr,
     quantized_gemv<8>},
    {nullptr,
     arrange_x<1>,
     arrange_x<2>,
     nullptr,
     arrange_x<4>,
     nullptr,
     nullptr,
     nullptr,
     nullptr},
    {nullptr,
     dequantize<1>,
     dequantize<2>,
     dequantize<3>,
     dequantize<4>,
     dequantize<5>,
     dequantize<6>,
     nullptr,
     dequantize<8>},
    {nullptr,
     dequantize_panel<1>,
     dequantize_panel<2>,
     dequantize_panel<3>,
     dequantize_panel<4>,
     dequantize_panel<5>,
     dequantize_panel<6>,
     nullptr,
     dequantize_panel<8>},
    dense_gemv,
    transpose_panel,
    gemm_tile,
    fma_peak,
};

} // namespace

const Kernels* avx2_kernels() {
  return &kAvx2Kernels;
}

} // namespace mlx_qmm::cpu

#else

namespace mlx_qmm::cpu {

const Kernels* avx2_kernels() {
  return nullptr;
}

} // namespace mlx_qmm::cpu

#endif
