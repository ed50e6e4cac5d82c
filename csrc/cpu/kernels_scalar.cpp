// Copyright © 2026 mlx-qmm contributors.
//
// The portable kernels: plain C++ for any CPU, compiled for the baseline
// instruction set (the compiler may vectorise the simple loops with it).
// They compute exactly what the SIMD tables compute, in the same order per
// group, so that every level agrees to rounding; MLX_QMM_CPU_ISA=scalar
// forces them (tests do).

#include <cstring>

#include "csrc/cpu/dequantize_block.h"
#include "csrc/cpu/kernels.h"
#include "mlx/types/half_types.h"

namespace mlx_qmm::cpu {

namespace {

namespace mx = mlx::core;

template <typename Half>
float half_to_float(const void* src, int64_t i) {
  Half h;
  std::memcpy(&h, static_cast<const uint16_t*>(src) + i, sizeof(h));
  return static_cast<float>(h);
}

template <typename Half>
void float_to_half(float v, void* dst, int64_t i) {
  const Half h(v);
  std::memcpy(static_cast<uint16_t*>(dst) + i, &h, sizeof(h));
}

float load_as_float(FloatType type, const void* src, int64_t i) {
  switch (type) {
    case FloatType::Float16:
      return half_to_float<mx::float16_t>(src, i);
    case FloatType::BFloat16:
      return half_to_float<mx::bfloat16_t>(src, i);
    default:
      return static_cast<const float*>(src)[i];
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
  for (int r = 0; r < rows; ++r) {
    for (int i = 0; i < cols; ++i) {
      dst[r * dst_stride + i] = load_as_float(type, src, r * src_stride + i);
    }
  }
}

void from_float(
    FloatType type,
    const float* acc,
    const float* bias,
    void* dst,
    int n) {
  for (int i = 0; i < n; ++i) {
    const float v = acc[i] + (bias ? bias[i] : 0.0f);
    switch (type) {
      case FloatType::Float16:
        float_to_half<mx::float16_t>(v, dst, i);
        break;
      case FloatType::BFloat16:
        float_to_half<mx::bfloat16_t>(v, dst, i);
        break;
      default:
        static_cast<float*>(dst)[i] = v;
    }
  }
}

// Eight independent partial sums, combined pairwise (the compiler may not
// reassociate one running sum itself).
float dot(const float* a, const float* b, int n) {
  constexpr int kLanes = 8;
  float partial[kLanes] = {};
  int i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    for (int l = 0; l < kLanes; ++l) {
      partial[l] += a[i + l] * b[i + l];
    }
  }
  float tail = 0;
  for (; i < n; ++i) {
    tail += a[i] * b[i];
  }
  return ((partial[0] + partial[1]) + (partial[2] + partial[3])) +
      ((partial[4] + partial[5]) + (partial[6] + partial[7])) + tail;
}

// Per group: s * sum_k x_k q_k, plus the biases through the group sums of x
// (see kernels_avx2.cpp); the integers are unpacked a 32-value block at a
// time (every group is whole blocks).
template <int Bits>
void quantized_gemv(const QuantizedGemvArgs& a) {
  const int groups = a.k / a.group_size;
  float q[kValuesPerBlock];
  for (int j = 0; j < a.n; ++j) {
    const uint32_t* w = a.w + j * a.w_stride;
    const int64_t sb_row = j * a.sb_stride;
    for (int r = 0; r < a.rows; ++r) {
      const float* x = a.x + r * a.x_stride;
      float total = 0;
      for (int g = 0; g < groups; ++g) {
        float acc = 0;
        for (int v = g * a.group_size; v < (g + 1) * a.group_size;
             v += kValuesPerBlock) {
          dequantize_block<Bits, float>(
              w + v / kValuesPerBlock * block_words(Bits), 1, 1.0f, 0.0f, q, 1);
          acc += dot(x + v, q, kValuesPerBlock);
        }
        total += load_as_float(a.sb_type, a.scales, sb_row + g) * acc;
      }
      float bias_term = 0;
      for (int g = 0; g < groups; ++g) {
        bias_term += load_as_float(a.sb_type, a.biases, sb_row + g) *
            a.x_group_sums[r * a.sums_stride + g];
      }
      a.out[r * a.out_stride + j] = total + bias_term;
    }
  }
}

// Value i of a packed row (straddling words read through a 64-bit window).
template <int Bits>
uint32_t unpack_value(const uint32_t* row, int i) {
  const int bit = i * Bits;
  const int word = bit / kWordBits;
  const int shift = bit % kWordBits;
  uint64_t window = row[word];
  if (shift + Bits > kWordBits) {
    window |= static_cast<uint64_t>(row[word + 1]) << kWordBits;
  }
  return static_cast<uint32_t>(window >> shift) & max_quantized_value(Bits);
}

template <int Bits>
void dequantize(const DequantizeArgs& a) {
  const int first_group = a.first / a.group_size;
  for (int r = 0; r < a.rows; ++r) {
    const uint32_t* w = a.w + r * a.w_stride;
    for (int i = 0; i < a.count; ++i) {
      const int v = a.first + i;
      const int g = v / a.group_size - first_group;
      a.out[r * a.out_stride + i] = a.scales[r * a.sb_stride + g] *
              static_cast<float>(unpack_value<Bits>(w, v)) +
          a.biases[r * a.sb_stride + g];
    }
  }
}

template <int Bits>
void dequantize_panel(const DequantizeArgs& a) {
  const int first_group = a.first / a.group_size;
  for (int i = 0; i < a.count; ++i) {
    const int v = a.first + i;
    const int g = v / a.group_size - first_group;
    for (int r = 0; r < kPanelColumns; ++r) {
      a.out[i * kPanelColumns + r] = r < a.rows
          ? a.scales[r * a.sb_stride + g] *
                  static_cast<float>(
                      unpack_value<Bits>(a.w + r * a.w_stride, v)) +
              a.biases[r * a.sb_stride + g]
          : 0.0f;
    }
  }
}

void dense_gemv(const DenseGemvArgs& a) {
  float w[1024];
  for (int j = 0; j < a.n; ++j) {
    float sums[kGemvMaxRows] = {};
    // The row in float32, a slice of at most 1024 values at a time.
    for (int k0 = 0; k0 < a.k; k0 += 1024) {
      const int count = a.k - k0 < 1024 ? a.k - k0 : 1024;
      const int size = float_type_size(a.w_type);
      to_float(
          a.w_type,
          static_cast<const char*>(a.w) + (j * a.w_stride + k0) * size,
          0,
          1,
          count,
          w,
          0);
      for (int r = 0; r < a.rows; ++r) {
        sums[r] += dot(a.x + r * a.x_stride + k0, w, count);
      }
    }
    for (int r = 0; r < a.rows; ++r) {
      a.out[r * a.out_stride + j] = sums[r];
    }
  }
}

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

void gemm_tile(
    const float* x,
    int rows,
    const float* panel,
    int depth,
    float* c,
    bool accumulate) {
  for (int r = 0; r < rows; ++r) {
    float acc[kPanelColumns];
    for (int j = 0; j < kPanelColumns; ++j) {
      acc[j] = accumulate ? c[r * kPanelColumns + j] : 0.0f;
    }
    for (int k = 0; k < depth; ++k) {
      const float xv = x[k * kMicroRows + r];
      for (int j = 0; j < kPanelColumns; ++j) {
        acc[j] += xv * panel[k * kPanelColumns + j];
      }
    }
    for (int j = 0; j < kPanelColumns; ++j) {
      c[r * kPanelColumns + j] = acc[j];
    }
  }
}

// Eight independent scalar chains (the compiler may keep them in one
// baseline vector register, which is then this level's real width).
double fma_peak(int64_t iterations) {
  constexpr int kChains = 8;
  float acc[kChains];
  for (int i = 0; i < kChains; ++i) {
    acc[i] = static_cast<float>(i);
  }
  for (int64_t it = 0; it < iterations; ++it) {
    for (int i = 0; i < kChains; ++i) {
      acc[i] = acc[i] * 0.999f + 0.001f;
    }
  }
  volatile float sink = acc[0];
  for (int i = 1; i < kChains; ++i) {
    sink = sink + acc[i];
  }
  return 2.0 * kChains * static_cast<double>(iterations);
}

const Kernels kScalarKernels = {
    "scalar",
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

const Kernels& scalar_kernels() {
  return kScalarKernels;
}

} // namespace mlx_qmm::cpu
