// Copyright © 2026 mlx-qmm contributors.
//
// The extension module mlx_qmm._ext. The Python package (python/mlx_qmm)
// re-exports these with their documentation; the public quantized_matmul
// there routes modes other than "affine" to stock MLX before reaching ours.

#include <nanobind/nanobind.h>
#include <nanobind/stl/map.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/tuple.h>
#include <nanobind/stl/variant.h>
#include <nanobind/stl/vector.h>

#include <tuple>
#include <vector>

#include "csrc/backend_info.h"
#include "csrc/cpu/isa.h"
#include "csrc/cpu/kernels.h"
#include "csrc/cpu/machine_probes.h"
#include "csrc/cpu/matmul_driver.h"
#include "csrc/cpu/thread_pool.h"
#include "csrc/cuda/launch_plan.h"
#include "csrc/metal/kernel_selection.h"
#include "csrc/metal/kernel_source.h"
#include "csrc/metal/simulator_bridge.h"
#include "csrc/ops.h"
#include "csrc/quantized_format.h"
#include "mlx/version.h"

namespace nb = nanobind;
using namespace nb::literals;

NB_MODULE(_ext, m) {
  m.doc() = "mlx-qmm's C++ core: ops over our own MLX primitives.";

  m.def(
      "quantized_matmul",
      &mlx_qmm::quantized_matmul,
      nb::arg(),
      nb::arg(),
      "scales"_a,
      "biases"_a = nb::none(),
      "transpose"_a = true,
      "group_size"_a = nb::none(),
      "bits"_a = nb::none(),
      "mode"_a = "affine",
      nb::kw_only(),
      "bias"_a = nb::none(),
      "stream"_a = nb::none(),
      "Affine quantized matmul with a fused bias (see mlx_qmm.quantized_matmul).");

  m.def(
      "matmul",
      &mlx_qmm::matmul,
      nb::arg(),
      nb::arg(),
      "transpose"_a = true,
      nb::kw_only(),
      "bias"_a = nb::none(),
      "stream"_a = nb::none(),
      "Dense matmul with a fused bias (see mlx_qmm.matmul).");

  m.def(
      "kernel_providers",
      []() {
        std::vector<std::tuple<std::string, std::string, std::string>> rows;
        for (const auto& p : mlx_qmm::kernel_providers()) {
          rows.emplace_back(p.device, p.op, p.provider);
        }
        return rows;
      },
      "(device, op, provider) for every op and device type.");

  m.def(
      "cuda_kernel_list",
      [](bool quantized) {
        return std::string(mlx_qmm::cuda_kernel_list(
            quantized ? mlx_qmm::KernelFamily::AffineQuantized
                      : mlx_qmm::KernelFamily::Dense));
      },
      "quantized"_a,
      "The CUDA kernels that may serve quantized or dense matmuls, as "
      "backend_info names them in CUDA builds.");

  m.def(
      "load_metal_simulator",
      &mlx_qmm::metal::load_simulator,
      "path"_a,
      "Register the Metal simulator library (built by tests/metal_sim) that "
      "MLX_QMM_BACKEND=metal-sim runs our Metal kernels on.");
  m.def(
      "metal_simulator_launches",
      &mlx_qmm::metal::simulator_launches,
      "Launches run on the Metal simulator so far, by kernel host name.");

  m.def(
      "metal_simulator_last_launch",
      []() {
        auto last = mlx_qmm::metal::simulator_last_launch();
        return std::make_tuple(
            last.kernel,
            last.read,
            last.written,
            last.threadgroups_run,
            last.threadgroups_total);
      },
      "(kernel, device bytes read, device bytes written, threadgroups run, "
      "threadgroups in the grid) of the latest launch on the Metal "
      "simulator.");

  m.def(
      "metal_simulator_last_kernel_sources",
      []() {
        std::vector<std::tuple<std::string, std::string>> sources;
        if (auto plan = mlx_qmm::metal::simulator_last_plan()) {
          for (const auto& copy : plan->input_copies) {
            sources.emplace_back(
                copy.kernel, mlx_qmm::metal::single_kernel_source(copy));
          }
          sources.emplace_back(
              plan->kernel, mlx_qmm::metal::single_kernel_source(*plan));
        }
        return sources;
      },
      "(kernel, source) of each launch of the latest plan run on the "
      "simulator, its input copies first: the Metal source that a Mac "
      "without a Metal compiler compiles at run time for that kernel (its "
      ".metal file with our headers inlined, and one instantiation).");

  m.def(
      "metal_kernel_rules",
      []() {
        namespace metal = mlx_qmm::metal;
        std::vector<std::tuple<
            bool,
            bool,
            std::optional<int64_t>,
            std::string,
            std::optional<int>,
            std::string>>
            rules;
        for (const auto& rule : metal::kKernelRules) {
          rules.emplace_back(
              rule.quantized,
              rule.transpose,
              rule.max_rows == metal::kAnyRows
                  ? std::nullopt
                  : std::optional<int64_t>(rule.max_rows),
              metal::kernel_name(rule.kernel),
              rule.tile == 0 ? std::nullopt : std::optional<int>(rule.tile),
              metal::threadgroup_work(rule));
        }
        return rules;
      },
      "The Metal kernel selection table (csrc/metal/kernel_selection.h), in "
      "order: (quantized, transpose, max rows or None, kernel, tile side or "
      "None, work of one threadgroup).");

  m.def(
      "cuda_launch_plan",
      [](const std::string& dtype,
         int bits,
         bool transpose,
         int m,
         int n,
         int k,
         bool aligned,
         int multiprocessors,
         bool sm90,
         int group_size) {
        using mlx_qmm::cuda::FloatType;
        const FloatType type = dtype == "float32" ? FloatType::Float32
            : dtype == "float16"                  ? FloatType::Float16
            : dtype == "bfloat16"
            ? FloatType::BFloat16
            : throw std::invalid_argument(
                  "dtype must be float32, float16 or bfloat16");
        const auto plan = mlx_qmm::cuda::plan_matmul(
            {type,
             bits,
             transpose,
             m,
             n,
             k,
             aligned,
             multiprocessors,
             sm90,
             group_size});
        return std::make_tuple(
            plan.name,
            std::vector<int>(plan.grid.begin(), plan.grid.end()),
            plan.block,
            plan.shared_bytes);
      },
      "dtype"_a,
      "bits"_a,
      "transpose"_a,
      "m"_a,
      "n"_a,
      "k"_a,
      "aligned"_a,
      "multiprocessors"_a,
      "sm90"_a = false,
      "group_size"_a = 64,
      "The CUDA launch plan (csrc/cuda/launch_plan.h) of one weight batch, "
      "bits 0 for dense: (kernel name, grid, block, dynamic shared bytes).");

  m.def(
      "cpu_threads",
      &mlx_qmm::cpu::concurrency,
      "Threads the CPU kernels spread their work over.");

  m.def(
      "cpu_isa",
      []() { return std::string(mlx_qmm::cpu::active_kernels().name); },
      "Instruction-set level of the CPU kernels that evaluations use now "
      "(MLX_QMM_CPU_ISA, or the fastest available).");
  m.def(
      "cpu_isas",
      &mlx_qmm::cpu::available_isas,
      "Instruction-set levels this build and CPU can run, fastest first.");

  nb::class_<mlx_qmm::cpu::BandwidthProbe>(
      m,
      "CpuBandwidthProbe",
      "CPU memory bandwidth probe over two buffers of `bytes`, allocated once "
      "so that it can measure again between benchmark cases.")
      .def(nb::init<int64_t>(), "bytes"_a)
      .def(
          "measure",
          [](mlx_qmm::cpu::BandwidthProbe& probe, int repeats) {
            nb::gil_scoped_release release;
            const auto bw = probe.measure(repeats);
            return std::map<std::string, double>{
                {"read", bw.read}, {"copy", bw.copy}};
          },
          "repeats"_a = 5,
          "Bytes/s on the kernels' threads: 'read' (a sum) and 'copy' (read "
          "+ written bytes), medians of `repeats` passes.");
  m.def(
      "cpu_fma_peak",
      [](double seconds, int repeats) {
        return mlx_qmm::cpu::measure_fma_peak(
            mlx_qmm::cpu::active_kernels(), seconds, repeats);
      },
      "seconds"_a = 0.2,
      "repeats"_a = 3,
      "FLOP/s of register FMAs at the active CPU kernel level on all the "
      "kernels' threads: the CPU's compute ceiling.");

  m.attr("BUILT_AGAINST_MLX") = MLX_QMM_BUILT_AGAINST_MLX;
  m.attr("LINKED_MLX") = mlx::core::version();
  m.attr("SUPPORTED_BITS") = nb::tuple(nb::cast(std::vector<int>(
      mlx_qmm::kSupportedBits.begin(), mlx_qmm::kSupportedBits.end())));
  m.attr("SUPPORTED_GROUP_SIZES") = nb::tuple(nb::cast(std::vector<int>(
      mlx_qmm::kSupportedGroupSizes.begin(),
      mlx_qmm::kSupportedGroupSizes.end())));
  m.attr("DEFAULT_GROUP_SIZE") = mlx_qmm::kDefaultGroupSize;
  m.attr("DEFAULT_BITS") = mlx_qmm::kDefaultBits;
  m.attr("CPU_PANEL_COLUMNS") = mlx_qmm::cpu::kPanelColumns;
  m.attr("CPU_ROW_BLOCK") = mlx_qmm::cpu::kRowBlock;
  m.attr("CPU_MICRO_ROWS") = mlx_qmm::cpu::kMicroRows;
  m.attr("CPU_GEMV_MAX_ROWS") = mlx_qmm::cpu::kGemvMaxRows;
  m.attr("CPU_GEMV_COLUMNS_PER_CALL") = mlx_qmm::cpu::kGemvColumnsPerCall;
  m.attr("CPU_SPLIT_BLOCK_VALUES") = mlx_qmm::cpu::kSplitBlockValues;
  m.attr("CPU_SPLIT_LANE_VALUES") = mlx_qmm::cpu::kSplitLaneValues;
  m.def(
      "cpu_gemv_columns_per_task",
      &mlx_qmm::cpu::gemv_columns_per_task,
      "n"_a,
      "threads"_a,
      "Output columns of one CPU matrix-vector task (the driver's split).");
  m.attr("CPU_DEPTH_BLOCK") = mlx_qmm::cpu::kDepthBlock;
  m.attr("CUDA_DEQUANTIZE_FIRST_MIN_ROWS") =
      mlx_qmm::cuda::kDequantizeFirstMinRows;
  m.attr("CUDA_DEQUANTIZE_FIRST_MIN_ROWS_UNFUSED") =
      mlx_qmm::cuda::kDequantizeFirstMinRowsUnfused;
  m.attr("CUDA_SKINNY_CLUSTER_MIN_ROWS") = mlx_qmm::cuda::kSkinnyClusterMinRows;
  m.attr("CUDA_SKINNY_CLUSTER_MAX_SPLITS") =
      mlx_qmm::cuda::kSkinnyClusterMaxSplits;
  m.attr("CUDA_SKINNY_CLUSTER_BLOCKS_PER_SM") =
      mlx_qmm::cuda::kSkinnyClusterBlocksPerSM;
  m.attr("CUDA_SKINNY_CLUSTER_COLS") = mlx_qmm::cuda::kSkinnyClusterCols;
  m.attr("CUDA_SKINNY_RING_ROWS_W") = mlx_qmm::cuda::kSkinnyRingRowsW;
  m.attr("CUDA_SKINNY_RING_STAGE_K") = mlx_qmm::cuda::kSkinnyRingStageK;
  m.attr("CUDA_SKINNY_RING_MIN_FILL_TENTHS") =
      mlx_qmm::cuda::kSkinnyRingMinFillTenths;
  m.attr("CUDA_SKINNY_RING_THREADS") = mlx_qmm::cuda::skinny_ring_threads();
  m.attr("CUDA_SKINNY_RING_SHARED_BYTES") =
      mlx_qmm::cuda::skinny_ring_shared_bytes();
  m.attr("CUDA_MATVEC_TENSOR_MAX_GROUPS") =
      mlx_qmm::cuda::kMatvecTensorMaxGroups;
}
