// Copyright © 2026 mlx-qmm contributors.

#include "csrc/cpu/matmul_driver.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "csrc/cpu/operand_layout.h"
#include "csrc/cpu/thread_pool.h"
#include "csrc/quantized_format.h"

namespace mlx_qmm::cpu {

namespace {

FloatType float_type(mx::Dtype dtype) {
  switch (dtype) {
    case mx::float16:
      return FloatType::Float16;
    case mx::bfloat16:
      return FloatType::BFloat16;
    default:
      return FloatType::Float32;
  }
}

// A per-thread scratch buffer of at least `size` elements. Each use site has
// its own (the thread pool's threads keep theirs between calls).
template <typename E>
E* scratch(std::vector<E>& buffer, size_t size) {
  if (buffer.size() < size) {
    buffer.resize(size);
  }
  return buffer.data();
}

// Largest |x[i]|, i < n; NaN if any is NaN (then nothing is scaled). Eight
// running maxima, so that the compiler vectorises it without reassociating
// anything.
float largest_magnitude(const float* x, int64_t n) {
  float lanes[8] = {};
  bool nan = false;
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    for (int l = 0; l < 8; ++l) {
      const float a = std::fabs(x[i + l]);
      nan |= a != a;
      lanes[l] = a > lanes[l] ? a : lanes[l];
    }
  }
  for (; i < n; ++i) {
    const float a = std::fabs(x[i]);
    nan |= a != a;
    lanes[0] = a > lanes[0] ? a : lanes[0];
  }
  float largest = 0.0f;
  for (float l : lanes) {
    largest = l > largest ? l : largest;
  }
  return nan ? NAN : largest;
}

// sum of x[i], i < n (a group: a multiple of 8), in eight running sums: a
// single chain of dependent adds cost the GEMV 2 us of its 4096 values.
float sum_of(const float* x, int n) {
  float lanes[8] = {};
  for (int i = 0; i < n; i += 8) {
    for (int l = 0; l < 8; ++l) {
      lanes[l] += x[i + l];
    }
  }
  return ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) +
      ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]));
}

// dst[i] = float(src[i * stride]) for i < n; src points at element 0.
// Contiguous runs go through the kernels; strided ones are gathered here.
void gather_to_float(
    const Kernels& kernels,
    FloatType type,
    const void* src,
    int64_t stride,
    int n,
    float* dst) {
  if (stride == 1) {
    kernels.to_float(type, src, 0, 1, n, dst, 0);
    return;
  }
  const int size = float_type_size(type);
  for (int i = 0; i < n; ++i) {
    kernels.to_float(
        type,
        static_cast<const char*>(src) + i * stride * size,
        0,
        1,
        1,
        dst + i,
        0);
  }
}

// Element (r, c) of one matrix (batch) of an operand, as a byte pointer.
struct MatrixView {
  const char* data;
  int64_t row_stride; // elements
  int64_t col_stride;
  int element_size;

  MatrixView(const mx::array& a, int64_t batch)
      : data(
            static_cast<const char*>(a.data<void>()) +
            batch_offset(a, batch) * a.itemsize()),
        row_stride(a.strides()[a.ndim() - 2]),
        col_stride(a.strides()[a.ndim() - 1]),
        element_size(static_cast<int>(a.itemsize())) {}

  const void* at(int64_t r, int64_t c) const {
    return data + (r * row_stride + c * col_stride) * element_size;
  }
};

// ----------------------------- weight sources -----------------------------
//
// What the schedules need from the weights, whatever their storage:
//   prepare_gemv(x, rows)   once per GEMV, with the float32 rows of x
//                           (which it may scale by 2^e); returns e, the
//                           results to take 2^-e;
//   gemv(batch, x, rows, n0, columns, out, out_stride)
//                           out[r, j] = sum_k x[r, k] W[n0 + j, k];
//   pack(batch, n0, columns, k0, depth, panel)
//                           panel[k][j] = W[n0 + j, k0 + k], zero for
//                           columns <= j < kPanelColumns.

