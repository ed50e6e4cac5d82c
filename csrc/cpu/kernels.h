// Copyright © 2026 mlx-qmm contributors.
//
// The CPU compute kernels, one table per instruction-set level (isa.h).
//
// The driver (matmul_driver.cpp) owns everything about MLX arrays: strides,
// batches, broadcasting, dtypes of strided operands, threads and cache
// blocking. It hands these kernels plain contiguous float32 rows, packed
// quantized rows with their scales and biases (as stored for the
// matrix-vector products, already in float32 for the others), and panels, so
// that each instruction-set level implements only the few loops where the time
// goes. This header depends on nothing but <cstdint>: the AVX2 and AVX-512
// translation units are compiled with their instruction-set flags and must not
// instantiate any inline function that other translation units share (the
// linker would keep one copy, possibly the AVX-512 one, for the whole library).

#pragma once

#include <cstdint>

namespace mlx_qmm::cpu {

// How a float operand is stored; 16-bit types are passed as raw bits.
enum class FloatType : int { Float32, Float16, BFloat16 };

inline constexpr int float_type_size(FloatType type) {
  return type == FloatType::Float32 ? 4 : 2;
}

// The GEMM micro-kernel's register tile: kMicroRows rows of x times
// kPanelColumns output columns, accumulated over a panel of weights laid out
// panel[k * kPanelColumns + j] = W[n0 + j, k0 + k].
inline constexpr int kPanelColumns = 16;
inline constexpr int kMicroRows = 6;

// Products with at most this many rows of x (per weight matrix) take the
// matrix-vector kernels, which read the weights once and never unpack them
// into memory; more rows amortise the unpacking into panels (GEMM path).
inline constexpr int kGemvMaxRows = 4;

// out[r * out_stride + j] = sum_k x[r, k] * (s[j, g] * q[j, k] + b[j, g]),
// g = k / group_size, for r < rows <= kGemvMaxRows and j < n. Row j of the
// packed weights starts at w + j * w_stride (words, K * bits / 32 of them);
// x_group_sums[r * sums_stride + g] is the sum of x[r, k] over group g,
// which carries the biases: sum_k x b = sum_g b[j, g] * x_group_sums[g].
// x is in the layout arrange_gemv_x[bits] gives, where that is not null.
// Scales and biases are read as they are stored, of sb_type: a GEMV reads
// each once, and converting 16-bit ones to float32 before each call made
// the bfloat16 GEMV 8-13% slower at 4096 x 4096, 4 bits
// (bench/cpu_kernels.md).
struct QuantizedGemvArgs {
  const float* x;
  int64_t x_stride;
  int rows;
  const float* x_group_sums;
  int64_t sums_stride;
  const uint32_t* w;
  int64_t w_stride;
  const void* scales; // [n][groups] of sb_type, row stride sb_stride
  const void* biases;
  int64_t sb_stride;
  FloatType sb_type;
  int n;
  int k; // a multiple of group_size
  int group_size;
  float* out;
  int64_t out_stride;
  // One row of x as int8 pieces (Kernels::split_x), or null. Where a table
  // has split_x[bits], its quantized_gemv[bits] reads x from these instead
  // of `x` when rows is 1.
  const int8_t* x_pieces = nullptr;
  int x_piece_count = 0;
};

// x split into int8 pieces for dot-product GEMVs (kernels_avx512_vnni.cpp
// explains the form): per lane of kSplitLaneValues values with its own
// scale e = 127 / max, Y = round(x e split_x_unit(P)) written as P signed
// base-kSplitDigitRadix digits, in blocks of kSplitBlockValues values (one
// 64-byte load of a 4-bit weight row). Three pieces carry float32's
// precision; two, that of float16 and bfloat16.
inline constexpr int kSplitBlockValues = 128;
inline constexpr int kSplitLaneValues = 8;
inline constexpr int kMaxSplitPieces = 3;
inline constexpr int kSplitDigitBits = 8;
inline constexpr int kSplitDigitRadix = 1 << kSplitDigitBits;
// 256^(pieces - 1): the weight of the top digit.
inline constexpr float split_x_unit(int pieces) {
  return static_cast<float>(int64_t{1} << (kSplitDigitBits * (pieces - 1)));
}
// The dot-product GEMV's tiles of kSplitTileRows weight rows read a call's
// rows as kSplitTileRows streams when each gets at least
// kSplitMinStreamRows rows (kernels_avx512_vnni.cpp).
inline constexpr int kSplitTileRows = 4;
inline constexpr int kSplitMinStreamRows = 32;
// split_x declines x whose largest magnitude is below this.
inline constexpr float kSmallestSplitX = 0x1p-40f;

// Bytes of split x for `values` values (a multiple of kSplitBlockValues):
// per block, the pieces (one byte a value each) and each lane's factor (a
// float).
inline constexpr int64_t split_x_bytes(int64_t values, int pieces) {
  return values / kSplitBlockValues *
      (pieces * kSplitBlockValues +
       kSplitBlockValues / kSplitLaneValues * int64_t{sizeof(float)});
}

// out[r * out_stride + i] = s[r, g] * q[r, first + i] + b[r, g] for
// r < rows, i < count, with g = (first + i) / group_size - first /
// group_size (scales and biases start at the group of `first`). `first` and
// `count` are multiples of 8.
struct DequantizeArgs {
  const uint32_t* w;
  int64_t w_stride;
  int rows;
  int first;
  int count;
  const float* scales;
  const float* biases;
  int64_t sb_stride;
  int group_size;
  float* out;
  int64_t out_stride;
};

// out[r * out_stride + j] = sum_k x[r, k] * w[j, k] for r < rows <=
// kGemvMaxRows, j < n, any k; w of `w_type`, rows w_stride elements apart
// and contiguous (converted as they are read: the weights stream from
// memory once).
struct DenseGemvArgs {
  const float* x;
  int64_t x_stride;
  int rows;
  FloatType w_type;
  const void* w;
  int64_t w_stride;
  int n;
  int k;
  float* out;
  int64_t out_stride;
};

struct Kernels {
  const char* name;

