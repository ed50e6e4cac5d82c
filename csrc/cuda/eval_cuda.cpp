// Copyright © 2026 mlx-qmm contributors.
//
// GPU evaluation on MLX's CUDA backend: the launch plan (launch_plan.h)
// becomes one kernel node per weight batch in MLX's command encoder.
//
// Why driver handles: libmlx links the CUDA runtime statically, so a
// __global__ function pointer from this extension (registered with our own,
// shared runtime) means nothing to libmlx's runtime, and
// cudaGraphAddKernelNode fails with "invalid resource handle". A CUfunction
// from cudaGetFuncBySymbol is a driver object that any runtime in the
// process can put in a graph (CommandEncoder::add_kernel_node takes one).
//
// Strided operands are first copied into row-contiguous temporaries, so a
// weight batch is a fixed stride away from the last and every row of x and
// out is k and n elements after the previous.

#include <cuda.h>
#include <cuda_runtime.h>

#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <unordered_map>

#include "csrc/cuda/launch_plan.h"
#include "csrc/primitives.h"
#include "csrc/quantized_format.h"
#include "kernels/cuda/kernel_symbols.h"
#include "mlx/backend/cuda/device.h"
#include "mlx/backend/cuda/utils.h"

namespace mlx_qmm {

namespace {

using cuda::FloatType;

FloatType float_type(mx::Dtype dtype, const char* primitive) {
  switch (dtype) {
    case mx::float32:
      return FloatType::Float32;
    case mx::float16:
      return FloatType::Float16;
    case mx::bfloat16:
      return FloatType::BFloat16;
    default:
      throw std::invalid_argument(
          std::string("[") + primitive +
          "] CUDA kernels take float32, float16 or bfloat16.");
  }
}

void check_cuda(cudaError_t status, const char* what) {
  if (status != cudaSuccess) {
    throw std::runtime_error(
        std::string("[mlx_qmm] ") + what + ": " + cudaGetErrorString(status));
  }
}

// The driver handle of a kernel symbol, with its shared-memory limit raised
// once where it needs more than the default 48 KB.
CUfunction kernel_function(const void* symbol, int shared_bytes) {
  static std::mutex mutex;
  static std::unordered_map<const void*, std::pair<CUfunction, int>> cache;
  std::lock_guard<std::mutex> lock(mutex);
  auto it = cache.find(symbol);
  if (it == cache.end()) {
    cudaFunction_t function;
    check_cuda(cudaGetFuncBySymbol(&function, symbol), "cudaGetFuncBySymbol");
    it = cache.emplace(symbol, std::make_pair(CUfunction(function), 0)).first;
  }
  auto& [function, shared_limit] = it->second;
  if (shared_bytes > shared_limit) {
    // The attribute belongs to the function, whichever API sets it.
    check_cuda(
        cudaFuncSetAttribute(
            symbol, cudaFuncAttributeMaxDynamicSharedMemorySize, shared_bytes),
        "cudaFuncSetAttribute(MaxDynamicSharedMemorySize)");
    shared_limit = shared_bytes;
  }
  return function;
}

// What the launch plan needs of a device, queried once.
struct DeviceTraits {
  int multiprocessors;
  bool sm90; // sm_90a machine code runs on compute capability 9.0 only
};

const DeviceTraits& device_traits(int device) {
  static std::mutex mutex;
  static std::unordered_map<int, DeviceTraits> traits;
  std::lock_guard<std::mutex> lock(mutex);
  auto it = traits.find(device);
  if (it == traits.end()) {
    auto attribute = [&](cudaDeviceAttr a) {
      int value = 0;
      check_cuda(
          cudaDeviceGetAttribute(&value, a, device), "cudaDeviceGetAttribute");
      return value;
    };
    const DeviceTraits t{
        attribute(cudaDevAttrMultiProcessorCount),
        attribute(cudaDevAttrComputeCapabilityMajor) == 9 &&
            attribute(cudaDevAttrComputeCapabilityMinor) == 0};
    it = traits.emplace(device, t).first;
  }
  return it->second;
}

const void* plan_symbol(
    const cuda::LaunchPlan& plan,
    const cuda::MatmulProblem& p) {
  switch (plan.kind) {
    case cuda::KernelKind::Matvec:
      return p.bits == 0
          ? cuda::matvec_dense_symbol(p.type, plan.rows)
          : cuda::matvec_affine_symbol(p.type, p.bits, plan.rows);
    case cuda::KernelKind::MatvecTensor:
      return cuda::matvec_tensor_affine_symbol(p.type);
    case cuda::KernelKind::Skinny:
      return cuda::skinny_affine_symbol(p.type, p.bits, plan.rows);
    case cuda::KernelKind::SkinnyCluster:
      return cuda::skinny_cluster_affine_symbol(p.type, p.bits);
    case cuda::KernelKind::SkinnyRing:
      return cuda::skinny_ring_affine_symbol(p.type, p.bits);
    case cuda::KernelKind::SkinnyDense:
      return cuda::skinny_dense_symbol(p.type, plan.rows);
    case cuda::KernelKind::Wgmma:
      return p.bits == 0
          ? cuda::wgmma_dense_symbol(p.type, plan.wgmma_tile)
          : cuda::wgmma_affine_symbol(p.type, p.bits, plan.wgmma_tile);
    case cuda::KernelKind::Tensor:
      return p.bits == 0
          ? cuda::tensor_dense_symbol(p.type, plan.tile)
          : cuda::tensor_affine_symbol(p.type, p.bits, plan.tile);
    case cuda::KernelKind::Simt:
      return cuda::simt_symbol(p.type, p.bits != 0, p.transpose);
  }
  return nullptr;
}

bool aligned16(const void* p) {
  return reinterpret_cast<uintptr_t>(p) % 16 == 0;
}

// A kernel node of one thread an element or a block of elements
// (strided_copy, split_sum, dequantize_affine), after the arrays the caller
// named.
template <typename Args>
void add_elementwise_node(
    mx::cu::CommandEncoder& encoder,
    const void* symbol,
    int64_t count,
    int threads,
    Args& args) {
  encoder.add_kernel_node_ex(
      kernel_function(symbol, 0),
      dim3(static_cast<unsigned>((count + threads - 1) / threads)),
      dim3(threads),
      dim3(1, 1, 1),
      0,
      args);
}

// A kernel launched in thread-block clusters of plan.cluster blocks along
// grid x. MLX's encoder keys every plain kernel node of its cached graphs
// "K" and updates a cached graph in place (cudaGraphExecUpdate), which does
// not carry a node's cluster shape over (MLX's device.cpp says so): a
// cluster kernel could then run in another's place without its clusters.
// The key of a child graph names its kernels' cluster widths ("(K4)"), so
// the cluster kernel goes in one of its own.
void add_cluster_kernel_node(
    mx::cu::CommandEncoder& encoder,
    const void* symbol,
    const cuda::LaunchPlan& plan,
    cuda::MatmulArgs& args) {
  cudaGraph_t child;
  check_cuda(cudaGraphCreate(&child, 0), "cudaGraphCreate");
  std::unique_ptr<CUgraph_st, cudaError_t (*)(cudaGraph_t)> owned(
      child, cudaGraphDestroy);
  void* params[] = {&args};
  cudaKernelNodeParams node{};
  node.func = const_cast<void*>(symbol);
  node.gridDim = dim3(plan.grid[0], plan.grid[1], plan.grid[2]);
  node.blockDim = dim3(plan.block, 1, 1);
  node.sharedMemBytes = static_cast<unsigned>(plan.shared_bytes);
  node.kernelParams = params;
  cudaGraphNode_t kernel;
  check_cuda(
      cudaGraphAddKernelNode(&kernel, child, nullptr, 0, &node),
      "cudaGraphAddKernelNode");
  cudaKernelNodeAttrValue cluster{};
  cluster.clusterDim.x = static_cast<unsigned>(plan.cluster);
  cluster.clusterDim.y = 1;
  cluster.clusterDim.z = 1;
  check_cuda(
      cudaGraphKernelNodeSetAttribute(
          kernel, cudaLaunchAttributeClusterDimension, &cluster),
      "cudaGraphKernelNodeSetAttribute(ClusterDimension)");
  // The encoder clones the child graph into its own.
  encoder.add_graph_node(child);
}

// A row-contiguous copy of a strided view, made by strided_copy on the
// encoder's stream; kept alive by the encoder until the graph has run.
mx::array row_contiguous_copy(
    mx::cu::CommandEncoder& encoder,
    const mx::array& in,
    const char* primitive) {
  cuda::StridedCopyArgs args{};
  // Axes of size 1 go; an axis contiguous with the next merges into it.
  for (int d = 0; d < static_cast<int>(in.ndim()); ++d) {
    if (in.shape(d) == 1) {
      continue;
    }
    const int64_t size = in.shape(d);
    const int64_t stride = in.strides()[d];
    if (args.ndim > 0 && args.strides[args.ndim - 1] == stride * size) {
      args.shape[args.ndim - 1] *= size;
      args.strides[args.ndim - 1] = stride;
      continue;
    }
    if (args.ndim == cuda::kStridedCopyMaxDims) {
      throw std::invalid_argument(
          std::string("[") + primitive + "] A strided operand with more " +
          "than " + std::to_string(cuda::kStridedCopyMaxDims) +
          " non-mergeable axes; make it contiguous first.");
    }
    args.shape[args.ndim] = size;
    args.strides[args.ndim] = stride;
    ++args.ndim;
  }
  mx::array copy(in.shape(), in.dtype(), nullptr, {});
  copy.set_data(mx::allocator::malloc(copy.nbytes()));
  args.src = mx::gpu_ptr<void>(in);
  args.dst = mx::gpu_ptr<void>(copy);
  args.size = in.size();
  const void* symbol = cuda::strided_copy_symbol(in.itemsize());
  if (!symbol) {
    throw std::logic_error(
        std::string("[") + primitive + "] No strided copy for this dtype.");
  }
  encoder.set_input_array(in);
  encoder.set_output_array(copy);
  add_elementwise_node(
      encoder, symbol, args.size, cuda::kStridedCopyThreads, args);
  encoder.add_temporary(copy);
  return copy;
}

// All of w (every batch) written out by dequantize_affine as a dense
// row-major temporary of `type`, for the plans that run the dense GEMM on
// it (LaunchPlan::dequantize_first); kept alive by the encoder until the
// graph has run.
mx::array dequantized_weights(
    mx::cu::CommandEncoder& encoder,
    const std::vector<mx::array>& inputs,
    mx::Dtype type,
    int bits,
    int group_size,
    const char* primitive) {
  const mx::array& w = inputs[1];
  const mx::array& scales = inputs[2];
  const int k = inputs[0].shape(-1);
  const int64_t rows = w.size() / w.shape(-1);
  const void* symbol =
      cuda::dequantize_affine_symbol(float_type(type, primitive), bits);
  if (!symbol || rows > std::numeric_limits<int>::max()) {
    throw std::logic_error(
        std::string("[") + primitive + "] No dequantization kernel for this " +
        "type, bits value or number of rows.");
  }
  mx::array dense(mx::Shape{static_cast<int>(rows), k}, type, nullptr, {});
  dense.set_data(mx::allocator::malloc(dense.nbytes()));
  cuda::MatmulArgs args{};
  args.w = mx::gpu_ptr<void>(w);
  args.scales = mx::gpu_ptr<void>(scales);
  args.biases = mx::gpu_ptr<void>(inputs[3]);
  args.out = mx::gpu_ptr<void>(dense);
  args.n = static_cast<int>(rows);
  args.k = k;
  args.bits = bits;
  args.group_size_log2 = __builtin_ctz(static_cast<unsigned>(group_size));
  encoder.set_input_array(w);
  encoder.set_input_array(scales);
  encoder.set_input_array(inputs[3]);
  encoder.set_output_array(dense);
  add_elementwise_node(
      encoder,
      symbol,
      rows * (k / kValuesPerBlock),
      cuda::kDequantizeThreads,
      args);
  encoder.add_temporary(dense);
  return dense;
}

// inputs: x, w[, scales, biases][, bias]; bits 0 for dense.
void eval_matmul(
    const mx::Stream& stream,
    const std::vector<mx::array>& given,
    mx::array& out,
    int bits,
    int group_size,
    bool transpose,
    bool has_bias,
    const char* primitive) {
  auto& encoder = mx::cu::get_command_encoder(stream);
  out.set_data(mx::allocator::malloc(out.nbytes()));
  if (out.size() == 0) {
    return;
  }
  std::vector<mx::array> inputs;
  for (const auto& in : given) {
    inputs.push_back(
        in.flags().row_contiguous
            ? in
            : row_contiguous_copy(encoder, in, primitive));
  }
  // The encoder orders a kernel node after the nodes that wrote the arrays
  // named before it, and forgets the names once the node is added: each
  // node names them anew.
  auto name_arrays = [&](const mx::array& output) {
    for (const auto& in : inputs) {
      encoder.set_input_array(in);
    }
    encoder.set_output_array(output);
  };

  const bool quantized = bits != 0;
  const mx::array& x = inputs[0];
  const mx::array& w = inputs[1];
  const int n = out.shape(-1);
  const int k = x.shape(-1);
  const int64_t rows = out.size() / n;
  // A 2-D w serves every row of x; a batched one (broadcast to x's batch
  // shape by the op) one matrix of M rows each.
  const int64_t batches = w.ndim() == 2 ? 1 : rows / x.shape(-2);
  const int64_t rows_per_batch = rows / batches;

  const char* x_ptr = static_cast<const char*>(mx::gpu_ptr<void>(x));
  const char* w_ptr = static_cast<const char*>(mx::gpu_ptr<void>(w));
  const char* scales_ptr = quantized
      ? static_cast<const char*>(mx::gpu_ptr<void>(inputs[2]))
      : nullptr;
  const char* biases_ptr = quantized
      ? static_cast<const char*>(mx::gpu_ptr<void>(inputs[3]))
      : nullptr;
  const void* bias_ptr = has_bias ? mx::gpu_ptr<void>(inputs.back()) : nullptr;
  char* out_ptr = static_cast<char*>(mx::gpu_ptr<void>(out));
  const int64_t w_batch_bytes = batches == 1 ? 0 : w.nbytes() / batches;
  const int64_t sb_batch_bytes =
      batches == 1 || !quantized ? 0 : inputs[2].nbytes() / batches;
  const int64_t element = out.itemsize();
  // Made by the first launch whose plan dequantizes first (each batch's
  // rows follow the last's), then shared by the later ones.
  std::optional<mx::array> dequantized;

  // Launches cover at most this many rows (the grid's y limit).
  const int64_t max_rows = int64_t{65535} * cuda::kSimtBlockM / 2;
  const DeviceTraits& traits = device_traits(encoder.device().cuda_device());
  for (int64_t b = 0; b < batches; ++b) {
    for (int64_t r0 = 0; r0 < rows_per_batch; r0 += max_rows) {
      const int m = static_cast<int>(std::min(max_rows, rows_per_batch - r0));
      const int64_t row = b * rows_per_batch + r0;
      cuda::MatmulArgs args{
          x_ptr + row * k * element,
          w_ptr + b * w_batch_bytes,
          quantized ? scales_ptr + b * sb_batch_bytes : nullptr,
          quantized ? biases_ptr + b * sb_batch_bytes : nullptr,
          bias_ptr,
          out_ptr + row * n * element,
          m,
          n,
          k,
          bits,
          quantized ? __builtin_ctz(static_cast<unsigned>(group_size)) : 0,
          0,
          nullptr};
      cuda::MatmulProblem problem{
          float_type(out.dtype(), primitive),
          bits,
          transpose,
          m,
          n,
          k,
          aligned16(args.x) && aligned16(args.w) &&
              (!quantized ||
               (aligned16(args.scales) && aligned16(args.biases))) &&
              aligned16(args.out),
          traits.multiprocessors,
          traits.sm90,
          quantized ? group_size : 0};
      const cuda::LaunchPlan plan = cuda::plan_matmul(problem);
      if (plan.dequantize_first) {
        if (!dequantized) {
          dequantized = dequantized_weights(
              encoder, inputs, out.dtype(), bits, group_size, primitive);
        }
        args.w = static_cast<const char*>(mx::gpu_ptr<void>(*dequantized)) +
            b * static_cast<int64_t>(n) * k * element;
        args.scales = nullptr;
        args.biases = nullptr;
        args.bits = 0;
        args.group_size_log2 = 0;
        problem.bits = 0;
      }
      const void* symbol = plan_symbol(plan, problem);
      if (!symbol) {
        throw std::logic_error(
            std::string("[") + primitive + "] No CUDA kernel " + plan.name);
      }
      args.steps_per_split = plan.steps_per_split;
      // With K split between blocks, the GEMM writes their float32 partial
      // products to a temporary, and split_sum adds them up into out.
      std::optional<mx::array> partials;
      if (plan.k_splits > 1) {
        partials.emplace(
            mx::Shape{plan.k_splits, m, n},
            mx::float32,
            nullptr,
            std::vector<mx::array>{});
        partials->set_data(mx::allocator::malloc(partials->nbytes()));
        encoder.add_temporary(*partials);
        args.partials = mx::gpu_ptr<float>(*partials);
      }
      if (plan.dequantize_first) {
        encoder.set_input_array(*dequantized);
      }
      name_arrays(partials ? *partials : out);
      if (plan.cluster > 1) {
        add_cluster_kernel_node(encoder, symbol, plan, args);
        continue;
      }
      encoder.add_kernel_node_ex(
          kernel_function(symbol, plan.shared_bytes),
          dim3(plan.grid[0], plan.grid[1], plan.grid[2]),
          dim3(plan.block, 1, 1),
          dim3(1, 1, 1),
          static_cast<uint32_t>(plan.shared_bytes),
          args);
      if (!partials) {
        continue;
      }
      cuda::SplitSumArgs sum_args{
          args.partials,
          bias_ptr,
          args.out,
          static_cast<int64_t>(m) * n,
          n,
          plan.k_splits};
      const void* sum_symbol = cuda::split_sum_symbol(problem.type);
      if (!sum_symbol) {
        throw std::logic_error(
            std::string("[") + primitive + "] No split sum for this dtype.");
      }
      encoder.set_input_array(*partials);
      name_arrays(out);
      add_elementwise_node(
          encoder,
          sum_symbol,
          sum_args.count,
          cuda::kSplitSumThreads,
          sum_args);
    }
  }
}

} // namespace

void AffineQuantizedMatmul::eval_gpu(
    const std::vector<mx::array>& inputs,
    mx::array& out) {
  eval_matmul(
      stream(),
      inputs,
      out,
      bits_,
      group_size_,
      transpose_,
      has_bias_,
      "QmmAffineQuantizedMatmul");
}

void DenseMatmul::eval_gpu(
    const std::vector<mx::array>& inputs,
    mx::array& out) {
  eval_matmul(
      stream(), inputs, out, 0, 0, transpose_, has_bias_, "QmmDenseMatmul");
}

} // namespace mlx_qmm
