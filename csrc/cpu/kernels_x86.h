// Copyright © 2026 mlx-qmm contributors.
//
// The x86-64 kernel bodies, written once over a vector-traits type V
// (simd_x86.h: Vec256 for AVX2/FMA/F16C, Vec512 for AVX-512) and turned
// into a table by x86_kernels<V, P>(name). kernels_avx2.cpp and
// kernels_avx512.cpp each include this header once, compiled with their
// own instruction-set flags; everything here is in an anonymous namespace,
// so each gets its own copies (kernels.h says why none may be shared), and
// uses no library templates for the same reason.
//
// Unpacking V::kLanes quantized values into one vector of float lanes:
// kLanes consecutive values of a row occupy exactly kLanes * bits / 8 bytes
// starting at byte k * bits / 8 (k a multiple of kLanes), so one load of
// those bytes, broadcast, holds them all. When they fit a 32-bit word
// (8 lanes of at most 4 bits, 16 of at most 2) lane l shifts the word right
// by l * bits and masks; otherwise a byte shuffle first moves the two bytes
// that hold lane l's value into lane l (values of up to 7 bits span at most
// two bytes), which then shifts by (l * bits) % 8 and masks. 8-bit values
// are plain byte widening.
//
// Matrix-vector products never materialise dequantized weights: per group
// they accumulate x * q with q the raw integer (as float), and apply the
// scale once per group and the bias through the group sums of x:
//   sum_k x_k (s q_k + b) = s * sum_k x_k q_k + b * sum_k x_k.

#pragma once

#include <cstdint>
#include <cstring>
#include <utility>

#include "csrc/cpu/kernels.h"
#include "csrc/cpu/simd_x86.h"

namespace mlx_qmm::cpu {

namespace {

// ----------------------------- conversions -----------------------------

template <class V>
inline typename V::F load_as_float(FloatType type, const void* src, int64_t i) {
  switch (type) {
    case FloatType::Float16:
      return V::load_f16(static_cast<const uint16_t*>(src) + i);
    case FloatType::BFloat16:
      return V::load_bf16(static_cast<const uint16_t*>(src) + i);
    default:
      return V::load(static_cast<const float*>(src) + i);
  }
}

template <class V>
inline void store_as(FloatType type, void* dst, int64_t i, typename V::F v) {
  switch (type) {
    case FloatType::Float16:
      return V::store_f16(static_cast<uint16_t*>(dst) + i, v);
    case FloatType::BFloat16:
      return V::store_bf16(static_cast<uint16_t*>(dst) + i, v);
    default:
      return V::store(static_cast<float*>(dst) + i, v);
  }
}

// A tail of fewer than kLanes elements goes through a zero-padded buffer of
// kLanes so that it shares the vector path (and its rounding).
template <class V>
void to_float(
    FloatType type,
    const void* src,
    int64_t src_stride,
    int rows,
    int cols,
    float* dst,
    int64_t dst_stride) {
  constexpr int kLanes = V::kLanes;
  const int size = float_type_size(type);
  for (int r = 0; r < rows; ++r) {
    const char* row = static_cast<const char*>(src) + r * src_stride * size;
    float* out = dst + r * dst_stride;
    int i = 0;
    for (; i + kLanes <= cols; i += kLanes) {
      V::store(out + i, load_as_float<V>(type, row, i));
    }
    if (i < cols) {
      alignas(64) char tail[4 * kLanes] = {};
      std::memcpy(tail, row + i * size, (cols - i) * size);
      alignas(64) float converted[kLanes];
      V::store(converted, load_as_float<V>(type, tail, 0));
      std::memcpy(out + i, converted, (cols - i) * sizeof(float));
    }
  }
}

template <class V>
void from_float(
    FloatType type,
    const float* acc,
    const float* bias,
    void* dst,
    int n) {
  constexpr int kLanes = V::kLanes;
  const int size = float_type_size(type);
  int i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    typename V::F v = V::load(acc + i);
    if (bias) {
      v = V::add(v, V::load(bias + i));
    }
    store_as<V>(type, dst, i, v);
  }
  if (i < n) {
    alignas(64) float sum[kLanes] = {};
    for (int j = i; j < n; ++j) {
      sum[j - i] = acc[j] + (bias ? bias[j] : 0.0f);
    }
    alignas(64) char converted[4 * kLanes];
    store_as<V>(type, converted, 0, V::load(sum));
    std::memcpy(static_cast<char*>(dst) + i * size, converted, (n - i) * size);
  }
}

// ----------------------------- unpacking -----------------------------

// Lane l's byte shuffle and shift (see the top of the file). `Spread`:
// whether the values go through the shuffle (shift within a byte pair) or
// are shifted out of one broadcast word.
template <int Lanes, int Bits>
struct UnpackPattern {
  static constexpr bool kSpread = Lanes * Bits > 32;
  int8_t gather[4 * Lanes];
  int32_t shift[Lanes];

