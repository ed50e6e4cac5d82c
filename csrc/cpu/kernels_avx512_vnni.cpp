// Copyright © 2026 mlx-qmm contributors.
//
// The AVX-512 VNNI table: the AVX-512 table (kernels_avx512.cpp) with the
// 4-bit matrix-vector product for one row of x done on int8 dot products
// (vpdpbusd). CMake compiles this file alone with the AVX-512 flags plus
// -mavx512vnni; isa.cpp uses the table only on CPUs that have VNNI.
//
// Why. On two cores the float 4-bit GEMV is bound by its own instructions
// (mask, convert, FMA: three per 16 values), and while a core computes it
// keeps too few misses in flight to stream the weights at the machine's
// bandwidth; the two costs add up (bench/cpu_kernels.md). vpdpbusd
// multiplies 64 unsigned bytes by 64 signed bytes and adds each four
// products into an int32 lane, so the weights' nibbles are never converted
// to float: per 128 values and weight row this loop takes 3 operations to
// split the nibbles, 2 dot products per piece of x, a shift per piece after
// the first and 3 to convert, weigh and scale the sums, where the float
// kernel takes 24.
//
// x in int8 pieces. x is float, so each lane of 8 values (kSplitLaneValues:
// the values one int32 lane of vpdpbusd sums) is scaled by its own
//   e = 127 / max |x over the lane|
// and rounded to an integer at a precision of 2^-8(P-1), P pieces:
//   Y = round(x e 256^(P-1)),   |Y| <= 127 * 256^(P-1),
// which is then written as P signed base-256 digits, most significant first:
//   Y = p0 256^(P-1) + ... + p(P-1),   p0 in [-127, 127], the others in
//   [-128, 127]
// (each lower digit is the remainder of Y in [-128, 128), so the top one
// never exceeds 127.5 in magnitude). Y carries x to 0.5 / 256^(P-1) of 127
// times the lane's largest value: 2^-24 of it with three pieces, float32's
// own rounding, and 2^-16 with two, which float16 and bfloat16 x (11 and 8
// bits) get. The dot products then rebuild the integer exactly: per weight
// row and block, the sums of the nibbles times piece 0 are shifted left by
// 8 bits before vpdpbusd adds those of piece 1, and so on, so one int32 lane
// ends as the exact sum of 8 nibbles times Y (at most 8 * 15 * 127 * 2^16 <
// 2^30). It is converted to float once (rounded at 2^-24 of itself), times
// the lane's factor 1 / (e 256^(P-1)), times the group's scale. The biases
// keep their float dot product with the group sums of x, as in every GEMV
// here.
//
// Layout of a 4-bit block (kSplitBlockValues = 128 values, one 64-byte
// load of a weight row: 16 words, lane l holds word l = values 8l..8l+7).
// Byte i of the load holds value 2i in its low nibble and 2i + 1 in its
// high one, so the nibbles split into two byte vectors, even and odd
// values, and lane l of both sums the values of word l. Split x per block,
// for each piece p in turn:
//   64 bytes: piece p of x[2i], i < 64      (against the low nibbles)
//   64 bytes: piece p of x[2i + 1]          (against the high ones)
// then 16 floats: lane l's factor 1 / (e_l 256^(P-1)) (split_x_bytes in
// kernels.h). A lane never straddles a group (groups are 32, 64 or 128
// values), so lane l takes the scale of group (8l) / group size, as in the
// float word-major kernel.

#include "csrc/cpu/kernels.h"

#if (defined(__x86_64__) || defined(_M_X64)) && defined(__AVX512F__) &&        \
    defined(__AVX512BW__) && defined(__AVX512DQ__) && defined(__AVX512VL__) && \
    defined(__AVX512VNNI__)

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <cmath>

#include "csrc/cpu/kernels_x86.h"

