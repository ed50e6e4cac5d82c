// Copyright © 2026 mlx-qmm contributors.
//
// CPU evaluation of DenseMatmul: panels of w, read through its strides (so
// transposed, sliced and broadcast weights need no copy), are converted to
// the accumulation type and fed to the shared driver (panel_matmul.h).

#include <cstdint>
#include <type_traits>

#include "csrc/cpu/encode_task.h"
#include "csrc/cpu/panel_matmul.h"
#include "csrc/metal/launch_plan.h"
#include "csrc/metal/simulator_bridge.h"
#include "csrc/primitives.h"

namespace mlx_qmm {

namespace {

// float64 accumulates in float64; the 16-bit types and float32 in float32.
template <typename T>
using Accumulator =
    std::conditional_t<std::is_same_v<T, double>, double, float>;

template <typename T>
void dense_matmul(
    const std::vector<mx::array>& inputs,
    mx::array& out,
    bool transpose,
    bool has_bias) {
  using Acc = Accumulator<T>;
  const auto& x = inputs[0];
  const auto& w = inputs[1];
  const int k = x.shape(-1);
  const auto shape = cpu::PanelMatmulShape::of(x, w, out);

  // Strides of the [N, K] view of w.
  const int64_t row_stride = w.strides()[w.ndim() - (transpose ? 2 : 1)];
  const int64_t col_stride = w.strides()[w.ndim() - (transpose ? 1 : 2)];
  const T* w_data = w.data<T>();
  auto load_panel = [&](int64_t b, int n0, int columns, Acc* panel) {
    const T* base = w_data + cpu::batch_offset(w, b);
    for (int j = 0; j < columns; ++j) {
      const T* row = base + (n0 + j) * row_stride;
      Acc* dst = panel + static_cast<int64_t>(j) * k;
      for (int i = 0; i < k; ++i) {
        dst[i] = static_cast<Acc>(row[i * col_stride]);
      }
    }
  };

  cpu::panel_matmul<T, Acc>(
      x, shape, cpu::BiasView<T>(inputs, has_bias), out, load_panel);
}

} // namespace

void DenseMatmul::eval_cpu(
    const std::vector<mx::array>& inputs,
    mx::array& out) {
  if (metal::simulator_active() &&
      metal::encode_on_simulator(
          stream(),
          inputs,
          out,
          metal::plan_dense_matmul(inputs, out, transpose_, has_bias_))) {
    return;
  }
  cpu::encode_task(
      stream(),
      inputs,
      out,
      [transpose = transpose_, has_bias = has_bias_](
          const std::vector<mx::array>& in, mx::array& o) {
        switch (o.dtype()) {
          case mx::float32:
            return dense_matmul<float>(in, o, transpose, has_bias);
          case mx::float16:
            return dense_matmul<mx::float16_t>(in, o, transpose, has_bias);
          case mx::bfloat16:
            return dense_matmul<mx::bfloat16_t>(in, o, transpose, has_bias);
          case mx::float64:
            return dense_matmul<double>(in, o, transpose, has_bias);
          default:
            throw std::invalid_argument(
                "[QmmDenseMatmul] Unsupported output dtype.");
        }
      });
}

} // namespace mlx_qmm