  constexpr UnpackPattern() : gather(), shift() {
    for (int l = 0; l < Lanes; ++l) {
      const int bit = l * Bits;
      // Bytes of each 128-bit quarter: the broadcast holds the same window.
      gather[4 * l] = static_cast<int8_t>(bit / 8);
      gather[4 * l + 1] = static_cast<int8_t>(bit / 8 + 1);
      gather[4 * l + 2] = -1;
      gather[4 * l + 3] = -1;
      shift[l] = kSpread ? bit % 8 : bit;
    }
  }
};

template <int Lanes, int Bits>
inline constexpr UnpackPattern<Lanes, Bits> kUnpackPattern{};

// The kLanes values of a row starting at value k (a multiple of kLanes),
// whose bytes start at `bytes`, as floats. Reads exactly those bytes: the
// last values of the last row may end a buffer.
template <class V, int Bits>
inline typename V::F unpack(const uint8_t* bytes) {
  constexpr int kBytes = V::kLanes * Bits / 8;
  constexpr const auto& pattern = kUnpackPattern<V::kLanes, Bits>;
  if constexpr (Bits == 8) {
    return V::to_float(V::widen_bytes(bytes));
  } else {
    const typename V::I mask = V::set1_int((1 << Bits) - 1);
    const typename V::I shifts = V::load_int(pattern.shift);
    typename V::I spread;
    if constexpr (pattern.kSpread) {
      spread = V::shuffle_bytes(
          V::template broadcast_bytes<kBytes>(bytes),
          V::load_int(pattern.gather));
    } else {
      spread = V::set1_int(static_cast<int32_t>(load_le<kBytes>(bytes)));
    }
    return V::to_float(V::bit_and(V::shift_right(spread, shifts), mask));
  }
}

// A row of scales or biases as stored (QuantizedGemvArgs::sb_type), read
// as floats. The type is a run-time value rather than a template
// parameter: the GEMV reads a scale once per group (a branch that always
// goes the same way), and templating the tiles on it would triple the
// kernels' code.
struct StoredRow {
  const char* p = nullptr;
  FloatType type = FloatType::Float32;

  StoredRow() = default;
  StoredRow(const void* base, int64_t offset, FloatType type)
      : p(static_cast<const char*>(base) + offset * float_type_size(type)),
        type(type) {}

  float at(int64_t i) const {
    if (type == FloatType::Float32) {
      return reinterpret_cast<const float*>(p)[i];
    }
    uint16_t h;
    std::memcpy(&h, p + 2 * i, 2);
    if (type == FloatType::Float16) {
      return _cvtsh_ss(h);
    }
    const uint32_t bits = static_cast<uint32_t>(h) << 16;
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
  }

  // Element first + index[l] in lane l; reads only [first, first + count),
  // count a power of two of at least 2 (the groups of a word-major block).
  template <class V>
  typename V::F gather_first(int64_t first, int count, typename V::I index)
      const {
    if (type == FloatType::Float32) {
      return V::gather_first(
          reinterpret_cast<const float*>(p) + first, count, index);
    }
    const auto halves = V::load_first_halves(
        reinterpret_cast<const uint16_t*>(p) + first, count);
    return V::permute(
        type == FloatType::Float16 ? V::f16_to_float(halves)
                                   : V::bf16_to_float(halves),
        index);
  }