// Affine quantized W: `w`, `scales`, `biases` hold rows along the packed
// axis (W's rows for x @ W.T, its columns for x @ W).
class QuantizedWeights {
 public:
  QuantizedWeights(
      const Kernels& kernels,
      const std::vector<mx::array>& inputs,
      int group_size,
      int bits,
      bool transpose,
      int k)
      : kernels_(kernels),
        w_(inputs[1]),
        scales_(inputs[2]),
        biases_(inputs[3]),
        type_(float_type(inputs[2].dtype())),
        x_type_(float_type(inputs[0].dtype())),
        group_size_(group_size),
        bits_(bits),
        transpose_(transpose),
        k_(k),
        words_per_row_(static_cast<int>(w_.shape(-1))) {}

  // The group sums of x and, if the kernel wants one, its layout of x
  // (int8 pieces, or floats rearranged). Activations whose largest
  // magnitude is below kTinyActivation are first scaled up by 2^e, in place
  // (x is the schedule's own float32 copy); e is returned, and the results
  // take 2^-e, which undoes it exactly. The word-major kernels multiply x
  // by up to 2^-28 (kernels_x86.h) and the int8 pieces divide by the
  // largest value: below 2^-96 or so either would lose bits.
  int prepare_gemv(float* x, int rows) {
    const int64_t size = static_cast<int64_t>(rows) * k_;
    const float largest = largest_magnitude(x, size);
    int exponent = 0;
    if (largest > 0.0f && largest < kTinyActivation) {
      // Up to 2^149 for the smallest subnormal: past float's range as a
      // factor, so each value's exponent moves instead (exact).
      exponent = -std::ilogb(largest);
      for (int64_t i = 0; i < size; ++i) {
        x[i] = std::ldexp(x[i], exponent);
      }
    }
    const int groups = k_ / group_size_;
    float* sums = scratch(group_sums_, static_cast<size_t>(rows) * groups);
    for (int r = 0; r < rows; ++r) {
      for (int g = 0; g < groups; ++g) {
        sums[r * groups + g] = sum_of(
            x + static_cast<int64_t>(r) * k_ + g * group_size_, group_size_);
      }
    }
    gemv_x_ = x;
    x_pieces_ = nullptr;
    if (auto split = kernels_.split_x[bits_]; split && rows == 1) {
      // float16 and bfloat16 x carry at most 11 bits: two pieces hold them
      // (kernels_avx512_vnni.cpp).
      piece_count_ = x_type_ == FloatType::Float32 ? kMaxSplitPieces : 2;
      int8_t* pieces = scratch(split_x_, split_x_bytes(k_, piece_count_));
      if (split(x, k_, piece_count_, pieces)) {
        x_pieces_ = pieces;
        return exponent;
      }
    }
    if (auto arrange = kernels_.arrange_gemv_x[bits_]) {
      float* arranged = scratch(arranged_x_, static_cast<size_t>(rows) * k_);
      for (int r = 0; r < rows; ++r) {
        arrange(
            x + static_cast<int64_t>(r) * k_,
            k_,
            arranged + static_cast<int64_t>(r) * k_);
      }
      gemv_x_ = arranged;
    }
    return exponent;
  }

  // Scales and biases with contiguous rows of one stride (the usual
  // layout): the GEMV reads them in place, whatever their type.
  static bool scales_in_place(const MatrixView& sv, const MatrixView& bv) {
    return sv.col_stride == 1 && bv.col_stride == 1 &&
        sv.row_stride == bv.row_stride;
  }

