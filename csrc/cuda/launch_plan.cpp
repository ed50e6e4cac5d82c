// Copyright © 2026 mlx-qmm contributors.

#include "csrc/cuda/launch_plan.h"

namespace mlx_qmm::cuda {

namespace {

int ceil_div(int a, int b) {
  return (a + b - 1) / b;
}

const char* type_name(FloatType type) {
  switch (type) {
    case FloatType::Float32:
      return "f32";
    case FloatType::Float16:
      return "f16";
    case FloatType::BFloat16:
      return "bf16";
  }
  return "?";
}

const char* tile_name(TensorTile tile) {
  switch (tile) {
    case TensorTile::Small:
      return "small";
    case TensorTile::Medium:
      return "medium";
    case TensorTile::Large:
      return "large";
    case TensorTile::Huge:
      return "huge";
  }
  return "?";
}

std::string weights_name(const MatmulProblem& p) {
  return p.bits == 0 ? std::string("dense_") + type_name(p.type)
                     : std::string("affine_") + type_name(p.type) + "_b" +
          std::to_string(p.bits);
}

int tile_blocks(TensorTile tile, const MatmulProblem& p) {
  const TensorTileShape s = tensor_tile_shape(tile);
  return ceil_div(p.n, s.block_n) * ceil_div(p.m, s.block_m);
}

int tile_blocks(WgmmaTile tile, const MatmulProblem& p) {
  return ceil_div(p.n, wgmma_w_rows(tile, p.bits)) *
      ceil_div(p.m, wgmma_x_rows(tile, p.bits));
}

// A tile size serves if its blocks fill at least this share of the SMs
// (tenths): 128 large tiles on the H100's 132 SMs (q4 and q8 4096x14336,
// M = 512) took 0.25 and 0.29 ms against 0.39 and 0.43 for the 256 medium
// tiles that a one-block-per-SM rule chose.
constexpr int kTensorTileMinFillTenths = 9;

template <class Tile>
bool tile_fills_gpu(Tile tile, const MatmulProblem& p) {
  return 10 * tile_blocks(tile, p) >=
      kTensorTileMinFillTenths * p.multiprocessors;
}

} // namespace

LaunchPlan plan_matmul(const MatmulProblem& p) {
  const bool k_in_chunks = p.bits != 0 || p.k % 8 == 0;
  const bool tensor_type = p.type != FloatType::Float32;
  // Beyond one row, tensor cores do the products of float16 / bfloat16 far
  // faster than the matrix-vector kernel's FMAs (which then bound it).
  const bool matvec_rows = p.m == 1 || (!tensor_type && p.m <= kMatvecMaxRows);
  if (p.transpose && p.aligned && k_in_chunks && matvec_rows) {
    const int rows = p.m == 1 ? 1 : kMatvecMaxRows;
    return {
        KernelKind::Matvec,
        rows,
        TensorTile::Small,
        WgmmaTile::Narrow,
        {ceil_div(p.n, kMatvecRowsPerBlock), 1, 1},
        kMatvecWarps * 32,
        0,
        "matvec_" + weights_name(p) + "_rows" + std::to_string(rows)};
  }
  if (p.transpose && p.aligned && tensor_type && p.bits != 0 &&
      p.k % kSkinnyChunk == 0 && p.m <= kSkinnyMaxRows) {
    const int rows = p.m <= 8 ? 8 : p.m <= 16 ? 16 : kSkinnyMaxRows;
    return {
        KernelKind::Skinny,
        rows,
        TensorTile::Small,
        WgmmaTile::Narrow,
        {ceil_div(p.n, kSkinnyCols), ceil_div(p.m, rows), 1},
        kSkinnyWarps * 32,
        0,
        "skinny_" + weights_name(p) + "_rows" + std::to_string(rows)};
  }
  if (p.sm90 && (p.bits == 0 || wgmma_affine_bits(p.bits)) && p.transpose &&
      p.aligned && k_in_chunks && tensor_type && p.m > kWgmmaMinRows) {
    for (WgmmaTile tile : {WgmmaTile::Wide, WgmmaTile::Narrow}) {
      if (tile_fills_gpu(tile, p)) {
        // x tiles along the grid's x (wgmma_gemm.cuh says why).
        return {
            KernelKind::Wgmma,
            0,
            TensorTile::Small,
            tile,
            {ceil_div(p.m, wgmma_x_rows(tile, p.bits)),
             ceil_div(p.n, wgmma_w_rows(tile, p.bits)),
             1},
            kWgmmaThreads,
            wgmma_smem_bytes(tile, p.bits),
            "wgmma_" + weights_name(p) +
                (tile == WgmmaTile::Wide ? "_wide" : "_narrow")};
      }
    }
  }
  if (p.transpose && p.aligned && k_in_chunks && tensor_type) {
    TensorTile tile = TensorTile::Small;
    for (TensorTile t :
         {TensorTile::Huge, TensorTile::Large, TensorTile::Medium}) {
      if (tile_fills_gpu(t, p)) {
        tile = t;
        break;
      }
    }
    const TensorTileShape s = tensor_tile_shape(tile);
    return {
        KernelKind::Tensor,
        0,
        tile,
        WgmmaTile::Narrow,
        {ceil_div(p.n, s.block_n), ceil_div(p.m, s.block_m), 1},
        s.threads(),
        tensor_smem_bytes(tile, p.bits),
        "tensor_" + weights_name(p) + "_" + tile_name(tile)};
  }
  return {
      KernelKind::Simt,
      0,
      TensorTile::Small,
      WgmmaTile::Narrow,
      {ceil_div(p.n, kSimtBlockN), ceil_div(p.m, kSimtBlockM), 1},
      kSimtThreads,
      0,
      "simt_" + weights_name(p) + (p.transpose ? "_t" : "_n")};
}

} // namespace mlx_qmm::cuda
