// Copyright © 2026 mlx-qmm contributors.
//
// Checks the SIMD tables of the CPU kernels (csrc/cpu/kernels.h) that this
// machine runs against the scalar one, function by function, on random
// inputs at ragged sizes, without MLX: tests/test_kernel_tables.py builds it
// natively (AVX2 and AVX-512 where the CPU has them) and for arm64, running
// the NEON table under qemu-aarch64 (no arm64 machine runs our CI). Prints
// one line per mismatch and a summary per table, and exits non-zero if
// there is any mismatch.

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "csrc/cpu/kernels.h"

using namespace mlx_qmm::cpu;

namespace {

std::mt19937 rng(12345);
int checks = 0;
int failures = 0;

std::vector<float> normal(size_t n) {
  std::normal_distribution<float> d;
  std::vector<float> v(n);
  for (auto& e : v) {
    e = d(rng);
  }
  return v;
}

std::vector<uint32_t> words(size_t n) {
  std::vector<uint32_t> v(n);
  for (auto& e : v) {
    e = rng();
  }
  return v;
}

// ||a - b|| / ||b|| <= tol, else a failure named `what`.
void expect_close(
    const std::string& what,
    const float* a,
    const float* b,
    size_t n,
    double tol) {
  ++checks;
  double num = 0, den = 0;
  for (size_t i = 0; i < n; ++i) {
    num += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
    den += double(b[i]) * b[i];
  }
  const double err = std::sqrt(num / (den > 0 ? den : 1));
  if (!(err <= tol)) {
    ++failures;
    std::printf(
        "FAIL %s: relative error %.3e > %.1e\n", what.c_str(), err, tol);
  }
}

void expect_equal_bytes(
    const std::string& what,
    const void* a,
    const void* b,
    size_t n) {
  ++checks;
  if (std::memcmp(a, b, n) != 0) {
    ++failures;
    std::printf("FAIL %s: results differ\n", what.c_str());
  }
}

const char* type_name(FloatType t) {
  return t == FloatType::Float32 ? "f32"
      : t == FloatType::Float16  ? "f16"
                                 : "bf16";
}

constexpr FloatType kTypes[] = {
    FloatType::Float32,
    FloatType::Float16,
    FloatType::BFloat16};
constexpr int kBits[] = {1, 2, 3, 4, 5, 6, 8};

// `values` as stored in `type` (rounded by the reference conversion), as the
// GEMVs read scales and biases.
std::vector<char>
stored(const Kernels& ref, FloatType type, const std::vector<float>& values) {
  std::vector<char> out(values.size() * float_type_size(type));
  ref.from_float(
      type,
      values.data(),
      nullptr,
      out.data(),
      static_cast<int>(values.size()));
  return out;
}

// Conversions both ways must round identically (to nearest even).
void check_conversions(const Kernels& simd, const Kernels& ref) {
  for (FloatType type : kTypes) {
    for (int n : {1, 3, 4, 7, 8, 9, 31, 100}) {
      auto values = normal(2 * n);
      values[0] = NAN;
      std::vector<uint16_t> a(2 * n), b(2 * n);
      simd.from_float(type, values.data(), values.data() + n, a.data(), n);
      ref.from_float(type, values.data(), values.data() + n, b.data(), n);
      const std::string name = std::string("from_float ") + type_name(type) +
          " n=" + std::to_string(n);
      if (type == FloatType::Float32) {
        std::vector<float> fa(n), fb(n);
        simd.from_float(type, values.data(), nullptr, fa.data(), n);
        ref.from_float(type, values.data(), nullptr, fb.data(), n);
        expect_equal_bytes(name, fa.data() + 1, fb.data() + 1, (n - 1) * 4);
        continue;
      }
      // Element 0 is NaN: both must give a NaN (payloads may differ).
      ++checks;
      std::vector<float> back(2);
      ref.to_float(type, a.data(), 0, 1, 1, back.data(), 0);
      ref.to_float(type, b.data(), 0, 1, 1, back.data() + 1, 0);
      if (!std::isnan(back[0]) || !std::isnan(back[1])) {
        ++failures;
        std::printf("FAIL %s: NaN not kept\n", name.c_str());
      }
      expect_equal_bytes(name, a.data() + 1, b.data() + 1, (n - 1) * 2);
      std::vector<float> ca(2 * n), cb(2 * n);
      // Two rows of n, source rows n + 1 apart... within 2n halves.
      const int rows = n > 1 ? 2 : 1;
      const int64_t stride = n > 1 ? n / 2 + 1 : 0;
      const int cols = n > 1 ? n / 2 : 1;
      simd.to_float(type, a.data(), stride, rows, cols, ca.data(), cols);
      ref.to_float(type, a.data(), stride, rows, cols, cb.data(), cols);
      expect_equal_bytes(
          std::string("to_float ") + type_name(type) +
              " n=" + std::to_string(n),
          ca.data() + 1,
          cb.data() + 1,
          (rows * cols - 1) * 4);
    }
  }
}

void check_quantized(const Kernels& simd, const Kernels& ref) {
  for (int bits : kBits) {
    for (int group_size : {32, 64, 128}) {
      // 17 groups reach a 1-bit word-major block of 16 words (512 values)
      // at every group size, with a tail.
      for (int k :
           {group_size, 3 * group_size, 5 * group_size, 17 * group_size}) {
        const int n = 7, groups = k / group_size;
        const int64_t w_stride = k * bits / 32 + 3; // padded rows
        auto w = words(n * w_stride);
        auto scales = normal(n * groups), biases = normal(n * groups);
        for (int rows = 1; rows <= kGemvMaxRows; ++rows) {
          auto x = normal(rows * k);
          std::vector<float> sums(rows * groups, 0.0f);
          for (int r = 0; r < rows; ++r) {
            for (int i = 0; i < k; ++i) {
              sums[r * groups + i / group_size] += x[r * k + i];
            }
          }
          std::vector<float> arranged = x;
          if (auto arrange = simd.arrange_gemv_x[bits]) {
            for (int r = 0; r < rows; ++r) {
              arrange(x.data() + r * k, k, arranged.data() + r * k);
            }
          }
          // Scales and biases as stored: float32, or rounded to 16 bits
          // (the kernels read those as they are).
          for (FloatType sb_type : kTypes) {
            const std::vector<char> stored_s = stored(ref, sb_type, scales);
            const std::vector<char> stored_b = stored(ref, sb_type, biases);
            std::vector<float> a(rows * n), b(rows * n);
            QuantizedGemvArgs args{
                arranged.data(),
                k,
                rows,
                sums.data(),
                groups,
                w.data(),
                w_stride,
                stored_s.data(),
                stored_b.data(),
                groups,
                sb_type,
                n,
                k,
                group_size,
                a.data(),
                n};
            simd.quantized_gemv[bits](args);
            args.x = x.data();
            args.out = b.data();
            ref.quantized_gemv[bits](args);
            expect_close(
                "quantized_gemv bits=" + std::to_string(bits) + " g=" +
                    std::to_string(group_size) + " k=" + std::to_string(k) +
                    " rows=" + std::to_string(rows) + " scales " +
                    type_name(sb_type),
                a.data(),
                b.data(),
                a.size(),
                1e-5);
          }
        }
        // Dequantizing a window of values [first, first + count).
        const int first = k > group_size ? group_size : 0;
        const int count = k - first;
        for (int rows : {1, 5, kPanelColumns}) {
          const int m = rows < n ? rows : n;
          std::vector<float> a(m * count), b(m * count);
          DequantizeArgs args{
              w.data(),
              w_stride,
              m,
              first,
              count,
              scales.data() + first / group_size,
              biases.data() + first / group_size,
              groups,
              group_size,
              a.data(),
              count};
          simd.dequantize[bits](args);
          args.out = b.data();
          ref.dequantize[bits](args);
          const std::string what = " bits=" + std::to_string(bits) +
              " g=" + std::to_string(group_size) + " k=" + std::to_string(k) +
              " rows=" + std::to_string(m);
          expect_close("dequantize" + what, a.data(), b.data(), a.size(), 1e-6);
          std::vector<float> pa(count * kPanelColumns, NAN),
              pb(count * kPanelColumns, NAN);
          args.out = pa.data();
          simd.dequantize_panel[bits](args);
          args.out = pb.data();
          ref.dequantize_panel[bits](args);
          expect_close(
              "dequantize_panel" + what, pa.data(), pb.data(), pa.size(), 1e-6);
        }
      }
    }
  }
}

void check_dense(const Kernels& simd, const Kernels& ref) {
  for (FloatType type : kTypes) {
    for (int k : {1, 7, 8, 33, 300}) {
      const int n = 9;
      const int64_t w_stride = k + 2;
      auto wf = normal(n * w_stride);
      std::vector<uint16_t> wh(n * w_stride);
      const void* w = wf.data();
      if (type != FloatType::Float32) {
        ref.from_float(type, wf.data(), nullptr, wh.data(), n * w_stride);
        w = wh.data();
      }
      for (int rows = 1; rows <= kGemvMaxRows; ++rows) {
        auto x = normal(rows * k);
        std::vector<float> a(rows * n), b(rows * n);
        DenseGemvArgs args{
            x.data(), k, rows, type, w, w_stride, n, k, a.data(), n};
        simd.dense_gemv(args);
        args.out = b.data();
        ref.dense_gemv(args);
        expect_close(
            std::string("dense_gemv ") + type_name(type) +
                " k=" + std::to_string(k) + " rows=" + std::to_string(rows),
            a.data(),
            b.data(),
            a.size(),
            1e-5);
      }
    }
  }
  for (int rows : {1, 9, kPanelColumns}) {
    for (int depth : {1, 8, 13}) {
      auto src = normal(rows * (depth + 1));
      std::vector<float> a(depth * kPanelColumns, NAN),
          b(depth * kPanelColumns, NAN);
      simd.transpose_panel(src.data(), depth + 1, rows, depth, a.data());
      ref.transpose_panel(src.data(), depth + 1, rows, depth, b.data());
      expect_equal_bytes(
          "transpose_panel rows=" + std::to_string(rows) +
              " depth=" + std::to_string(depth),
          a.data(),
          b.data(),
          a.size() * 4);
    }
  }
  for (int rows = 1; rows <= kMicroRows; ++rows) {
    for (int depth : {1, 5, 40}) {
      for (bool accumulate : {false, true}) {
        auto x = normal(depth * kMicroRows);
        auto panel = normal(depth * kPanelColumns);
        auto start = normal(kMicroRows * kPanelColumns);
        std::vector<float> a = start, b = start;
        simd.gemm_tile(
            x.data(), rows, panel.data(), depth, a.data(), accumulate);
        ref.gemm_tile(
            x.data(), rows, panel.data(), depth, b.data(), accumulate);
        expect_close(
            "gemm_tile rows=" + std::to_string(rows) + " depth=" +
                std::to_string(depth) + (accumulate ? " accumulate" : ""),
            a.data(),
            b.data(),
            a.size(),
            1e-5);
      }
    }
  }
  ++checks;
  if (!(simd.fma_peak(1000) > 0)) {
    ++failures;
    std::printf("FAIL fma_peak\n");
  }
}

// The dot-product GEMV of tables with split_x[bits] (AVX-512 VNNI): one
// row of x as int8 pieces, against the scalar GEMV on x itself, with the
// error the pieces allow (kernels_avx512_vnni.cpp: about 2^-24 of each
// lane's largest value for three pieces, 2^-16 for two). x has a lane of
// zeros, a lane of 1e-35 (written as zeros) and one lane with an outlier
// 10^4 times its neighbours, whose small values the pieces carry at the
// lane's resolution. And split_x must refuse what it cannot carry.
void check_split_gemv(const Kernels& simd, const Kernels& ref) {
  for (int bits : kBits) {
    const auto split = simd.split_x[bits];
    if (!split) {
      continue;
    }
    for (int group_size : {32, 64, 128}) {
      // n: a tile of 4 rows and 3 more; four streams of the fewest rows
      // that make streams, and 3 more.
      for (int k : {kSplitBlockValues, 3 * kSplitBlockValues, 4096}) {
        const int n = k == 4096 ? kSplitTileRows * kSplitMinStreamRows + 3
                                : kSplitTileRows + 3;
        const int groups = k / group_size;
        const int64_t w_stride = k * bits / 32 + 16; // padded rows
        auto w = words(n * w_stride);
        auto scales = normal(n * groups), biases = normal(n * groups);
        auto x = normal(k);
        for (int i = 0; i < kSplitLaneValues; ++i) {
          x[kSplitLaneValues + i] = 0.0f;
          x[3 * kSplitLaneValues + i] = 1e-35f;
        }
        x[k - 3] *= 1e4f;
        std::vector<float> sums(groups, 0.0f);
        for (int i = 0; i < k; ++i) {
          sums[i / group_size] += x[i];
        }
        for (int pieces : {2, 3}) {
          std::vector<int8_t> split_x(split_x_bytes(k, pieces));
          ++checks;
          if (!split(x.data(), k, pieces, split_x.data())) {
            ++failures;
            std::printf("FAIL split_x k=%d pieces=%d refused\n", k, pieces);
            continue;
          }
          for (FloatType sb_type : kTypes) {
            const std::vector<char> stored_s = stored(ref, sb_type, scales);
            const std::vector<char> stored_b = stored(ref, sb_type, biases);
            std::vector<float> a(n, NAN), b(n, NAN);
            QuantizedGemvArgs args{
                x.data(),
                k,
                1,
                sums.data(),
                groups,
                w.data(),
                w_stride,
                stored_s.data(),
                stored_b.data(),
                groups,
                sb_type,
                n,
                k,
                group_size,
                b.data(),
                n};
            ref.quantized_gemv[bits](args);
            args.out = a.data();
            args.x_pieces = split_x.data();
            args.x_piece_count = pieces;
            simd.quantized_gemv[bits](args);
            expect_close(
                "split gemv bits=" + std::to_string(bits) + " g=" +
                    std::to_string(group_size) + " k=" + std::to_string(k) +
                    " pieces=" + std::to_string(pieces) + " scales " +
                    type_name(sb_type),
                a.data(),
                b.data(),
                a.size(),
                pieces == 3 ? 1e-6 : 1e-4);
          }
        }
      }
    }
    // What split_x must refuse: k past whole blocks, values that are not
    // finite, x whose largest magnitude is below 2^-40.
    const int k = 2 * kSplitBlockValues;
    std::vector<int8_t> out(split_x_bytes(k, kMaxSplitPieces));
    auto x = normal(k);
    auto refuses =
        [&](const std::string& what, const std::vector<float>& v, int length) {
          ++checks;
          if (split(v.data(), length, kMaxSplitPieces, out.data())) {
            ++failures;
            std::printf("FAIL split_x accepted %s\n", what.c_str());
          }
        };
    refuses("k = 1.5 blocks", x, k - kSplitBlockValues / 2);
    for (float bad : {NAN, INFINITY, -INFINITY}) {
      auto v = x;
      v[k - 1] = bad;
      refuses("a non-finite value " + std::to_string(bad), v, k);
    }
    auto tiny = x;
    for (auto& v : tiny) {
      v *= 1e-20f;
    }
    refuses("x of 1e-20", tiny, k);
  }
}

// The SIMD tables built in and runnable here (the library's isa.cpp asks
// the same questions).
std::vector<const Kernels*> simd_tables() {
  std::vector<const Kernels*> tables;
  if (neon_kernels()) {
    tables.push_back(neon_kernels());
  }
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  const bool avx2 = __builtin_cpu_supports("avx2") &&
      __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
  if (avx2 && avx2_kernels()) {
    tables.push_back(avx2_kernels());
  }
  if (avx2 && avx512_kernels() && __builtin_cpu_supports("avx512f") &&
      __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512dq") &&
      __builtin_cpu_supports("avx512vl")) {
    tables.push_back(avx512_kernels());
    if (avx512_vnni_kernels() && __builtin_cpu_supports("avx512vnni")) {
      tables.push_back(avx512_vnni_kernels());
    }
  }
#endif
  return tables;
}

} // namespace

int main() {
  const std::vector<const Kernels*> tables = simd_tables();
  if (tables.empty()) {
    std::printf("no SIMD table in this build\n");
    return 2;
  }
  const Kernels& ref = scalar_kernels();
  int total_failures = 0;
  for (const Kernels* simd : tables) {
    checks = 0;
    failures = 0;
    check_conversions(*simd, ref);
    check_quantized(*simd, ref);
    check_split_gemv(*simd, ref);
    check_dense(*simd, ref);
    std::printf(
        "%s against scalar: %d checks, %d failures\n",
        simd->name,
        checks,
        failures);
    total_failures += failures;
  }
  return total_failures ? 1 : 0;
}