  // One call of the kernel for the whole run of columns when it reads the
  // weights, scales and biases in place (the usual layout; the dot-product
  // GEMV reads a long run as streams, kernels_avx512_vnni.cpp); otherwise
  // kGemvColumnsPerCall at a time, converted first.
  void gemv(
      int64_t batch,
      const float* /* x: prepare_gemv's */,
      int rows,
      int n0,
      int columns,
      float* out,
      int64_t out_stride) const {
    const bool in_place =
        scales_in_place(
            MatrixView(scales_, batch), MatrixView(biases_, batch)) &&
        MatrixView(w_, batch).col_stride == 1;
    const int per_call = in_place ? columns : kGemvColumnsPerCall;
    for (int j = 0; j < columns; j += per_call) {
      gemv_call(
          batch,
          rows,
          n0 + j,
          std::min(per_call, columns - j),
          out + j,
          out_stride);
    }
  }

  void gemv_call(
      int64_t batch,
      int rows,
      int n0,
      int columns,
      float* out,
      int64_t out_stride) const {
    thread_local std::vector<float> sb;
    thread_local std::vector<uint32_t> words;
    const int groups = k_ / group_size_;
    // Scales and biases of another layout go to float32 first.
    const MatrixView sv(scales_, batch), bv(biases_, batch);
    const void* s;
    const void* b;
    int64_t sb_stride;
    FloatType sb_type = type_;
    if (scales_in_place(sv, bv)) {
      s = sv.at(n0, 0);
      b = bv.at(n0, 0);
      sb_stride = sv.row_stride;
    } else {
      sb_type = FloatType::Float32;
      float* converted = scratch(sb, 2 * static_cast<size_t>(columns) * groups);
      load_scales(
          batch,
          n0,
          columns,
          0,
          groups,
          converted,
          converted + static_cast<size_t>(columns) * groups);
      s = converted;
      b = converted + static_cast<size_t>(columns) * groups;
      sb_stride = groups;
    }
    int64_t w_stride;
    const uint32_t* w = packed_rows(batch, n0, columns, words, w_stride);
    kernels_.quantized_gemv[bits_](
        {gemv_x_,
         k_,
         rows,
         group_sums_.data(),
         groups,
         w,
         w_stride,
         s,
         b,
         sb_stride,
         sb_type,
         columns,
         k_,
         group_size_,
         out,
         out_stride,
         x_pieces_,
         piece_count_});
  }

  void pack(int64_t batch, int n0, int columns, int k0, int depth, float* panel)
      const {
    thread_local std::vector<float> sb;
    thread_local std::vector<uint32_t> words;
    int64_t w_stride;
    if (transpose_) {
      // W's rows n0.. are packed rows: `depth` values of each, unpacked
      // across the panel.
      const int groups = depth / group_size_;
      float* s = scratch(sb, 2 * static_cast<size_t>(columns) * groups);
      float* b = s + static_cast<size_t>(columns) * groups;
      load_scales(batch, n0, columns, k0 / group_size_, groups, s, b);
      const uint32_t* w = packed_rows(batch, n0, columns, words, w_stride);
      kernels_.dequantize_panel[bits_](
          {w,
           w_stride,
           columns,
           k0,
           depth,
           s,
           b,
           groups,
           group_size_,
           panel,
           kPanelColumns});
    } else {
      // W's rows k0.. are packed rows holding columns n0..; the panel is a
      // block of them as they are. N is a multiple of the group size (and so
      // of kPanelColumns): a panel is always full and within one group.
      float* s = scratch(sb, 2 * static_cast<size_t>(depth));
      float* b = s + depth;
      const int group = n0 / group_size_;
      const MatrixView sv(scales_, batch), bv(biases_, batch);
      gather_to_float(
          kernels_, type_, sv.at(k0, group), sv.row_stride, depth, s);
      gather_to_float(
          kernels_, type_, bv.at(k0, group), bv.row_stride, depth, b);
      const uint32_t* w = packed_rows(batch, k0, depth, words, w_stride);
      kernels_.dequantize[bits_](
          {w,
           w_stride,
           depth,
           n0,
           columns,
           s,
           b,
           1,
           group_size_,
           panel,
           kPanelColumns});
    }
  }