namespace mlx_qmm::cpu {

namespace {

using V = Vec512;

constexpr int kSplitBits = 4;
constexpr int kBlockBytes = kSplitBlockValues * kSplitBits / 8; // 64
constexpr int kLanesPerBlock = kSplitBlockValues / kSplitLaneValues; // 16
static_assert(kLanesPerBlock == V::kLanes && kBlockBytes == 64);

// Lanes whose largest magnitude is below kNegligibleLane are written as
// zeros: 127 / max, and the last piece's factor, would leave float's
// normal range. split_x declines x whose largest magnitude is below
// kSmallestSplitX (the driver scales such x up first, kTinyActivation), so
// that those lanes weigh at most 2^-60 of the largest value, far below
// float32's rounding of the result.
constexpr float kNegligibleLane = 0x1p-100f;

// ----------------------------- splitting x -----------------------------

// Writes the pieces of 16 values (y = x e, |y| <= 127) as int8, 16 bytes a
// piece, pieces 2 * kBlockBytes apart (each piece's low-nibble half comes
// first, then its high one).
inline void store_pieces(__m512 y, int pieces, int8_t* out) {
  // y times a power of two is exact, and |Y| < 2^23 converts exactly.
  __m512i digits = _mm512_cvt_roundps_epi32(
      _mm512_mul_ps(y, _mm512_set1_ps(split_x_unit(pieces))),
      _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m512i half = _mm512_set1_epi32(kSplitDigitRadix / 2);
  const __m512i low_byte = _mm512_set1_epi32(kSplitDigitRadix - 1);
  for (int p = pieces - 1; p > 0; --p) {
    // The remainder in [-128, 128), then the rest, shifted down exactly.
    const __m512i digit = _mm512_sub_epi32(
        _mm512_and_si512(_mm512_add_epi32(digits, half), low_byte), half);
    _mm_storeu_si128(
        reinterpret_cast<__m128i*>(out + p * 2 * kBlockBytes),
        _mm512_cvtepi32_epi8(digit));
    digits =
        _mm512_srai_epi32(_mm512_sub_epi32(digits, digit), kSplitDigitBits);
  }
  _mm_storeu_si128(
      reinterpret_cast<__m128i*>(out), _mm512_cvtepi32_epi8(digits));
}

bool split_x_4bit(const float* x, int k, int pieces, void* out) {
  if (k % kSplitBlockValues != 0 || pieces < 2 || pieces > kMaxSplitPieces) {
    return false;
  }
  // The even values of 32 (lanes of one 128-bit quarter: one lane of 8
  // values, since value 2m of the chunk is in lane m / 4) and the odd ones.
  const __m512i even = _mm512_setr_epi32(
      0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
  const __m512 abs_mask = _mm512_castsi512_ps(_mm512_set1_epi32(0x7fffffff));
  __m512 largest = _mm512_setzero_ps();
  int8_t* block = static_cast<int8_t*>(out);
  const int64_t block_bytes = split_x_bytes(kSplitBlockValues, pieces);
  for (int v0 = 0; v0 < k; v0 += kSplitBlockValues, block += block_bytes) {
    float* factors = reinterpret_cast<float*>(block + pieces * 2 * kBlockBytes);
    for (int chunk = 0; chunk < kSplitBlockValues / 32; ++chunk) {
      const __m512 a = _mm512_loadu_ps(x + v0 + 32 * chunk);
      const __m512 b = _mm512_loadu_ps(x + v0 + 32 * chunk + 16);
      const __m512 lo = _mm512_permutex2var_ps(a, even, b);
      const __m512 hi = _mm512_permutex2var_ps(a, odd, b);
      // Largest magnitude of each lane of 8 values, in all four floats of
      // its 128-bit quarter.
      __m512 m = _mm512_max_ps(
          _mm512_and_ps(lo, abs_mask), _mm512_and_ps(hi, abs_mask));
      m = _mm512_max_ps(m, _mm512_permute_ps(m, 0xB1));
      m = _mm512_max_ps(m, _mm512_permute_ps(m, 0x4E));
      // max_ps drops a NaN operand: ask for them outright.
      const __mmask16 finite_lo = _mm512_cmp_ps_mask(
          _mm512_and_ps(lo, abs_mask), _mm512_set1_ps(INFINITY), _CMP_LT_OQ);
      const __mmask16 finite_hi = _mm512_cmp_ps_mask(
          _mm512_and_ps(hi, abs_mask), _mm512_set1_ps(INFINITY), _CMP_LT_OQ);
      if (finite_lo != 0xFFFF || finite_hi != 0xFFFF) {
        return false;
      }
      // Lanes carried (the others are zeros, factor and all).
      const __mmask16 carried =
          _mm512_cmp_ps_mask(m, _mm512_set1_ps(kNegligibleLane), _CMP_GE_OQ);
      m = _mm512_maskz_mov_ps(carried, m);
      largest = _mm512_max_ps(largest, m);
      const __m512 e = _mm512_maskz_div_ps(carried, _mm512_set1_ps(127.0f), m);
      int8_t* at = block + 16 * chunk;
      store_pieces(_mm512_mul_ps(lo, e), pieces, at);
      store_pieces(_mm512_mul_ps(hi, e), pieces, at + kBlockBytes);
      alignas(64) float lane_max[16];
      _mm512_store_ps(lane_max, m);
      for (int q = 0; q < 4; ++q) {
        // 1 / (e 256^(P-1)), e = 127 / max.
        factors[4 * chunk + q] =
            lane_max[4 * q] / 127.0f / split_x_unit(pieces);
      }
    }
  }
  return _mm512_reduce_max_ps(largest) >= kSmallestSplitX;
}

// ----------------------------- the GEMV -----------------------------

// Which weight rows a tile takes, and what it prefetches. A run of rows
// (one call) is read either
//   as streams: kSplitTileRows long runs of consecutive rows, a tile taking the
//     next row of each (rows j, j + r, j + 2r, j + 3r for a call of 4r
//     rows). Each core then reads four sequential streams hundreds of KiB
//     long, which the hardware prefetchers follow from page to page; a tile
//     asks for the same line of the stream's next row, into L1. With the
//     weights in DRAM this was 10-15% faster than tiles of consecutive rows
//     (bench/cpu_kernels.md), when the streams had at least 32 rows (with 8
//     it was slower);
//   or, for calls too short for that, as tiles of kSplitTileRows consecutive
//     rows, which ask for the same line of the next tile's rows into L1 (as
//     the float kernel's prefetch_next_tile) and of the tile after into L2
//     (5-6% faster than the first alone).
struct TileRows {
  int64_t row_step; // rows between a tile's rows
  int64_t next_bytes; // from a weight line to the next tile's line
  bool prefetch_far; // also the tile after the next, into L2
};

inline void prefetch_weights(const uint8_t* w, const TileRows& rows) {
  _mm_prefetch(reinterpret_cast<const char*>(w + rows.next_bytes), _MM_HINT_T0);
  if (rows.prefetch_far) {
    _mm_prefetch(
        reinterpret_cast<const char*>(w + 2 * rows.next_bytes), _MM_HINT_T2);
  }
}

// The scales of the groups of block `g` (its first group) of a row, lane l
// holding its group's. The scale type and the groups a block spans (1, 2 or
// 4) are template parameters, so that StoredRow's type tests fold away and
// the loop carries no branch.
template <FloatType SbType, int GroupsPerBlock>
inline __m512 block_scales(const void* row, int64_t g, __m512i lane_group) {
  const StoredRow stored(row, 0, SbType);
  if constexpr (GroupsPerBlock == 1) {
    return _mm512_set1_ps(stored.at(g));
  } else {
    return stored.template gather_first<V>(g, GroupsPerBlock, lane_group);
  }
}

// Rows j0 + c * rows.row_step of the call, c < Cols.
template <int Pieces, int Cols, FloatType SbType, int GroupsPerBlock>
void split_tile(const QuantizedGemvArgs& a, int j0, const TileRows& rows) {
  constexpr int kGroupValues = kSplitBlockValues / GroupsPerBlock;
  constexpr int64_t kXBlockBytes = split_x_bytes(kSplitBlockValues, Pieces);
  const __m512i low_nibbles = _mm512_set1_epi8(0x0F);
  alignas(64) int32_t lanes[kLanesPerBlock];
  for (int l = 0; l < kLanesPerBlock; ++l) {
    lanes[l] = l * kSplitLaneValues / kGroupValues;
  }
  const __m512i lane_group = _mm512_load_si512(lanes);
  const uint8_t* w[Cols];
  const char* scales[Cols];
  __m512 total[Cols];
  for (int c = 0; c < Cols; ++c) {
    const int64_t j = j0 + c * rows.row_step;
    w[c] = reinterpret_cast<const uint8_t*>(a.w + j * a.w_stride);
    scales[c] = static_cast<const char*>(a.scales) +
        j * a.sb_stride * float_type_size(SbType);
    total[c] = _mm512_setzero_ps();
  }
  const int8_t* xb = a.x_pieces;
  for (int64_t g = 0; g < a.k / kGroupValues;
       g += GroupsPerBlock, xb += kXBlockBytes) {
    __m512i x_even[Pieces];
    __m512i x_odd[Pieces];
    for (int p = 0; p < Pieces; ++p) {
      x_even[p] = _mm512_loadu_si512(xb + p * 2 * kBlockBytes);
      x_odd[p] = _mm512_loadu_si512(xb + p * 2 * kBlockBytes + kBlockBytes);
    }
    const __m512 factor = _mm512_loadu_ps(
        reinterpret_cast<const float*>(xb + Pieces * 2 * kBlockBytes));
    for (int c = 0; c < Cols; ++c) {
      prefetch_weights(w[c], rows);
      const __m512i bytes = _mm512_loadu_si512(w[c]);
      w[c] += kBlockBytes;
      const __m512i q_even = _mm512_and_si512(bytes, low_nibbles);
      const __m512i q_odd =
          _mm512_and_si512(_mm512_srli_epi16(bytes, 4), low_nibbles);
      // The nibbles times Y, exactly: Horner's rule over the digits.
      __m512i sum =
          _mm512_dpbusd_epi32(_mm512_setzero_si512(), q_even, x_even[0]);
      sum = _mm512_dpbusd_epi32(sum, q_odd, x_odd[0]);
      for (int p = 1; p < Pieces; ++p) {
        sum = _mm512_slli_epi32(sum, kSplitDigitBits);
        sum = _mm512_dpbusd_epi32(sum, q_even, x_even[p]);
        sum = _mm512_dpbusd_epi32(sum, q_odd, x_odd[p]);
      }
      total[c] = _mm512_fmadd_ps(
          _mm512_mul_ps(_mm512_cvtepi32_ps(sum), factor),
          block_scales<SbType, GroupsPerBlock>(scales[c], g, lane_group),
          total[c]);
    }
  }
  const int groups = a.k / kGroupValues;
  for (int c = 0; c < Cols; ++c) {
    const int64_t j = j0 + c * rows.row_step;
    const float bias_term = StoredRow(a.biases, j * a.sb_stride, SbType)
                                .template dot<V>(a.x_group_sums, groups);
    a.out[j] = _mm512_reduce_add_ps(total[c]) + bias_term;
  }
}

template <int Pieces, FloatType SbType, int GroupsPerBlock>
void split_gemv(const QuantizedGemvArgs& a) {
  // kSplitTileRows weight rows a tile, as the float kernel for one row of x:
  // their dot products share each block of x's pieces.
  const int64_t row_bytes = a.w_stride * 4;
  const int streams_rows = a.n / kSplitTileRows;
  int j = 0;
  if (streams_rows >= kSplitMinStreamRows) {
    const TileRows rows{streams_rows, row_bytes, false};
    for (; j < streams_rows; ++j) {
      split_tile<Pieces, kSplitTileRows, SbType, GroupsPerBlock>(a, j, rows);
    }
    j = kSplitTileRows * streams_rows;
  } else {
    const TileRows rows{1, kSplitTileRows * row_bytes, true};
    for (; j + kSplitTileRows <= a.n; j += kSplitTileRows) {
      split_tile<Pieces, kSplitTileRows, SbType, GroupsPerBlock>(a, j, rows);
    }
  }
  for (; j < a.n; ++j) {
    split_tile<Pieces, 1, SbType, GroupsPerBlock>(a, j, {1, row_bytes, false});
  }
}

template <int Pieces, FloatType SbType>
void split_gemv_typed(const QuantizedGemvArgs& a) {
  switch (kSplitBlockValues / a.group_size) {
    case 4:
      return split_gemv<Pieces, SbType, 4>(a);
    case 2:
      return split_gemv<Pieces, SbType, 2>(a);
    default:
      return split_gemv<Pieces, SbType, 1>(a);
  }
}

template <int Pieces>
void split_gemv_pieces(const QuantizedGemvArgs& a) {
  switch (a.sb_type) {
    case FloatType::Float16:
      return split_gemv_typed<Pieces, FloatType::Float16>(a);
    case FloatType::BFloat16:
      return split_gemv_typed<Pieces, FloatType::BFloat16>(a);
    default:
      return split_gemv_typed<Pieces, FloatType::Float32>(a);
  }
}

void quantized_gemv_4bit(const QuantizedGemvArgs& a) {
  // Groups of 32, 64 or 128 values (all that ops.cpp accepts): a block
  // holds 4, 2 or 1 of them (split_gemv_typed).
  const int per_block =
      a.group_size > 0 && kSplitBlockValues % a.group_size == 0
      ? kSplitBlockValues / a.group_size
      : 0;
  const bool whole_groups = per_block == 1 || per_block == 2 || per_block == 4;
  if (a.x_pieces == nullptr || a.rows != 1 || !whole_groups) {
    return avx512_kernels()->quantized_gemv[kSplitBits](a);
  }
  if (a.x_piece_count == 2) {
    return split_gemv_pieces<2>(a);
  }
  return split_gemv_pieces<3>(a);
}

} // namespace

const Kernels* avx512_vnni_kernels() {
  static const Kernels* table = []() -> const Kernels* {
    const Kernels* base = avx512_kernels();
    if (base == nullptr) {
      return nullptr;
    }
    static Kernels kernels = *base;
    kernels.name = "avx512_vnni";
    kernels.quantized_gemv[kSplitBits] = quantized_gemv_4bit;
    kernels.split_x[kSplitBits] = split_x_4bit;
    return &kernels;
  }();
  return table;
}

} // namespace mlx_qmm::cpu

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

#else

namespace mlx_qmm::cpu {

const Kernels* avx512_vnni_kernels() {
  return nullptr;
}

} // namespace mlx_qmm::cpu

#endif