  // dst[r * dst_stride + i] = float(src[r * src_stride + i]), r < rows,
  // i < cols (strides in elements).
  void (*to_float)(
      FloatType type,
      const void* src,
      int64_t src_stride,
      int rows,
      int cols,
      float* dst,
      int64_t dst_stride);

  // dst[i] = type(acc[i] + bias[i]) for i < n; bias may be null.
  void (*from_float)(
      FloatType type,
      const float* acc,
      const float* bias,
      void* dst,
      int n);

  // Indexed by bits (1, 2, 3, 4, 5, 6, 8); other entries are null.
  void (*quantized_gemv[9])(const QuantizedGemvArgs& args);
  // The layout of the rows of x that quantized_gemv[bits] reads, if it is
  // not x as it is (null): out = arrange(x), k values a row. The group sums
  // stay those of x.
  void (*arrange_gemv_x[9])(const float* x, int k, float* out);
  void (*dequantize[9])(const DequantizeArgs& args);
  // The same values straight into a panel: out[i * kPanelColumns + r] for
  // i < count and r < rows <= kPanelColumns, zero for the other columns
  // (out_stride is not used).
  void (*dequantize_panel[9])(const DequantizeArgs& args);

  void (*dense_gemv)(const DenseGemvArgs& args);

  // panel[k * kPanelColumns + j] = src[j * src_stride + k] for j < rows,
  // k < depth; zero for rows <= j < kPanelColumns.
  void (*transpose_panel)(
      const float* src,
      int64_t src_stride,
      int rows,
      int depth,
      float* panel);

  // c[r * kPanelColumns + j] (+)= sum_k x_panel[k * kMicroRows + r] *
  // panel[k * kPanelColumns + j] for r < rows <= kMicroRows, k < depth;
  // overwrites c unless `accumulate`. x_panel holds kMicroRows rows of x
  // interleaved (rows past `rows` are ignored), so that both operands
  // stream from one contiguous run each.
  void (*gemm_tile)(
      const float* x_panel,
      int rows,
      const float* panel,
      int depth,
      float* c,
      bool accumulate);

  // Runs `iterations` rounds of independent register FMAs, the widest this
  // level issues, and returns the floating-point operations done: the
  // compute ceiling the benchmark holds our times against.
  double (*fma_peak)(int64_t iterations);

  // Writes one row of x (k values) as `pieces` int8 pieces, in
  // split_x_bytes(k, pieces) bytes at out, for quantized_gemv[bits] to read
  // through QuantizedGemvArgs::x_pieces. Lanes whose largest magnitude is
  // below 2^-100 are written as zeros. Returns false (out then holds
  // nothing usable) where x cannot be split within its precision: k not a
  // multiple of kSplitBlockValues, a value that is not finite, or x's
  // largest magnitude below kSmallestSplitX (the driver scales such x up
  // first); then the GEMV takes x as it is. Null for most levels and bits.
  bool (*split_x[9])(const float* x, int k, int pieces, void* out) = {};
};

// The tables; null where this build or machine has no such level (isa.cpp
// decides which one runs).
const Kernels& scalar_kernels();
const Kernels* avx2_kernels();
const Kernels* avx512_kernels();
const Kernels* avx512_vnni_kernels();
const Kernels* neon_kernels();

} // namespace mlx_qmm::cpu
