// Copyright © 2026 mlx-qmm contributors.
//
// CPU evaluation of DenseMatmul: float32, float16 and bfloat16 through the
// shared driver (matmul_driver.h) with the kernels of the active
// instruction-set level (isa.h), except float32 GEMMs on macOS, which go to
// Accelerate (accelerate_gemm.h); float64 through a plain double loop here.

#include <cstdint>

#include "csrc/cpu/accelerate_gemm.h"
#include "csrc/cpu/encode_task.h"
#include "csrc/cpu/isa.h"
#include "csrc/cpu/matmul_driver.h"
#include "csrc/cpu/operand_layout.h"
#include "csrc/cpu/thread_pool.h"
#include "csrc/metal/launch_plan.h"
#include "csrc/metal/simulator_bridge.h"
#include "csrc/primitives.h"

namespace mlx_qmm {

namespace {

// float64 exists on the CPU only and is for accuracy, not speed: one output
// row per task, accumulated in double through the operands' strides.
void dense_matmul_float64(
    const std::vector<mx::array>& inputs,
    mx::array& out,
    bool transpose,
    bool has_bias) {
  const auto& x = inputs[0];
  const auto& w = inputs[1];
  const auto shape = cpu::MatmulShape::of(x, w, out);
  const cpu::RowLayout x_rows(x);
  const int64_t w_row_stride = w.strides()[w.ndim() - 2];
  const int64_t w_col_stride = w.strides()[w.ndim() - 1];
  // Strides of the [N, K] view of w.
  const int64_t n_stride = transpose ? w_row_stride : w_col_stride;
  const int64_t k_stride = transpose ? w_col_stride : w_row_stride;
  const double* bias = has_bias ? inputs.back().data<double>() : nullptr;
  const int64_t bias_stride = has_bias ? inputs.back().strides()[0] : 0;
  const int64_t rows = shape.batches * shape.rows_per_batch;
  cpu::parallel_for(rows, [&](int64_t row) {
    const double* xr = x.data<double>() + x_rows.offset(row);
    const double* wb =
        w.data<double>() + cpu::batch_offset(w, row / shape.rows_per_batch);
    double* o = out.data<double>() + row * shape.n;
    for (int n = 0; n < shape.n; ++n) {
      double acc = bias ? bias[n * bias_stride] : 0.0;
      for (int k = 0; k < shape.k; ++k) {
        acc += xr[k * x_rows.column_stride] * wb[n * n_stride + k * k_stride];
      }
      o[n] = acc;
    }
  });
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
  // Chosen here, on the evaluating thread, so that a bad MLX_QMM_CPU_ISA
  // raises from mx.eval.
  const cpu::Kernels* kernels = &cpu::active_kernels();
  cpu::encode_task(
      stream(),
      inputs,
      out,
      [kernels, transpose = transpose_, has_bias = has_bias_](
          const std::vector<mx::array>& in, mx::array& o) {
        switch (o.dtype()) {
          case mx::float32:
            if (cpu::accelerate_dense_gemm(in, o, transpose, has_bias)) {
              return;
            }
            return cpu::dense_matmul(*kernels, in, o, transpose, has_bias);
          case mx::float16:
          case mx::bfloat16:
            return cpu::dense_matmul(*kernels, in, o, transpose, has_bias);
          case mx::float64:
            return dense_matmul_float64(in, o, transpose, has_bias);
          default:
            throw std::invalid_argument(
                "[QmmDenseMatmul] Unsupported output dtype.");
        }
      });
}

} // namespace mlx_qmm
