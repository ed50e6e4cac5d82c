// Copyright © 2026 mlx-qmm contributors.
//
// The CPU matmul driver both of our primitives share.
//
// out[r, n] = sum_k x[r, k] * W[n, k] + bias[n], with W seen as [N, K]
// whatever its storage. The weight side arrives in panels of
// kPanelColumns output columns, produced by a loader that knows the storage
// (packed affine, or dense with any strides) and writes them as
// panel[j * K + k] = W[n0 + j, k] in the accumulation type: each panel is
// unpacked or converted once per block of kRowBlock rows of x and then used
// for all of them, and the inner loop is a plain dot product over contiguous
// accumulator-typed arrays.
//
// Work is split over output-column panels, which are independent.

#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "csrc/cpu/thread_pool.h"
#include "mlx/array.h"
#include "mlx/backend/common/utils.h"

namespace mlx_qmm::cpu {

namespace mx = mlx::core;

// Output columns per panel. A multiple of 32 (kValuesPerBlock), so a panel of
// a non-transposed packed w starts and ends on word boundaries.
inline constexpr int kPanelColumns = 32;
// Rows of x that share one unpacked panel.
inline constexpr int kRowBlock = 64;

// Where the rows of an operand are: row r of the flattened leading axes.
struct RowLayout {
  mx::Shape shape; // leading axes (all but the last)
  mx::Strides strides; // their strides
  int64_t column_stride;

  explicit RowLayout(const mx::array& a)
      : shape(a.shape().begin(), a.shape().end() - 1),
        strides(a.strides().begin(), a.strides().end() - 1),
        column_stride(a.strides().back()) {}

  int64_t offset(int64_t row) const {
    return mx::elem_to_loc(static_cast<int>(row), shape, strides);
  }
};

// Offset of batch b of an operand whose last two axes are the matrix; 0 for
// a 2-D operand (shared by all batches).
inline int64_t batch_offset(const mx::array& a, int64_t b) {
  if (a.ndim() <= 2) {
    return 0;
  }
  mx::Shape shape(a.shape().begin(), a.shape().end() - 2);
  mx::Strides strides(a.strides().begin(), a.strides().end() - 2);
  return mx::elem_to_loc(static_cast<int>(b), shape, strides);
}

template <typename Acc>
inline Acc dot(const Acc* a, const Acc* b, int k) {
  // Independent partial sums let the compiler keep several vector FMAs in
  // flight; strict FP semantics forbid it to reassociate one sum itself.
  constexpr int kLanes = 8;
  Acc partial[kLanes] = {};
  int i = 0;
  for (; i + kLanes <= k; i += kLanes) {
    for (int l = 0; l < kLanes; ++l) {
      partial[l] += a[i + l] * b[i + l];
    }
  }
  Acc tail = 0;
  for (; i < k; ++i) {
    tail += a[i] * b[i];
  }
  return ((partial[0] + partial[1]) + (partial[2] + partial[3])) +
      ((partial[4] + partial[5]) + (partial[6] + partial[7])) + tail;
}

struct PanelMatmulShape {
  int64_t batches; // weight batches (1 when w is 2-D)
  int64_t rows_per_batch; // rows of x multiplied by each weight batch
  int n;
  int k;

  // The problem of a primitive with inputs x [..., M, K] and w (2-D, or
  // batched like x; see csrc/matmul_shapes.h) and a non-empty output.
  static PanelMatmulShape
  of(const mx::array& x, const mx::array& w, const mx::array& out) {
    const int n = out.shape(-1);
    const int64_t rows = out.size() / n;
    if (w.ndim() == 2) {
      return {1, rows, n, x.shape(-1)};
    }
    return {rows / x.shape(-2), x.shape(-2), n, x.shape(-1)};
  }
};

// The bias input, if the primitive has one: a pointer and its stride.
template <typename T>
struct BiasView {
  const T* data = nullptr;
  int64_t stride = 0;

  BiasView(const std::vector<mx::array>& inputs, bool has_bias) {
    if (has_bias) {
      data = inputs.back().data<T>();
      stride = inputs.back().strides()[0];
    }
  }
};

// `load_panel(batch, n0, columns, Acc* panel)` fills a panel as described
// above. `out` is row-contiguous [rows, n].
template <typename T, typename Acc, typename LoadPanel>
void panel_matmul(
    const mx::array& x,
    const PanelMatmulShape& shape,
    const BiasView<T>& bias,
    mx::array& out,
    LoadPanel&& load_panel) {
  const RowLayout x_rows(x);
  const T* x_data = x.data<T>();
  T* out_data = out.data<T>();
  const int n = shape.n;
  const int k = shape.k;
  const int64_t num_panels = (n + kPanelColumns - 1) / kPanelColumns;
  std::vector<Acc> x_block(static_cast<size_t>(kRowBlock) * k);

  for (int64_t b = 0; b < shape.batches; ++b) {
    for (int64_t r0 = 0; r0 < shape.rows_per_batch; r0 += kRowBlock) {
      const int rows = static_cast<int>(
          std::min<int64_t>(kRowBlock, shape.rows_per_batch - r0));
      const int64_t first_row = b * shape.rows_per_batch + r0;
      for (int m = 0; m < rows; ++m) {
        const T* src = x_data + x_rows.offset(first_row + m);
        Acc* dst = x_block.data() + static_cast<size_t>(m) * k;
        for (int i = 0; i < k; ++i) {
          dst[i] = static_cast<Acc>(src[i * x_rows.column_stride]);
        }
      }
      parallel_for(num_panels, [&](int64_t p) {
        thread_local std::vector<Acc> panel;
        const int n0 = static_cast<int>(p) * kPanelColumns;
        const int columns = std::min(kPanelColumns, n - n0);
        panel.resize(static_cast<size_t>(kPanelColumns) * k);
        load_panel(b, n0, columns, panel.data());
        for (int m = 0; m < rows; ++m) {
          const Acc* xr = x_block.data() + static_cast<size_t>(m) * k;
          T* out_row = out_data + (first_row + m) * n + n0;
          for (int j = 0; j < columns; ++j) {
            Acc acc = dot(xr, panel.data() + static_cast<size_t>(j) * k, k);
            if (bias.data) {
              acc += static_cast<Acc>(bias.data[(n0 + j) * bias.stride]);
            }
            out_row[j] = static_cast<T>(acc);
          }
        }
      });
    }
  }
}

} // namespace mlx_qmm::cpu