  // sum_i row[i] * b[i], i < n.
  template <class V>
  float dot(const float* b, int n) const {
    typename V::F acc = V::zero();
    int i = 0;
    for (; i + V::kLanes <= n; i += V::kLanes) {
      acc = V::fma(load_as_float<V>(type, p, i), V::load(b + i), acc);
    }
    float sum = V::reduce(acc);
    for (; i < n; ++i) {
      sum += at(i) * b[i];
    }
    return sum;
  }
};

// ----------------------------- quantized GEMV -----------------------------
//
// A tile of Rows rows of x times Cols rows of w: the Rows * Cols group
// accumulators are independent FMA chains (their latency is hidden), and
// each x vector and each unpacked weight vector is reused Cols and Rows
// times. Two ways through a row:
//
//   natural (3, 5, 6 and 8 bits): unpack, kLanes consecutive values a
//     vector, x as it is; shift, mask, convert and FMA per vector.
//   word-major (1, 2 and 4 bits): one load holds kLanes whole words and
//     lane l works on word l. Field f of every word (value l * per_word + f
//     of the block) is isolated by one AND with the field's mask, without
//     shifting it down: the lane holds q * 2^(f * Bits), exactly (at most 8
//     significant bits), and x, arranged once per GEMV (arrange_x), carries
//     the compensating factor 2^(-f * Bits), also exact (it only moves the
//     exponent; x below 2^-96 in magnitude would lose bits as a subnormal).
//     The top field is shifted down instead, since its AND would set the
//     sign bit. Mask, convert and FMA: one operation fewer per vector, on
//     the ports the FMAs need. Within a block lane l belongs to group
//     (l * per_word) / group_size, so blocks wider than a group take one
//     scale per lane.

template <int Bits>
inline constexpr bool kWordMajor = Bits == 1 || Bits == 2 || Bits == 4;

template <int Bits>
inline constexpr int kPerWord = 32 / Bits;

// Values that one load of kLanes words holds.
template <class V, int Bits>
inline constexpr int kBlockValues = V::kLanes * kPerWord<Bits>;

template <class V, int Bits>
void arrange_x(const float* x, int k, float* out) {
  static_assert(kWordMajor<Bits>);
  constexpr int per_word = kPerWord<Bits>;
  constexpr int block = kBlockValues<V, Bits>;
  const int blocks_end = k / block * block;
  for (int base = 0; base < blocks_end; base += block) {
    for (int f = 0; f < per_word; ++f) {
      const float factor =
          f + 1 < per_word ? 1.0f / static_cast<float>(1u << (f * Bits)) : 1.0f;
      for (int l = 0; l < V::kLanes; ++l) {
        out[base + f * V::kLanes + l] = x[base + l * per_word + f] * factor;
      }
    }
  }
  for (int i = blocks_end; i < k; ++i) {
    out[i] = x[i];
  }
}

template <class V, int Bits, int F>
inline typename V::F word_field(typename V::I words) {
  if constexpr (F + 1 == kPerWord<Bits>) {
    return V::to_float(V::template shift_right<F * Bits>(words));
  } else {
    constexpr uint32_t mask = ((1u << Bits) - 1u) << (F * Bits);
    return V::to_float(
        V::bit_and(words, V::set1_int(static_cast<int32_t>(mask))));
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

// The group accumulators of a tile. The kernels keep them in local
// variables, never in GemvTile: a member reached through a reference may
// alias the float loads of x (a vector of floats may alias a float), so
// the compiler would store every accumulator back after each FMA.
template <class V, int Rows, int Cols>
struct GroupAccumulators {
  using F = typename V::F;
  // The word-major loop alternates fields between acc and acc_odd, so that
  // each FMA chain is half as long (a block's fields in one chain would
  // make the loop wait on FMA latency).
  F acc[Rows][Cols];
  F acc_odd[Rows][Cols];

  GroupAccumulators() {
    for (int r = 0; r < Rows; ++r) {
      for (int c = 0; c < Cols; ++c) {
        acc[r][c] = V::zero();
        acc_odd[r][c] = V::zero();
      }
    }
  }
};

template <class V, int Rows, int Cols>
struct GemvTile {
  using F = typename V::F;
  const uint8_t* w[Cols];
  StoredRow scales[Cols];
  // From a weight row to the same place in the next tile's row: the loops
  // prefetch that far ahead (see prefetch_next_tile).
  int64_t next_tile_bytes;
  F total[Rows][Cols];

  GemvTile(const QuantizedGemvArgs& a, int j0)
      : next_tile_bytes(Cols * a.w_stride * 4) {
    for (int c = 0; c < Cols; ++c) {
      w[c] = reinterpret_cast<const uint8_t*>(a.w + (j0 + c) * a.w_stride);
      scales[c] = StoredRow(a.scales, (j0 + c) * a.sb_stride, a.sb_type);
    }
    for (int r = 0; r < Rows; ++r) {
      for (int c = 0; c < Cols; ++c) {
        total[r][c] = V::zero();
      }
    }
  }

  // total += acc * scale, scale per column of the tile.
  void apply_scales(
      const GroupAccumulators<V, Rows, Cols>& g,
      const F (&scale)[Cols]) {
    for (int r = 0; r < Rows; ++r) {
      for (int c = 0; c < Cols; ++c) {
        total[r][c] =
            V::fma(V::add(g.acc[r][c], g.acc_odd[r][c]), scale[c], total[r][c]);
      }
    }
  }

  // out = sum of total's lanes + biases . group sums of x.
  void store(const QuantizedGemvArgs& a, int j0) const {
    const int groups = a.k / a.group_size;
    for (int r = 0; r < Rows; ++r) {
      for (int c = 0; c < Cols; ++c) {
        const float bias_term =
            StoredRow(a.biases, (j0 + c) * a.sb_stride, a.sb_type)
                .template dot<V>(a.x_group_sums + r * a.sums_stride, groups);
        a.out[r * a.out_stride + j0 + c] = V::reduce(total[r][c]) + bias_term;
      }
    }
  }
};

// Groups covering values [begin, end) the natural way.
template <class V, int Bits, int Rows, int Cols>
void natural_groups(
    const QuantizedGemvArgs& a,
    GemvTile<V, Rows, Cols>& t,
    int begin,
    int end) {
  using F = typename V::F;
  constexpr int kLanes = V::kLanes;
  constexpr int kChunkBytes = kLanes * Bits / 8;
  // Pointers advance by whole chunks (kLanes values: kLanes floats of x,
  // kChunkBytes of each weight row), so no index arithmetic competes with
  // the vector work for the ALU ports.
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
    GroupAccumulators<V, Rows, Cols> g;
    for (int i = 0; i < a.group_size; i += kLanes) {
      F xv[Rows];
      for (int r = 0; r < Rows; ++r) {
        xv[r] = V::load(x + r * a.x_stride);
      }
      x += kLanes;
      for (int c = 0; c < Cols; ++c) {
        const F q = unpack<V, Bits>(w[c]);
        w[c] += kChunkBytes;
        for (int r = 0; r < Rows; ++r) {
          g.acc[r][c] = V::fma(xv[r], q, g.acc[r][c]);
        }
      }
    }
    F scale[Cols];
    for (int c = 0; c < Cols; ++c) {
      scale[c] = V::set1(t.scales[c].at(v0 / a.group_size));
    }
    t.apply_scales(g, scale);
  }
}

// Whole blocks covering values [0, end) the word-major way (x arranged).
template <class V, int Bits, int Rows, int Cols>
void word_major_blocks(
    const QuantizedGemvArgs& a,
    GemvTile<V, Rows, Cols>& t,
    int end) {
  using F = typename V::F;
  using I = typename V::I;
  constexpr int kLanes = V::kLanes;
  constexpr int block = kBlockValues<V, Bits>;
  const int group_size = a.group_size;
  // Group sizes are powers of two (ops.cpp accepts 32, 64 and 128): the
  // divisions below are shifts. A division here, once per lane and tile,
  // cost the 64-group GEMV a fifth of its time in idiv.
  const int group_shift = __builtin_ctz(static_cast<unsigned>(group_size));
  // A segment shares one scale vector: a group, or a block of several.
  const int segment = group_size > block ? group_size : block;
  const int groups_per_block = block > group_size ? block >> group_shift : 1;
  I lane_group = V::set1_int(0);
  if (groups_per_block > 1) {
    alignas(64) int32_t lanes[kLanes];
    for (int l = 0; l < kLanes; ++l) {
      lanes[l] = (l * kPerWord<Bits>) >> group_shift;
    }
    lane_group = V::load_int(lanes);
  }
  const float* x = a.x;
  const uint8_t* w[Cols];
  for (int c = 0; c < Cols; ++c) {
    w[c] = t.w[c];
  }
  for (int v0 = 0; v0 < end; v0 += segment) {
    GroupAccumulators<V, Rows, Cols> g;
    for (int v = v0; v < v0 + segment; v += block) {
      I words[Cols];
      for (int c = 0; c < Cols; ++c) {
        prefetch_next_tile(w[c], t.next_tile_bytes, 4 * kLanes);
        words[c] = V::load_int(w[c]);
        w[c] += 4 * kLanes;
      }
      [&]<int... Field>(std::integer_sequence<int, Field...>) {
        (
            [&] {
              F xv[Rows];
              for (int r = 0; r < Rows; ++r) {
                xv[r] = V::load(x + r * a.x_stride + Field * kLanes);
              }
              for (int c = 0; c < Cols; ++c) {
                const F q = word_field<V, Bits, Field>(words[c]);
                for (int r = 0; r < Rows; ++r) {
                  F& sum = Field % 2 ? g.acc_odd[r][c] : g.acc[r][c];
                  sum = V::fma(xv[r], q, sum);
                }
              }
            }(),
            ...);
      }(std::make_integer_sequence<int, kPerWord<Bits>>{});
      x += block;
    }
    F scale[Cols];
    for (int c = 0; c < Cols; ++c) {
      const int64_t g = v0 >> group_shift;
      scale[c] = groups_per_block > 1 ? t.scales[c].template gather_first<V>(
                                            g, groups_per_block, lane_group)
                                      : V::set1(t.scales[c].at(g));
    }
    t.apply_scales(g, scale);
  }
}

template <class V, int Bits, int Rows, int Cols>
void quantized_gemv_tile(const QuantizedGemvArgs& a, int j0) {
  GemvTile<V, Rows, Cols> t(a, j0);
  if constexpr (kWordMajor<Bits>) {
    // Whole blocks, then the remaining groups (K a multiple of the group
    // size but not of the block) the natural way; arrange_x leaves that
    // tail of x as it is.
    const int blocks_end = a.k / kBlockValues<V, Bits> * kBlockValues<V, Bits>;
    word_major_blocks<V, Bits>(a, t, blocks_end);
    natural_groups<V, Bits>(a, t, blocks_end, a.k);
  } else {
    natural_groups<V, Bits>(a, t, 0, a.k);
  }
  t.store(a, j0);
}

template <class V, int Bits, int Rows, int Cols>
void quantized_gemv_rows(const QuantizedGemvArgs& a) {
  int j = 0;
  for (; j + Cols <= a.n; j += Cols) {
    quantized_gemv_tile<V, Bits, Rows, Cols>(a, j);
  }
  for (; j < a.n; ++j) {
    quantized_gemv_tile<V, Bits, Rows, 1>(a, j);
  }
}

template <class V, int Bits>
void quantized_gemv(const QuantizedGemvArgs& a) {
  static_assert(kGemvMaxRows == 4);
  switch (a.rows) {
    case 1:
      return quantized_gemv_rows<V, Bits, 1, 4>(a);
    case 2:
      return quantized_gemv_rows<V, Bits, 2, 2>(a);
    case 3:
      return quantized_gemv_rows<V, Bits, 3, 2>(a);
    default:
      return quantized_gemv_rows<V, Bits, 4, 2>(a);
  }
}

// ----------------------------- panels -----------------------------
//
// Panels are kPanelColumns (16) floats wide and are built 8 rows at a time
// through an 8x8 in-register transpose: these stay on 8 lanes (Vec256) at
// every level; the GEMM micro-kernel that consumes the panels is the part
// that gains from wider vectors.

// out = dequantized values [first, first + count) of each row (kernels.h).
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
      Vec256::store(
          out + i,
          Vec256::fma(
              Vec256::broadcast(s + g),
              unpack<Vec256, Bits>(w + v / 8 * Bits),
              Vec256::broadcast(b + g)));
    }
  }
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
        rows[r] = r < live ? Vec256::fma(
                                 Vec256::broadcast(s[r] + g),
                                 unpack<Vec256, Bits>(w[r] + v / 8 * Bits),
                                 Vec256::broadcast(b[r] + g))
                           : Vec256::zero();
      }
      transpose8x8(rows);
      for (int t = 0; t < 8; ++t) {
        Vec256::store(out + (i + t) * kPanelColumns, rows[t]);
      }
    }
  }
}

