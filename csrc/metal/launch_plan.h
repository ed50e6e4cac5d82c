// Copyright © 2026 mlx-qmm contributors.
//
// Launch plans: which Metal kernel serves a primitive's inputs, over which
// grid, with which buffers and function constants. Plain C++ with no Metal
// API, so that the Metal eval_gpu (eval_metal.cpp) and the Metal simulator
// (MLX_QMM_BACKEND=metal-sim) consume the same plan.

#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "mlx/array.h"

namespace mlx_qmm::metal {

namespace mx = mlx::core;

// What is bound at one [[buffer(index)]]: one of the primitive's inputs,
// its output, or bytes set by value (set_bytes).
struct BufferBinding {
  enum class Source { Input, Output, Bytes };
  int index;
  Source source;
  int input = -1; // for Source::Input
  std::vector<uint8_t> bytes; // for Source::Bytes

  static BufferBinding of_input(int index, int input) {
    return {index, Source::Input, input, {}};
  }
  static BufferBinding of_output(int index) {
    return {index, Source::Output, -1, {}};
  }
  template <typename T>
  static BufferBinding of_value(int index, T value) {
    BufferBinding b{index, Source::Bytes, -1, std::vector<uint8_t>(sizeof(T))};
    std::memcpy(b.bytes.data(), &value, sizeof(T));
    return b;
  }
};

struct FunctionConstantValue {
  int index;
  uint64_t bits;
};

struct LaunchPlan {
  std::string kernel; // host name
  // The .metal file that defines it ("dense", "quantized") and the template
  // it instantiates, for compiling the kernel alone from embedded sources.
  std::string source;
  std::string instantiation;
  std::array<uint32_t, 3> grid; // threadgroups
  std::array<uint32_t, 3> threadgroup; // threads per threadgroup
  std::vector<BufferBinding> buffers;
  std::vector<FunctionConstantValue> constants;
  // Launches of strided_copy to run first, one for each input whose
  // matrices are not row-contiguous (a transposed or strided view). Each
  // copies input `copy_of_input` into a row-contiguous temporary (its
  // Output), which this plan then binds in that input's place; the batch
  // offsets are the temporary's.
  std::vector<LaunchPlan> input_copies;
  int copy_of_input = -1;
};

// The plan of DenseMatmul over `inputs` (x, w[, bias]) into `out`, or none
// when no Metal kernel serves the case (an empty output, a dtype other than
// float32, float16 and bfloat16). The kernel is chosen by kKernelRules
// (kernel_selection.h).
std::optional<LaunchPlan> plan_dense_matmul(
    const std::vector<mx::array>& inputs,
    const mx::array& out,
    bool transpose,
    bool has_bias);

// The plan of AffineQuantizedMatmul over `inputs` (x, w, scales, biases[,
// bias]) into `out`, or none as for plan_dense_matmul.
std::optional<LaunchPlan> plan_quantized_matmul(
    const std::vector<mx::array>& inputs,
    const mx::array& out,
    int group_size,
    int bits,
    bool transpose,
    bool has_bias);

} // namespace mlx_qmm::metal
