// Copyright © 2026 mlx-qmm contributors.
//
// How our primitives hand their CPU work to MLX: the output is allocated
// now, the kernel runs later on the stream's CPU command encoder. The task
// holds the input and output arrays by value, which keeps their buffers
// alive until it has run.

#pragma once

#include <utility>
#include <vector>

#include "mlx/allocator.h"
#include "mlx/array.h"
#include "mlx/backend/cpu/encoder.h"

namespace mlx_qmm::cpu {

namespace mx = mlx::core;

// `kernel(inputs, out)` is called on the stream's thread, for a non-empty
// output only.
template <typename Kernel>
void encode_task(
    mx::Stream stream,
    const std::vector<mx::array>& inputs,
    mx::array& out,
    Kernel&& kernel) {
  out.set_data(mx::allocator::malloc(out.nbytes()));
  if (out.size() == 0) {
    return;
  }
  auto& encoder = mx::cpu::get_command_encoder(stream);
  for (const auto& a : inputs) {
    encoder.set_input_array(a);
  }
  encoder.set_output_array(out);
  encoder.dispatch(
      [inputs, out, kernel = std::forward<Kernel>(kernel)]() mutable {
        kernel(inputs, out);
      });
}

} // namespace mlx_qmm::cpu