 private:
  // Scales and biases of packed rows [r0, r0 + count), groups [g0, g0 +
  // groups), into s and b as [count][groups].
  void load_scales(
      int64_t batch,
      int64_t r0,
      int count,
      int g0,
      int groups,
      float* s,
      float* b) const {
    const MatrixView sv(scales_, batch), bv(biases_, batch);
    if (sv.col_stride == 1 && bv.col_stride == 1) {
      // Contiguous rows (a GEMM's panels; a GEMV reads these in place
      // unless the two row strides differ): one conversion call per operand
      // for all the rows, since a call per row of 64 groups cost about a
      // tenth of a float16/bfloat16 GEMV's time in call overhead.
      kernels_.to_float(
          type_, sv.at(r0, g0), sv.row_stride, count, groups, s, groups);
      kernels_.to_float(
          type_, bv.at(r0, g0), bv.row_stride, count, groups, b, groups);
      return;
    }
    for (int r = 0; r < count; ++r) {
      gather_to_float(
          kernels_,
          type_,
          sv.at(r0 + r, g0),
          sv.col_stride,
          groups,
          s + r * groups);
      gather_to_float(
          kernels_,
          type_,
          bv.at(r0 + r, g0),
          bv.col_stride,
          groups,
          b + r * groups);
    }
  }

  // Packed rows [r0, r0 + count) with contiguous words: in place, or
  // gathered into `buffer` when w is strided along its last axis.
  const uint32_t* packed_rows(
      int64_t batch,
      int64_t r0,
      int count,
      std::vector<uint32_t>& buffer,
      int64_t& stride) const {
    const MatrixView wv(w_, batch);
    const uint32_t* first = static_cast<const uint32_t*>(wv.at(r0, 0));
    if (wv.col_stride == 1) {
      stride = wv.row_stride;
      return first;
    }
    uint32_t* out =
        scratch(buffer, static_cast<size_t>(count) * words_per_row_);
    for (int r = 0; r < count; ++r) {
      for (int c = 0; c < words_per_row_; ++c) {
        out[static_cast<int64_t>(r) * words_per_row_ + c] =
            *static_cast<const uint32_t*>(wv.at(r0 + r, c));
      }
    }
    stride = words_per_row_;
    return out;
  }

  const Kernels& kernels_;
  const mx::array& w_;
  const mx::array& scales_;
  const mx::array& biases_;
  FloatType type_;
  FloatType x_type_;
  int group_size_;
  int bits_;
  bool transpose_;
  int k_;
  int words_per_row_;
  std::vector<float> group_sums_; // [rows][groups] of the current GEMV
  std::vector<float> arranged_x_;
  const float* gemv_x_ = nullptr; // x as the GEMV kernel reads it
  std::vector<int8_t> split_x_;
  const int8_t* x_pieces_ = nullptr; // or x in int8 pieces (rows 1)
  int piece_count_ = 0;
};

// Dense W, read through its strides (transposed, sliced and broadcast
// weights need no copy).
class DenseWeights {
 public:
  DenseWeights(
      const Kernels& kernels,
      const mx::array& w,
      bool transpose,
      int k)
      : kernels_(kernels),
        w_(w),
        type_(float_type(w.dtype())),
        transpose_(transpose),
        k_(k) {}

  int prepare_gemv(float*, int) {
    return 0;
  }

  void gemv(
      int64_t batch,
      const float* x,
      int rows,
      int n0,
      int columns,
      float* out,
      int64_t out_stride) const {
    const View v = view(batch);
    if (v.k_stride == 1) {
      kernels_.dense_gemv(
          {x,
           k_,
           rows,
           type_,
           v.at(n0, 0),
           v.n_stride,
           columns,
           k_,
           out,
           out_stride});
      return;
    }
    // Strided along k: gather a few weight rows at a time into float32.
    constexpr int kTileRows = 4;
    thread_local std::vector<float> tile;
    float* t = scratch(tile, static_cast<size_t>(kTileRows) * k_);
    for (int j = 0; j < columns; j += kTileRows) {
      const int count = std::min(kTileRows, columns - j);
      load_rows(v, n0 + j, count, 0, k_, t);
      kernels_.dense_gemv(
          {x,
           k_,
           rows,
           FloatType::Float32,
           t,
           k_,
           count,
           k_,
           out + j,
           out_stride});
    }
  }

