// Copyright © 2026 mlx-qmm contributors.
//
// eval_gpu on Apple GPUs: the launch plan (launch_plan.h, the same plan the
// Metal simulator runs in CI) encoded on MLX's command encoder. This file
// is the only Metal code the simulator cannot run: it builds when MLX has
// its Metal backend, and tests/test_metal_encoder.py compiles it on Linux
// against MLX's own Metal headers (with declarations standing in for
// metal-cpp) so that a Mac build cannot be the first to see it.

#include <dlfcn.h>

#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>

#include "csrc/metal/kernel_source.h"
#include "csrc/metal/launch_plan.h"
#include "csrc/metal/metal_build.h"
#include "csrc/primitives.h"
#include "mlx/backend/metal/device.h"

namespace mlx_qmm {

namespace {

// Metal's setBytes takes at most 4 KB; a larger offsets table (many
// batches) goes in a buffer.
constexpr size_t kMaxSetBytes = 4096;

std::string extension_directory() {
  Dl_info info;
  if (!dladdr(reinterpret_cast<void*>(&extension_directory), &info)) {
    throw std::runtime_error("[mlx_qmm] Cannot locate the extension module.");
  }
  return std::filesystem::path(info.dli_fname).parent_path().string();
}

MTL::Library* library_for(
    mx::metal::Device& device,
    const metal::LaunchPlan& plan) {
  if (metal::kMetalKernelSource == metal::MetalKernelSource::Metallib) {
    // mlx_qmm.metallib, installed next to the extension.
    return device.get_library("mlx_qmm", extension_directory());
  }
  // One library per kernel, compiled from the embedded sources on first use
  // and cached by MLX for the life of the process.
  return device.get_library("mlx_qmm_" + plan.kernel, [&plan]() {
    return metal::single_kernel_source(plan);
  });
}

// Encodes `plan` with `inputs` bound to its Input buffers and `out`
// (allocated) to its Output buffer.
void encode_launch(
    const mx::Stream& stream,
    const metal::LaunchPlan& plan,
    const std::vector<mx::array>& inputs,
    mx::array& out) {
  auto& device = mx::metal::device(stream.device);
  auto& encoder = mx::metal::get_command_encoder(stream);

  // Function constants are bound by address: the values must outlive
  // get_kernel, which specializes the function. (Not a std::vector<bool>,
  // whose elements have no address.)
  auto constant_values = std::make_unique<bool[]>(plan.constants.size());
  mx::metal::MTLFCList constants;
  std::string specialization = plan.kernel;
  for (size_t i = 0; i < plan.constants.size(); ++i) {
    constant_values[i] = plan.constants[i].bits != 0;
    constants.emplace_back(
        &constant_values[i],
        MTL::DataType::DataTypeBool,
        static_cast<NS::UInteger>(plan.constants[i].index));
    specialization += "_fc" + std::to_string(plan.constants[i].index) +
        (constant_values[i] ? "t" : "f");
  }
  auto* kernel = device.get_kernel(
      plan.kernel, library_for(device, plan), specialization, constants);
  encoder.set_compute_pipeline_state(kernel);

  for (const auto& b : plan.buffers) {
    switch (b.source) {
      case metal::BufferBinding::Source::Input:
        encoder.set_input_array(inputs[b.input], b.index);
        break;
      case metal::BufferBinding::Source::Output:
        encoder.set_output_array(out, b.index);
        break;
      case metal::BufferBinding::Source::Bytes:
        if (b.bytes.size() <= kMaxSetBytes) {
          encoder.set_bytes(
              b.bytes.data(), static_cast<int>(b.bytes.size()), b.index);
        } else {
          mx::array table(
              b.bytes.begin(),
              mx::Shape{static_cast<int>(b.bytes.size())},
              mx::uint8);
          encoder.set_input_array(table, b.index);
          encoder.add_temporary(table);
        }
        break;
    }
  }
  encoder.dispatch_threadgroups(
      MTL::Size(plan.grid[0], plan.grid[1], plan.grid[2]),
      MTL::Size(plan.threadgroup[0], plan.threadgroup[1], plan.threadgroup[2]));
}

void encode_plan(
    const mx::Stream& stream,
    const std::vector<mx::array>& inputs,
    mx::array& out,
    const std::optional<metal::LaunchPlan>& plan,
    const char* primitive) {
  out.set_data(mx::allocator::malloc(out.nbytes()));
  if (!plan) {
    if (out.size() == 0) {
      return;
    }
    throw std::logic_error(
        std::string("[") + primitive + "] No Metal kernel serves a " +
        "matmul with this output dtype.");
  }
  // Strided views first go through strided_copy into row-contiguous
  // temporaries, which the matmul kernel then reads in their place.
  std::vector<mx::array> bound = inputs;
  for (const auto& copy : plan->input_copies) {
    const auto& a = inputs[copy.copy_of_input];
    mx::array temporary(a.shape(), a.dtype(), nullptr, {});
    temporary.set_data(mx::allocator::malloc(temporary.nbytes()));
    encode_launch(stream, copy, inputs, temporary);
    mx::metal::get_command_encoder(stream).add_temporary(temporary);
    bound[copy.copy_of_input] = temporary;
  }
  encode_launch(stream, *plan, bound, out);
}

} // namespace

void AffineQuantizedMatmul::eval_gpu(
    const std::vector<mx::array>& inputs,
    mx::array& out) {
  encode_plan(
      stream(),
      inputs,
      out,
      metal::plan_quantized_matmul(
          inputs, out, group_size_, bits_, transpose_, has_bias_),
      "QmmAffineQuantizedMatmul");
}

void DenseMatmul::eval_gpu(
    const std::vector<mx::array>& inputs,
    mx::array& out) {
  encode_plan(
      stream(),
      inputs,
      out,
      metal::plan_dense_matmul(inputs, out, transpose_, has_bias_),
      "QmmDenseMatmul");
}

} // namespace mlx_qmm
