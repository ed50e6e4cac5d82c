// Copyright © 2026 mlx-qmm contributors.

#include "csrc/metal/kernel_selection.h"

#include <stdexcept>

#include "kernels/metal/dense_gemv_params.h"
#include "kernels/metal/qmv_affine_params.h"
#include "kernels/metal/tiled_matmul_params.h"

namespace mlx_qmm::metal {

const KernelRule& select_kernel(bool quantized, bool transpose, int64_t rows) {
  for (const auto& rule : kKernelRules) {
    if (rule.quantized == quantized && rule.transpose == transpose &&
        rows <= rule.max_rows) {
      return rule;
    }
  }
  throw std::logic_error("[select_kernel] kKernelRules has no rule");
}

std::string kernel_name(MetalKernel kernel) {
  switch (kernel) {
    case MetalKernel::QmvAffine:
      return "qmv_affine";
    case MetalKernel::QmmAffine:
      return "qmm_affine";
    case MetalKernel::DenseGemv:
      return "dense_gemv";
    case MetalKernel::DenseGemm:
      return "dense_gemm";
  }
  return "";
}

std::string threadgroup_work(const KernelRule& rule) {
  using std::to_string;
  switch (rule.kernel) {
    case MetalKernel::QmvAffine: {
      namespace qmv = qmm::qmv_affine;
      return to_string(qmv::kRowsPerThreadgroup) + " outputs of one row (" +
          to_string(qmv::kSimdgroups) + " SIMD groups x " +
          to_string(qmv::kRowsPerSimdgroup) + "), K in blocks of " +
          to_string(qmv::kGroupsPerBlock) + " groups (one per lane)";
    }
    case MetalKernel::DenseGemv: {
      namespace gemv = qmm::dense_gemv;
      return to_string(gemv::kColumnsPerThreadgroup) + " outputs of one row (" +
          to_string(gemv::kSimdgroups) + " SIMD groups x " +
          to_string(gemv::kColumnsPerSimdgroup) + "), K in steps of " +
          to_string(gemv::kSimdWidth * gemv::kValuesPerLane);
    }
    case MetalKernel::QmmAffine:
    case MetalKernel::DenseGemm: {
      namespace tiled = qmm::tiled_matmul;
      const int fragments = tiled::fragments_per_simdgroup(rule.tile);
      return to_string(rule.tile) + " x " + to_string(rule.tile) +
          " output tile (" + to_string(tiled::kSimdgroupsM) + " x " +
          to_string(tiled::kSimdgroupsN) + " SIMD groups, each " +
          to_string(fragments) + " x " + to_string(fragments) +
          " simdgroup_matrix fragments of " + to_string(tiled::kFragment) +
          " x " + to_string(tiled::kFragment) + "), K in steps of " +
          to_string(tiled::kTileK);
    }
  }
  return "";
}

} // namespace mlx_qmm::metal