  void pack(int64_t batch, int n0, int columns, int k0, int depth, float* panel)
      const {
    const View v = view(batch);
    if (v.k_stride == 1) {
      // Rows of W (along k) are contiguous: transpose them into the panel.
      if (type_ == FloatType::Float32) {
        kernels_.transpose_panel(
            static_cast<const float*>(v.at(n0, k0)),
            v.n_stride,
            columns,
            depth,
            panel);
        return;
      }
      thread_local std::vector<float> rows;
      float* r = scratch(rows, static_cast<size_t>(columns) * depth);
      load_rows(v, n0, columns, k0, depth, r);
      kernels_.transpose_panel(r, depth, columns, depth, panel);
      return;
    }
    // Columns of W (along n) are contiguous (x @ W) or nothing is: panel
    // row k is W[n0.., k0 + k] as it is.
    if (v.n_stride == 1) {
      kernels_.to_float(
          type_,
          v.at(n0, k0),
          v.k_stride,
          depth,
          columns,
          panel,
          kPanelColumns);
    } else {
      for (int k = 0; k < depth; ++k) {
        gather_to_float(
            kernels_,
            type_,
            v.at(n0, k0 + k),
            v.n_stride,
            columns,
            panel + k * kPanelColumns);
      }
    }
    if (columns < kPanelColumns) {
      for (int k = 0; k < depth; ++k) {
        std::fill_n(
            panel + k * kPanelColumns + columns, kPanelColumns - columns, 0.0f);
      }
    }
  }

 private:
  // W as [N, K]: element (n, k).
  struct View {
    const char* data;
    int64_t n_stride;
    int64_t k_stride;
    int element_size;

    const void* at(int64_t n, int64_t k) const {
      return data + (n * n_stride + k * k_stride) * element_size;
    }
  };

  View view(int64_t batch) const {
    const MatrixView m(w_, batch);
    return transpose_
        ? View{m.data, m.row_stride, m.col_stride, m.element_size}
        : View{m.data, m.col_stride, m.row_stride, m.element_size};
  }

  // dst[j][k] = W[n0 + j, k0 + k] in float32, j < count, k < depth.
  void load_rows(
      const View& v,
      int n0,
      int count,
      int k0,
      int depth,
      float* dst) const {
    for (int j = 0; j < count; ++j) {
      gather_to_float(
          kernels_,
          type_,
          v.at(n0 + j, k0),
          v.k_stride,
          depth,
          dst + static_cast<int64_t>(j) * depth);
    }
  }

  const Kernels& kernels_;
  const mx::array& w_;
  FloatType type_;
  bool transpose_;
  int k_;
};

// ----------------------------- schedules -----------------------------

// The output rows, the float32 bias and the way rows of x become float32.
struct MatmulIo {
  const Kernels& kernels;
  const mx::array& x;
  RowLayout x_rows;
  FloatType type;
  char* out;
  int64_t out_row_bytes;
  const float* bias; // [n] or null

  // Rows [first, first + count) of x (flattened) into dst as [count][k].
  void load_x(int64_t first, int count, int k, float* dst) const {
    const char* base = static_cast<const char*>(x.data<void>());
    for (int r = 0; r < count; ++r) {
      gather_to_float(
          kernels,
          type,
          base + x_rows.offset(first + r) * x.itemsize(),
          x_rows.column_stride,
          k,
          dst + static_cast<int64_t>(r) * k);
    }
  }