// inline: kernels_avx512_vnni.cpp includes this header for a few helpers
// and takes its table's transpose_panel from kernels_avx512.cpp.
inline void transpose_panel(
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
        v[i] = j0 + i < rows ? Vec256::load(src + (j0 + i) * src_stride + k)
                             : Vec256::zero();
      }
      transpose8x8(v);
      for (int i = 0; i < 8; ++i) {
        Vec256::store(panel + (k + i) * kPanelColumns + j0, v[i]);
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

// ----------------------------- dense -----------------------------

template <class V, FloatType Type>
inline float load_weight(const void* w, int64_t i) {
  if constexpr (Type == FloatType::Float32) {
    return static_cast<const float*>(w)[i];
  } else {
    alignas(64)
        uint16_t lanes[V::kLanes] = {static_cast<const uint16_t*>(w)[i]};
    alignas(64) float converted[V::kLanes];
    V::store(converted, load_as_float<V>(Type, lanes, 0));
    return converted[0];
  }
}

template <class V, FloatType Type, int Rows, int Cols>
void dense_gemv_tile(const DenseGemvArgs& a, int j0) {
  using F = typename V::F;
  constexpr int kLanes = V::kLanes;
  F acc[Rows][Cols];
  for (int r = 0; r < Rows; ++r) {
    for (int c = 0; c < Cols; ++c) {
      acc[r][c] = V::zero();
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
  for (; k + kLanes <= a.k; k += kLanes) {
    F xv[Rows];
    for (int r = 0; r < Rows; ++r) {
      xv[r] = V::load(a.x + r * a.x_stride + k);
    }
    for (int c = 0; c < Cols; ++c) {
      if ((k * kSize) % 64 == 0) {
        _mm_prefetch(w[c] + next_tile_bytes + k * kSize, _MM_HINT_T0);
      }
      const F wv = load_as_float<V>(Type, w[c], k);
      for (int r = 0; r < Rows; ++r) {
        acc[r][c] = V::fma(xv[r], wv, acc[r][c]);
      }
    }
  }
  for (int r = 0; r < Rows; ++r) {
    for (int c = 0; c < Cols; ++c) {
      float sum = V::reduce(acc[r][c]);
      for (int kk = k; kk < a.k; ++kk) {
        sum += a.x[r * a.x_stride + kk] * load_weight<V, Type>(w[c], kk);
      }
      a.out[r * a.out_stride + j0 + c] = sum;
    }
  }
}

template <class V, FloatType Type, int Rows, int Cols>
void dense_gemv_rows(const DenseGemvArgs& a) {
  int j = 0;
  for (; j + Cols <= a.n; j += Cols) {
    dense_gemv_tile<V, Type, Rows, Cols>(a, j);
  }
  for (; j < a.n; ++j) {
    dense_gemv_tile<V, Type, Rows, 1>(a, j);
  }
}

template <class V, FloatType Type>
void dense_gemv_typed(const DenseGemvArgs& a) {
  switch (a.rows) {
    case 1:
      return dense_gemv_rows<V, Type, 1, 4>(a);
    case 2:
      return dense_gemv_rows<V, Type, 2, 2>(a);
    case 3:
      return dense_gemv_rows<V, Type, 3, 2>(a);
    default:
      return dense_gemv_rows<V, Type, 4, 2>(a);
  }
}

template <class V>
void dense_gemv(const DenseGemvArgs& a) {
  switch (a.w_type) {
    case FloatType::Float16:
      return dense_gemv_typed<V, FloatType::Float16>(a);
    case FloatType::BFloat16:
      return dense_gemv_typed<V, FloatType::BFloat16>(a);
    default:
      return dense_gemv_typed<V, FloatType::Float32>(a);
  }
}

// ----------------------------- GEMM -----------------------------

// Calls f(integral_constant<int, I>) for I < N: a fold, so that every index
// is a constant when the compiler allocates registers.
template <int N, typename Body>
inline void unrolled(Body&& f) {
  [&]<int... I>(std::integer_sequence<int, I...>) {
    (f(std::integral_constant<int, I>{}), ...);
  }(std::make_integer_sequence<int, N>{});
}

// Rows x 16 outputs in Rows * kColumnVectors accumulators (12 of AVX2's 16
// registers, or 6 of AVX-512's 32, at Rows = 6): per k, the panel's row in
// kColumnVectors loads and Rows broadcasts feed Rows * kColumnVectors FMAs.
template <class V, int Rows>
void gemm_tile_rows(
    const float* x,
    const float* panel,
    int depth,
    float* c,
    bool accumulate) {
  using F = typename V::F;
  constexpr int kColumnVectors = kPanelColumns / V::kLanes;
  // The accumulators are named through folds over the rows and columns:
  // GCC keeps an array of them in memory (a store per FMA) when the loops
  // are not unrolled before it decides.
  F acc[Rows][kColumnVectors];
  unrolled<Rows>([&](auto r) {
    unrolled<kColumnVectors>([&](auto j) { acc[r][j] = V::zero(); });
  });
  for (int k = 0; k < depth; ++k) {
    F b[kColumnVectors];
    unrolled<kColumnVectors>(
        [&](auto j) { b[j] = V::load(panel + j * V::kLanes); });
    panel += kPanelColumns;
    unrolled<Rows>([&](auto r) {
      const F xv = V::broadcast(x + r);
      unrolled<kColumnVectors>(
          [&](auto j) { acc[r][j] = V::fma(xv, b[j], acc[r][j]); });
    });
    x += kMicroRows;
  }
  unrolled<Rows>([&](auto r) {
    unrolled<kColumnVectors>([&](auto j) {
      float* out = c + r * kPanelColumns + j * V::kLanes;
      if (accumulate) {
        acc[r][j] = V::add(acc[r][j], V::load(out));
      }
      V::store(out, acc[r][j]);
    });
  });
}

template <class V>
void gemm_tile(
    const float* x,
    int rows,
    const float* panel,
    int depth,
    float* c,
    bool accumulate) {
  static_assert(kMicroRows == 6 && kPanelColumns % V::kLanes == 0);
  switch (rows) {
    case 1:
      return gemm_tile_rows<V, 1>(x, panel, depth, c, accumulate);
    case 2:
      return gemm_tile_rows<V, 2>(x, panel, depth, c, accumulate);
    case 3:
      return gemm_tile_rows<V, 3>(x, panel, depth, c, accumulate);
    case 4:
      return gemm_tile_rows<V, 4>(x, panel, depth, c, accumulate);
    case 5:
      return gemm_tile_rows<V, 5>(x, panel, depth, c, accumulate);
    default:
      return gemm_tile_rows<V, 6>(x, panel, depth, c, accumulate);
  }
}

// Ten independent FMA chains of the widest vectors: enough to cover the FMA
// latency on the two FMA ports of current x86 cores.
template <class V>
double fma_peak(int64_t iterations) {
  using F = typename V::F;
  constexpr int kChains = 10;
  F acc[kChains];
  for (int i = 0; i < kChains; ++i) {
    acc[i] = V::set1(static_cast<float>(i));
  }
  const F a = V::set1(0.999f);
  const F b = V::set1(0.001f);
  for (int64_t it = 0; it < iterations; ++it) {
    for (int i = 0; i < kChains; ++i) {
      acc[i] = V::fma(acc[i], a, b);
    }
  }
  F sum = acc[0];
  for (int i = 1; i < kChains; ++i) {
    sum = V::add(sum, acc[i]);
  }
  // Feed the result back so the loop is not dead code.
  volatile float sink = V::reduce(sum);
  (void)sink;
  return 2.0 * V::kLanes * kChains * static_cast<double>(iterations);
}

// ----------------------------- the table -----------------------------

// The kernels on vectors V; panels are built on 8 lanes (see "panels").
template <class V>
constexpr Kernels x86_kernels(const char* name) {
  return {
      name,
      to_float<V>,
      from_float<V>,
      {nullptr,
       quantized_gemv<V, 1>,
       quantized_gemv<V, 2>,
       quantized_gemv<V, 3>,
       quantized_gemv<V, 4>,
       quantized_gemv<V, 5>,
       quantized_gemv<V, 6>,
       nullptr,
       quantized_gemv<V, 8>},
      {nullptr,
       arrange_x<V, 1>,
       arrange_x<V, 2>,
       nullptr,
       arrange_x<V, 4>,
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
      dense_gemv<V>,
      transpose_panel,
      gemm_tile<V>,
      fma_peak<V>,
  };
}

} // namespace

} // namespace mlx_qmm::cpu
