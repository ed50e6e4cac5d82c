// Copyright © 2026 mlx-qmm contributors.
//
// The NEON kernels (arm64, where Advanced SIMD is always present). Four
// float lanes a vector and 32 vector registers: the same schedule as the
// AVX2 kernels (kernels_avx2.cpp) with every 8-lane vector as two halves.
//
// Unpacking 8 quantized values: their `bits` bytes, as one little-endian
// 64-bit window; values 0-3 sit in its low 32 bits and values 4-7 in the 32
// bits from bit 4 * bits (at most bit 63 for 8 bits), so each half is one
// duplicate, one per-lane shift right (a negative vshlq count), one mask.
//
// Not run by our CI on arm64 hardware: tests/test_kernel_tables.py runs it
// under qemu-aarch64 against the scalar kernels where a cross compiler and
// qemu are installed.

#include "csrc/cpu/kernels.h"

#if defined(__aarch64__)

#include <arm_neon.h>

#include <cstring>
#include <type_traits>
#include <utility>

namespace mlx_qmm::cpu {

namespace {

// ----------------------------- conversions -----------------------------

inline float32x4_t load4(FloatType type, const void* src, int64_t i) {
  switch (type) {
    case FloatType::Float16:
      return vcvt_f32_f16(vreinterpret_f16_u16(
          vld1_u16(static_cast<const uint16_t*>(src) + i)));
    case FloatType::BFloat16:
      return vreinterpretq_f32_u32(
          vshll_n_u16(vld1_u16(static_cast<const uint16_t*>(src) + i), 16));
    default:
      return vld1q_f32(static_cast<const float*>(src) + i);
  }
}

// Element i of a float operand as float32.
inline float load1(FloatType type, const void* src, int64_t i) {
  switch (type) {
    case FloatType::Float16: {
      __fp16 h;
      std::memcpy(&h, static_cast<const uint16_t*>(src) + i, 2);
      return static_cast<float>(h);
    }
    case FloatType::BFloat16: {
      const uint32_t bits =
          static_cast<uint32_t>(static_cast<const uint16_t*>(src)[i]) << 16;
      float f;
      std::memcpy(&f, &bits, 4);
      return f;
    }
    default:
      return static_cast<const float*>(src)[i];
  }
}

// float16: the FPCR's default rounding, to nearest even, like MLX.
// bfloat16: round to nearest even and quiet NaN 0x7FC0, exactly as MLX.
inline void store4(FloatType type, void* dst, int64_t i, float32x4_t v) {
  switch (type) {
    case FloatType::Float16:
      vst1_u16(
          static_cast<uint16_t*>(dst) + i,
          vreinterpret_u16_f16(vcvt_f16_f32(v)));
      return;
    case FloatType::BFloat16: {
      const uint32x4_t bits = vreinterpretq_u32_f32(v);
      const uint32x4_t odd = vandq_u32(vshrq_n_u32(bits, 16), vdupq_n_u32(1));
      uint32x4_t rounded =
          vshrq_n_u32(vaddq_u32(vaddq_u32(bits, vdupq_n_u32(0x7FFF)), odd), 16);
      const uint32x4_t is_number = vceqq_f32(v, v);
      rounded = vbslq_u32(is_number, rounded, vdupq_n_u32(0x7FC0));
      vst1_u16(static_cast<uint16_t*>(dst) + i, vmovn_u32(rounded));
      return;
    }
    default:
      vst1q_f32(static_cast<float*>(dst) + i, v);
  }
}

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
    for (; i + 4 <= cols; i += 4) {
      vst1q_f32(out + i, load4(type, row, i));
    }
    if (i < cols) {
      alignas(16) char tail[16] = {};
      std::memcpy(tail, row + i * size, (cols - i) * size);
      alignas(16) float converted[4];
      vst1q_f32(converted, load4(type, tail, 0));
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
  for (; i + 4 <= n; i += 4) {
    float32x4_t v = vld1q_f32(acc + i);
    if (bias) {
      v = vaddq_f32(v, vld1q_f32(bias + i));
    }
    store4(type, dst, i, v);
  }
  if (i < n) {
    alignas(16) float sum[4] = {};
    for (int j = i; j < n; ++j) {
      sum[j - i] = acc[j] + (bias ? bias[j] : 0.0f);
    }
    alignas(16) char converted[16];
    store4(type, converted, 0, vld1q_f32(sum));
    std::memcpy(static_cast<char*>(dst) + i * size, converted, (n - i) * size);
  }
}

// ----------------------------- unpacking -----------------------------

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

struct Eight {
  float32x4_t lo, hi;
};

// The 8 values of a row whose `Bits` bytes start at `bytes`, as floats.
template <int Bits>
inline Eight unpack8(const uint8_t* bytes) {
  const uint64_t window = load_le<Bits>(bytes);
  const int32x4_t shifts = {0, -Bits, -2 * Bits, -3 * Bits};
  const uint32x4_t mask = vdupq_n_u32((1u << Bits) - 1u);
  auto half = [&](uint32_t word) {
    return vcvtq_f32_u32(vandq_u32(vshlq_u32(vdupq_n_u32(word), shifts), mask));
  };
  return {
      half(static_cast<uint32_t>(window)),
      half(static_cast<uint32_t>(window >> (4 * Bits)))};
}

// sum_i a[i] * b[i], i < n, with a of `type` starting at element `first`.
inline float
dot(FloatType type, const void* a, int64_t first, const float* b, int n) {
  float32x4_t acc = vdupq_n_f32(0.0f);
  int i = 0;
  for (; i + 4 <= n; i += 4) {
    acc = vfmaq_f32(acc, load4(type, a, first + i), vld1q_f32(b + i));
  }
  float sum = vaddvq_f32(acc);
  for (; i < n; ++i) {
    sum += load1(type, a, first + i) * b[i];
  }
  return sum;
}

// ----------------------------- quantized GEMV -----------------------------

// Rows x Cols tile, as in kernels_avx2.cpp: per group accumulate x * q,
// then total += acc * scale; biases through the group sums of x.
template <int Bits, int Rows, int Cols>
void quantized_gemv_tile(const QuantizedGemvArgs& a, int j0) {
  const int groups = a.k / a.group_size;
  const uint8_t* w[Cols];
  for (int c = 0; c < Cols; ++c) {
    w[c] = reinterpret_cast<const uint8_t*>(a.w + (j0 + c) * a.w_stride);
  }
  float32x4_t total[Rows][Cols];
  for (int r = 0; r < Rows; ++r) {
    for (int c = 0; c < Cols; ++c) {
      total[r][c] = vdupq_n_f32(0.0f);
    }
  }
  const float* x = a.x;
  for (int g = 0; g < groups; ++g) {
    float32x4_t acc[Rows][Cols];
    for (int r = 0; r < Rows; ++r) {
      for (int c = 0; c < Cols; ++c) {
        acc[r][c] = vdupq_n_f32(0.0f);
      }
    }
    for (int i = 0; i < a.group_size; i += 8) {
      float32x4_t x_lo[Rows], x_hi[Rows];
      for (int r = 0; r < Rows; ++r) {
        x_lo[r] = vld1q_f32(x + r * a.x_stride);
        x_hi[r] = vld1q_f32(x + r * a.x_stride + 4);
      }
      x += 8;
      for (int c = 0; c < Cols; ++c) {
        const Eight q = unpack8<Bits>(w[c]);
        w[c] += Bits;
        for (int r = 0; r < Rows; ++r) {
          acc[r][c] = vfmaq_f32(acc[r][c], x_lo[r], q.lo);
          acc[r][c] = vfmaq_f32(acc[r][c], x_hi[r], q.hi);
        }
      }
    }
    for (int c = 0; c < Cols; ++c) {
      const float s = load1(a.sb_type, a.scales, (j0 + c) * a.sb_stride + g);
      for (int r = 0; r < Rows; ++r) {
        total[r][c] = vfmaq_n_f32(total[r][c], acc[r][c], s);
      }
    }
  }
  for (int r = 0; r < Rows; ++r) {
    for (int c = 0; c < Cols; ++c) {
      a.out[r * a.out_stride + j0 + c] = vaddvq_f32(total[r][c]) +
          dot(a.sb_type,
              a.biases,
              (j0 + c) * a.sb_stride,
              a.x_group_sums + r * a.sums_stride,
              groups);
    }
  }
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
inline Eight dequantize8(const uint8_t* w, float s, float b) {
  const Eight q = unpack8<Bits>(w);
  const float32x4_t bias = vdupq_n_f32(b);
  return {vfmaq_n_f32(bias, q.lo, s), vfmaq_n_f32(bias, q.hi, s)};
}

template <int Bits>
void dequantize(const DequantizeArgs& a) {
  const int first_group = a.first / a.group_size;
  for (int r = 0; r < a.rows; ++r) {
    const uint8_t* w = reinterpret_cast<const uint8_t*>(a.w + r * a.w_stride);
    float* out = a.out + r * a.out_stride;
    for (int i = 0; i < a.count; i += 8) {
      const int v = a.first + i;
      const int g = v / a.group_size - first_group;
      const Eight d = dequantize8<Bits>(
          w + v / 8 * Bits,
          a.scales[r * a.sb_stride + g],
          a.biases[r * a.sb_stride + g]);
      vst1q_f32(out + i, d.lo);
      vst1q_f32(out + i + 4, d.hi);
    }
  }
}

// Four rows at a time: 4 values of each, transposed in registers (two
// rounds of zips) and stored as 4 panel rows.
template <int Bits>
void dequantize_panel(const DequantizeArgs& a) {
  const int first_group = a.first / a.group_size;
  for (int r0 = 0; r0 < kPanelColumns; r0 += 4) {
    for (int i = 0; i < a.count; i += 8) {
      const int v = a.first + i;
      const int g = v / a.group_size - first_group;
      Eight rows[4];
      for (int r = 0; r < 4; ++r) {
        const int row = r0 + r;
        rows[r] = row < a.rows
            ? dequantize8<Bits>(
                  reinterpret_cast<const uint8_t*>(a.w + row * a.w_stride) +
                      v / 8 * Bits,
                  a.scales[row * a.sb_stride + g],
                  a.biases[row * a.sb_stride + g])
            : Eight{vdupq_n_f32(0.0f), vdupq_n_f32(0.0f)};
      }
      for (int h = 0; h < 2; ++h) {
        const float32x4_t r0v = h ? rows[0].hi : rows[0].lo;
        const float32x4_t r1v = h ? rows[1].hi : rows[1].lo;
        const float32x4_t r2v = h ? rows[2].hi : rows[2].lo;
        const float32x4_t r3v = h ? rows[3].hi : rows[3].lo;
        const float32x4_t t0 = vzip1q_f32(r0v, r2v);
        const float32x4_t t1 = vzip2q_f32(r0v, r2v);
        const float32x4_t t2 = vzip1q_f32(r1v, r3v);
        const float32x4_t t3 = vzip2q_f32(r1v, r3v);
        float* out = a.out + (i + 4 * h) * kPanelColumns + r0;
        vst1q_f32(out, vzip1q_f32(t0, t2));
        vst1q_f32(out + kPanelColumns, vzip2q_f32(t0, t2));
        vst1q_f32(out + 2 * kPanelColumns, vzip1q_f32(t1, t3));
        vst1q_f32(out + 3 * kPanelColumns, vzip2q_f32(t1, t3));
      }
    }
  }
}

// ----------------------------- dense -----------------------------

template <FloatType Type, int Rows, int Cols>
void dense_gemv_tile(const DenseGemvArgs& a, int j0) {
  float32x4_t acc[Rows][Cols];
  for (int r = 0; r < Rows; ++r) {
    for (int c = 0; c < Cols; ++c) {
      acc[r][c] = vdupq_n_f32(0.0f);
    }
  }
  const char* w[Cols];
  for (int c = 0; c < Cols; ++c) {
    w[c] = static_cast<const char*>(a.w) +
        (j0 + c) * a.w_stride * float_type_size(Type);
  }
  int k = 0;
  for (; k + 4 <= a.k; k += 4) {
    float32x4_t xv[Rows];
    for (int r = 0; r < Rows; ++r) {
      xv[r] = vld1q_f32(a.x + r * a.x_stride + k);
    }
    for (int c = 0; c < Cols; ++c) {
      const float32x4_t wv = load4(Type, w[c], k);
      for (int r = 0; r < Rows; ++r) {
        acc[r][c] = vfmaq_f32(acc[r][c], xv[r], wv);
      }
    }
  }
  for (int r = 0; r < Rows; ++r) {
    for (int c = 0; c < Cols; ++c) {
      float sum = vaddvq_f32(acc[r][c]);
      if (k < a.k) {
        alignas(16) float tail[4];
        to_float(
            Type, w[c] + k * float_type_size(Type), 0, 1, a.k - k, tail, 0);
        for (int kk = k; kk < a.k; ++kk) {
          sum += a.x[r * a.x_stride + kk] * tail[kk - k];
        }
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
      return dense_gemv_rows<Type, 2, 4>(a);
    case 3:
      return dense_gemv_rows<Type, 3, 4>(a);
    default:
      return dense_gemv_rows<Type, 4, 4>(a);
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
  for (int k = 0; k < depth; ++k) {
    for (int j = 0; j < kPanelColumns; ++j) {
      panel[k * kPanelColumns + j] = j < rows ? src[j * src_stride + k] : 0.0f;
    }
  }
}

// Rows x 16 outputs in 4 * Rows accumulators (24 of the 32 registers at
// Rows = 6): per k, four panel loads and Rows broadcasts feed 4 * Rows FMAs.
template <int Rows>
void gemm_tile_rows(
    const float* x,
    const float* panel,
    int depth,
    float* c,
    bool accumulate) {
  float32x4_t acc[Rows][4];
  auto each_row = [&]<typename F>(F&& f) {
    [&]<int... R>(std::integer_sequence<int, R...>) {
      (f(std::integral_constant<int, R>{}), ...);
    }(std::make_integer_sequence<int, Rows>{});
  };
  each_row([&](auto r) {
    for (int q = 0; q < 4; ++q) {
      acc[r][q] = vdupq_n_f32(0.0f);
    }
  });
  for (int k = 0; k < depth; ++k) {
    const float32x4_t b0 = vld1q_f32(panel);
    const float32x4_t b1 = vld1q_f32(panel + 4);
    const float32x4_t b2 = vld1q_f32(panel + 8);
    const float32x4_t b3 = vld1q_f32(panel + 12);
    panel += kPanelColumns;
    each_row([&](auto r) {
      const float xv = x[r];
      acc[r][0] = vfmaq_n_f32(acc[r][0], b0, xv);
      acc[r][1] = vfmaq_n_f32(acc[r][1], b1, xv);
      acc[r][2] = vfmaq_n_f32(acc[r][2], b2, xv);
      acc[r][3] = vfmaq_n_f32(acc[r][3], b3, xv);
    });
    x += kMicroRows;
  }
  each_row([&](auto r) {
    float* out = c + r * kPanelColumns;
    for (int q = 0; q < 4; ++q) {
      if (accumulate) {
        acc[r][q] = vaddq_f32(acc[r][q], vld1q_f32(out + 4 * q));
      }
      vst1q_f32(out + 4 * q, acc[r][q]);
    }
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

// Twelve independent 4-lane FMA chains.
double fma_peak(int64_t iterations) {
  constexpr int kChains = 12;
  float32x4_t acc[kChains];
  for (int i = 0; i < kChains; ++i) {
    acc[i] = vdupq_n_f32(static_cast<float>(i));
  }
  const float32x4_t a = vdupq_n_f32(0.999f);
  const float32x4_t b = vdupq_n_f32(0.001f);
  for (int64_t it = 0; it < iterations; ++it) {
    for (int i = 0; i < kChains; ++i) {
      acc[i] = vfmaq_f32(b, acc[i], a);
    }
  }
  float32x4_t sum = acc[0];
  for (int i = 1; i < kChains; ++i) {
    sum = vaddq_f32(sum, acc[i]);
  }
  volatile float sink = vaddvq_f32(sum);
  (void)sink;
  return 2.0 * 4 * kChains * static_cast<double>(iterations);
}

const Kernels kNeonKernels = {
    "neon",
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
    {},
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

const Kernels* neon_kernels() {
  return &kNeonKernels;
}

} // namespace mlx_qmm::cpu

#else

namespace mlx_qmm::cpu {

const Kernels* neon_kernels() {
  return nullptr;
}

} // namespace mlx_qmm::cpu

#endif
