// Copyright © 2026 mlx-qmm contributors.
//
// CPU evaluation of AffineQuantizedMatmul: the shared driver
// (matmul_driver.h) with the kernels of the active instruction-set level
// (isa.h).

#include <stdexcept>

#include "csrc/cpu/encode_task.h"
#include "csrc/cpu/isa.h"
#include "csrc/cpu/matmul_driver.h"
#include "csrc/metal/launch_plan.h"
#include "csrc/metal/simulator_bridge.h"
#include "csrc/primitives.h"

namespace mlx_qmm {

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
  // Chosen here, on the evaluating thread, so that a bad MLX_QMM_CPU_ISA
  // raises from mx.eval.
  const cpu::Kernels* kernels = &cpu::active_kernels();
  cpu::encode_task(
      stream(),
      inputs,
      out,
      [kernels,
       group_size = group_size_,
       bits = bits_,
       transpose = transpose_,
       has_bias = has_bias_](const std::vector<mx::array>& in, mx::array& o) {
        if (o.dtype() != mx::float32 && o.dtype() != mx::float16 &&
            o.dtype() != mx::bfloat16) {
          throw std::invalid_argument(
              "[QmmAffineQuantizedMatmul] Unsupported output dtype.");
        }
        cpu::quantized_matmul(
            *kernels, in, o, group_size, bits, transpose, has_bias);
      });
}

} // namespace mlx_qmm