  // Output row `row`, columns [n0, n0 + count) = acc + bias.
  void store(int64_t row, int n0, int count, const float* acc) const {
    kernels.from_float(
        type,
        acc,
        bias ? bias + n0 : nullptr,
        out + row * out_row_bytes +
            static_cast<int64_t>(n0) * float_type_size(type),
        count);
  }
};

template <typename Weights>
void gemv_schedule(
    const MatmulIo& io,
    const MatmulShape& shape,
    int64_t batch,
    Weights& weights) {
  const int rows = static_cast<int>(shape.rows_per_batch);
  const int64_t first_row = batch * shape.rows_per_batch;
  thread_local std::vector<float> x_buffer;
  float* x = scratch(x_buffer, static_cast<size_t>(rows) * shape.k);
  io.load_x(first_row, rows, shape.k, x);
  const int x_exponent = weights.prepare_gemv(x, rows);
  const int per_task = gemv_columns_per_task(shape.n, concurrency());
  const int64_t tasks = (shape.n + per_task - 1) / per_task;
  parallel_for(tasks, [&](int64_t t) {
    thread_local std::vector<float> acc_buffer;
    const int n0 = static_cast<int>(t) * per_task;
    const int columns = std::min(per_task, shape.n - n0);
    float* acc = scratch(acc_buffer, static_cast<size_t>(rows) * columns);
    weights.gemv(batch, x, rows, n0, columns, acc, columns);
    if (x_exponent != 0) {
      for (int64_t i = 0; i < static_cast<int64_t>(rows) * columns; ++i) {
        acc[i] = std::ldexp(acc[i], -x_exponent);
      }
    }
    for (int r = 0; r < rows; ++r) {
      io.store(first_row + r, n0, columns, acc + r * columns);
    }
  });
}

// x_block [rows][k] into micro-panels: tile t holds rows t * kMicroRows..
// as x_panels[t][kk][r] (kk < k, r < kMicroRows, zero past the last row).
void pack_micro_panels(const float* x_block, int rows, int k, float* x_panels) {
  for (int t = 0; t * kMicroRows < rows; ++t) {
    float* tile = x_panels + static_cast<int64_t>(t) * k * kMicroRows;
    for (int r = 0; r < kMicroRows; ++r) {
      const int row = t * kMicroRows + r;
      const float* src = x_block + static_cast<int64_t>(row) * k;
      for (int kk = 0; kk < k; ++kk) {
        tile[kk * kMicroRows + r] = row < rows ? src[kk] : 0.0f;
      }
    }
  }
}

