// Copyright © 2026 mlx-qmm contributors.
//
// CPU evaluation of AffineQuantizedMatmul: panels of the packed weights are
// unpacked (dequantize_block.h) straight into the accumulation type and fed
// to the shared driver (panel_matmul.h).

#include <cstdint>

#include "csrc/cpu/dequantize_block.h"
#include "csrc/cpu/encode_task.h"
#include "csrc/cpu/panel_matmul.h"
#include "csrc/metal/launch_plan.h"
#include "csrc/metal/simulator_bridge.h"
#include "csrc/primitives.h"

namespace mlx_qmm {

namespace {

using Acc = float;

// Strided view of one 2-D slice of w, scales or biases.
template <typename E>
struct Matrix2d {
  const E* data;
  int64_t row_stride;
  int64_t col_stride;

  const E& at(int64_t r, int64_t c) const {
    return data[r * row_stride + c * col_stride];
  }
};

template <typename E>
Matrix2d<E> slice(const mx::array& a, int64_t batch) {
  return {
      a.data<E>() + cpu::batch_offset(a, batch),
      a.strides()[a.ndim() - 2],
      a.strides()[a.ndim() - 1]};
}

template <typename T, int Bits>
void qmm_affine(
    const std::vector<mx::array>& inputs,
    mx::array& out,
    int group_size,
    bool transpose,
    bool has_bias) {
  const auto& x = inputs[0];
  const auto& w = inputs[1];
  const auto& scales = inputs[2];
  const auto& biases = inputs[3];
  const int k = x.shape(-1);
  const auto shape = cpu::PanelMatmulShape::of(x, w, out);

  auto load_panel = [&](int64_t b, int n0, int columns, Acc* panel) {
    auto wq = slice<uint32_t>(w, b);
    auto s = slice<T>(scales, b);
    auto z = slice<T>(biases, b);
    if (transpose) {
      // w is [N, K] packed along K: each panel row is one row of w.
      for (int j = 0; j < columns; ++j) {
        const int64_t row = n0 + j;
        for (int v = 0; v < k; v += kValuesPerBlock) {
          const int64_t group = v / group_size;
          cpu::dequantize_block<Bits, Acc>(
              &wq.at(row, int64_t(v / kValuesPerBlock) * block_words(Bits)),
              wq.col_stride,
              static_cast<Acc>(s.at(row, group)),
              static_cast<Acc>(z.at(row, group)),
              panel + static_cast<int64_t>(j) * k + v,
              1);
        }
      }
    } else {
      // w is [K, N] packed along N: row kk of w contributes element kk of
      // every panel row, so blocks are written down the panel's columns.
      for (int kk = 0; kk < k; ++kk) {
        for (int c = 0; c < columns; c += kValuesPerBlock) {
          const int64_t v = n0 + c;
          const int64_t group = v / group_size;
          cpu::dequantize_block<Bits, Acc>(
              &wq.at(kk, (v / kValuesPerBlock) * block_words(Bits)),
              wq.col_stride,
              static_cast<Acc>(s.at(kk, group)),
              static_cast<Acc>(z.at(kk, group)),
              panel + static_cast<int64_t>(c) * k + kk,
              k);
        }
      }
    }
  };

  cpu::panel_matmul<T, Acc>(
      x, shape, cpu::BiasView<T>(inputs, has_bias), out, load_panel);
}

template <typename T>
void dispatch(
    const std::vector<mx::array>& inputs,
    mx::array& out,
    int group_size,
    int bits,
    bool transpose,
    bool has_bias) {
  cpu::dispatch_bits(bits, [&]<int Bits>() {
    qmm_affine<T, Bits>(inputs, out, group_size, transpose, has_bias);
  });
}

} // namespace

void AffineQuantizedMatmul::eval_cpu(
    const std::vector<mx::array>& inputs,
    mx::array& out) {
  if (metal::simulator_active() &&
      metal::encode_on_simulator(
          stream(),
          inputs,
          out,
          metal::plan_quantized_matmul(
              inputs, out, group_size_, bits_, transpose_, has_bias_))) {
    return;
  }
  cpu::encode_task(
      stream(),
      inputs,
      out,
      [group_size = group_size_,
       bits = bits_,
       transpose = transpose_,
       has_bias = has_bias_](const std::vector<mx::array>& in, mx::array& o) {
        switch (o.dtype()) {
          case mx::float32:
            return dispatch<float>(
                in, o, group_size, bits, transpose, has_bias);
          case mx::float16:
            return dispatch<mx::float16_t>(
                in, o, group_size, bits, transpose, has_bias);
          case mx::bfloat16:
            return dispatch<mx::bfloat16_t>(
                in, o, group_size, bits, transpose, has_bias);
          default:
            throw std::invalid_argument(
                "[QmmAffineQuantizedMatmul] Unsupported output dtype.");
        }
      });
}

} // namespace mlx_qmm