template <typename Weights>
void gemm_schedule(
    const MatmulIo& io,
    const MatmulShape& shape,
    int64_t batch,
    Weights& weights) {
  const int k = shape.k;
  const int64_t panels = (shape.n + kPanelColumns - 1) / kPanelColumns;
  thread_local std::vector<float> x_buffer;
  thread_local std::vector<float> x_panel_buffer;
  for (int64_t r0 = 0; r0 < shape.rows_per_batch; r0 += kRowBlock) {
    const int rows = static_cast<int>(
        std::min<int64_t>(kRowBlock, shape.rows_per_batch - r0));
    const int tiles = (rows + kMicroRows - 1) / kMicroRows;
    const int64_t first_row = batch * shape.rows_per_batch + r0;
    float* x = scratch(x_buffer, static_cast<size_t>(rows) * k);
    float* x_panels =
        scratch(x_panel_buffer, static_cast<size_t>(tiles) * kMicroRows * k);
    parallel_for(tiles, [&](int64_t t) {
      const int row = static_cast<int>(t) * kMicroRows;
      const int count = std::min(kMicroRows, rows - row);
      float* block = x + static_cast<int64_t>(row) * k;
      io.load_x(first_row + row, count, k, block);
      pack_micro_panels(
          block, count, k, x_panels + static_cast<int64_t>(t) * k * kMicroRows);
    });
    parallel_for(panels, [&](int64_t p) {
      thread_local std::vector<float> panel_buffer;
      thread_local std::vector<float> c_buffer;
      const int n0 = static_cast<int>(p) * kPanelColumns;
      const int columns = std::min(kPanelColumns, shape.n - n0);
      float* panel = scratch(
          panel_buffer,
          static_cast<size_t>(std::min(k, kDepthBlock)) * kPanelColumns);
      float* c = scratch(c_buffer, static_cast<size_t>(rows) * kPanelColumns);
      for (int k0 = 0; k0 < k; k0 += kDepthBlock) {
        const int depth = std::min(kDepthBlock, k - k0);
        weights.pack(batch, n0, columns, k0, depth, panel);
        // Slices of kKernelDepth keep the panel's slice in L1 while every
        // tile of rows passes over it.
        for (int d0 = 0; d0 < depth; d0 += kKernelDepth) {
          const int d = std::min(kKernelDepth, depth - d0);
          for (int t = 0; t < tiles; ++t) {
            io.kernels.gemm_tile(
                x_panels + (static_cast<int64_t>(t) * k + k0 + d0) * kMicroRows,
                std::min(kMicroRows, rows - t * kMicroRows),
                panel + static_cast<int64_t>(d0) * kPanelColumns,
                d,
                c + t * kMicroRows * kPanelColumns,
                k0 + d0 > 0);
          }
        }
      }
      for (int m = 0; m < rows; ++m) {
        io.store(first_row + m, n0, columns, c + m * kPanelColumns);
      }
    });
  }
}

template <typename Weights>
void run(
    const Kernels& kernels,
    const std::vector<mx::array>& inputs,
    mx::array& out,
    bool transpose,
    bool has_bias,
    Weights& weights) {
  const auto& x = inputs[0];
  const auto shape = MatmulShape::of(x, inputs[1], out);
  const FloatType type = float_type(out.dtype());
  std::vector<float> bias;
  if (has_bias) {
    const auto& b = inputs.back();
    bias.resize(shape.n);
    gather_to_float(
        kernels, type, b.data<void>(), b.strides()[0], shape.n, bias.data());
  }
  const MatmulIo io{
      kernels,
      x,
      RowLayout(x),
      type,
      static_cast<char*>(out.data<void>()),
      static_cast<int64_t>(shape.n) * float_type_size(type),
      has_bias ? bias.data() : nullptr};
  const bool gemv = transpose && shape.rows_per_batch <= kGemvMaxRows;
  for (int64_t b = 0; b < shape.batches; ++b) {
    if (gemv) {
      gemv_schedule(io, shape, b, weights);
    } else {
      gemm_schedule(io, shape, b, weights);
    }
  }
}

} // namespace

int gemv_columns_per_task(int n, int threads) {
  const int64_t runs =
      static_cast<int64_t>(kGemvTasksPerThread) * std::max(threads, 1);
  const int64_t share = (n + runs - 1) / runs;
  const int64_t rounded = (share + kGemvColumnsPerCall - 1) /
      kGemvColumnsPerCall * kGemvColumnsPerCall;
  return static_cast<int>(std::max<int64_t>(rounded, kGemvColumnsPerCall));
}

void quantized_matmul(
    const Kernels& kernels,
    const std::vector<mx::array>& inputs,
    mx::array& out,
    int group_size,
    int bits,
    bool transpose,
    bool has_bias) {
  QuantizedWeights weights(
      kernels, inputs, group_size, bits, transpose, inputs[0].shape(-1));
  run(kernels, inputs, out, transpose, has_bias, weights);
}

void dense_matmul(
    const Kernels& kernels,
    const std::vector<mx::array>& inputs,
    mx::array& out,
    bool transpose,
    bool has_bias) {
  DenseWeights weights(kernels, inputs[1], transpose, inputs[0].shape(-1));
  run(kernels, inputs, out, transpose, has_bias, weights);
}

} // namespace mlx_qmm::cpu
