// Copyright © 2026 mlx-qmm contributors.

#include "csrc/cuda/launch_plan.h"

#include <algorithm>

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
// Where no warpgroup tile, split or not, fills that share, unsplit narrow
// tiles still serve from this share down, ahead of the mma.sync tensor
// GEMM: 112 of them on the H100's 132 SMs (w of 14336 rows, M = 65..128)
// took q4 / q8 / dense M = 128 in 56 / 67 / 46 us against 101 / 114 / 90
// for the 224 medium tensor tiles (bench/cuda_kernels.md), where split in
// two they would run 1.7 waves.
constexpr int kWgmmaNarrowMinFillTenths = 8;
// Dense wide tiles of one x tile (M <= 128) split into shares of fewer K
// steps than this give way to narrow tiles split fewer ways where those
// make a wave: at 4096 x 14336, M = 128, 8 wide shares of 28 steps took
// about 60.3 us against 52.9 for 4 narrow shares of 56 (stock 50.8), while
// at M = 200 and 512 (two and four x tiles, wide shares of 56 and 112
// steps) the wide splits stayed ahead: 64.5 against 72.4 us and 115.8
// against 127.4 (bench/cuda_kernels.md).
constexpr int kWgmmaDenseWideSplitMinSteps = 32;
// Those narrow tiles split only until their blocks fill this share of the
// SMs (tenths): one x tile against dense w is bound by w's bytes, which
// half the SMs stream at the memory's rate, and each split adds float32
// partials and the split sum (about 3.5 us at 4096 x 14336, M = 128). There
// 64 blocks (2 splits) took 49.8-50.1 us against 52.8-53.2 for 128 (4
// splits) and 50.2 for stock (bench/cuda_kernels.md).
constexpr int kWgmmaDenseNarrowMinFillTenths = 4;

template <class Tile>
bool tile_fills_gpu(Tile tile, const MatmulProblem& p) {
  return 10 * tile_blocks(tile, p) >=
      kTensorTileMinFillTenths * p.multiprocessors;
}

LaunchPlan wgmma_plan(WgmmaTile tile, const MatmulProblem& p, int splits) {
  const int k_steps = ceil_div(p.k, kWgmmaBlockK);
  const int steps_per_split = ceil_div(k_steps, splits);
  // Every split has steps: 9 steps split 4 ways are 3 + 3 + 3, not 3 x 4.
  const int k_splits = ceil_div(k_steps, steps_per_split);
  // x tiles along the grid's x (wgmma_gemm.cuh says why).
  return {
      KernelKind::Wgmma,
      0,
      TensorTile::Small,
      tile,
      {ceil_div(p.m, wgmma_x_rows(tile, p.bits)),
       ceil_div(p.n, wgmma_w_rows(tile, p.bits)),
       k_splits},
      kWgmmaThreads,
      wgmma_smem_bytes(tile, p.bits),
      "wgmma_" + weights_name(p) +
          (tile == WgmmaTile::Wide ? "_wide" : "_narrow") +
          (k_splits > 1 ? "_split" + std::to_string(k_splits) : ""),
      steps_per_split,
      k_splits};
}

// The K splits (2 .. kWgmmaMaxSplits; from 1 where first_split is 1)
// whose blocks make one wave that fills min_fill_tenths of the SMs (90% by
// default), with at least kWgmmaMinSplitSteps steps each; 0 if none. (112
// tiles split in two would run 1.7 waves of shorter blocks.)
int wgmma_splits(
    WgmmaTile tile,
    const MatmulProblem& p,
    int min_fill_tenths = kTensorTileMinFillTenths,
    int first_split = 2) {
  const int blocks = tile_blocks(tile, p);
  const int k_steps = ceil_div(p.k, kWgmmaBlockK);
  for (int splits = first_split; splits <= kWgmmaMaxSplits; ++splits) {
    if ((splits > 1 && ceil_div(k_steps, splits) < kWgmmaMinSplitSteps) ||
        blocks * splits > p.multiprocessors) {
      return 0;
    }
    if (10 * blocks * splits >= min_fill_tenths * p.multiprocessors) {
      return splits;
    }
  }
  return 0;
}

// Rows of x that a tile's grid covers, padding included.
int padded_rows(WgmmaTile tile, const MatmulProblem& p) {
  const int rows = wgmma_x_rows(tile, p.bits);
  return ceil_div(p.m, rows) * rows;
}

// The K splits of the cluster-split few-row kernel, or 0 where it does not
// serve: as many as the column tiles leave room for in
// kSkinnyClusterBlocksPerSM blocks an SM, at most kSkinnyClusterMaxSplits
// and one K chunk a split.
int skinny_cluster_splits(const MatmulProblem& p) {
  if (!p.sm90 || p.m < kSkinnyClusterMinRows) {
    return 0;
  }
  const int tiles = ceil_div(p.n, kSkinnyClusterCols);
  const int room = kSkinnyClusterBlocksPerSM * p.multiprocessors / tiles;
  return std::min({room, kSkinnyClusterMaxSplits, p.k / kSkinnyChunk});
}

// Whether the ring-fed few-row kernel serves: 4 bits on sm_90, 17 to 32
// rows of x, whole stages of K, groups of at most 128 values (a stage's
// scales of a row, 2 to 8 groups, are one 4- to 16-byte copy), and enough
// rows of W to fill the SMs without a K split.
bool skinny_ring_serves(const MatmulProblem& p) {
  return p.sm90 && p.bits == 4 && p.m >= kSkinnyClusterMinRows &&
      p.k % kSkinnyRingStageK == 0 && p.group_size <= 128 &&
      10 * ceil_div(p.n, kSkinnyRingRowsW) >=
      kSkinnyRingMinFillTenths * p.multiprocessors;
}

} // namespace

LaunchPlan plan_matmul(const MatmulProblem& p) {
  const bool k_in_chunks = p.bits != 0 || p.k % 8 == 0;
  const bool tensor_type = p.type != FloatType::Float32;
  if (p.transpose && p.aligned && tensor_type && p.bits == 4 && p.m == 1 &&
      p.k / p.group_size <= kMatvecTensorMaxGroups) {
    return {
        KernelKind::MatvecTensor,
        1,
        TensorTile::Small,
        WgmmaTile::Narrow,
        {ceil_div(p.n, kMatvecRowsPerBlock), 1, 1},
        kMatvecWarps * 32,
        matvec_tensor_shared_bytes(p.k / p.group_size),
        "matvec_tensor_" + weights_name(p)};
  }
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
    if (skinny_ring_serves(p)) {
      return {
          KernelKind::SkinnyRing,
          kSkinnyMaxRows,
          TensorTile::Small,
          WgmmaTile::Narrow,
          {ceil_div(p.n, kSkinnyRingRowsW), 1, 1},
          skinny_ring_threads(),
          skinny_ring_shared_bytes(),
          "skinny_ring_" + weights_name(p) + "_rows" +
              std::to_string(kSkinnyMaxRows)};
    }
    if (const int splits = skinny_cluster_splits(p); splits > 1) {
      LaunchPlan plan{
          KernelKind::SkinnyCluster,
          kSkinnyMaxRows,
          TensorTile::Small,
          WgmmaTile::Narrow,
          {ceil_div(p.n, kSkinnyClusterCols) * splits,
           ceil_div(p.m, kSkinnyMaxRows),
           1},
          kSkinnyWarps * 32,
          0,
          "skinny_cluster_" + weights_name(p) + "_rows" +
              std::to_string(kSkinnyMaxRows) + "_split" +
              std::to_string(splits)};
      plan.cluster = splits;
      return plan;
    }
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
  if (p.transpose && p.aligned && k_in_chunks && tensor_type && p.bits == 0 &&
      p.m <= (p.sm90 ? kSkinnyDenseMaxRows : kSkinnyDenseMaxRowsBeforeSm90)) {
    const int x_rows = skinny_dense_x_rows(p.m);
    return {
        KernelKind::SkinnyDense,
        x_rows,
        TensorTile::Small,
        WgmmaTile::Narrow,
        {ceil_div(p.n, skinny_dense_rows_w(x_rows)), 1, 1},
        kSkinnyDenseWarps * 32,
        skinny_dense_shared_bytes(x_rows),
        "skinny_" + weights_name(p) + "_rows" + std::to_string(x_rows)};
  }
  if (p.sm90 && p.bits != 0 && p.m >= dequantize_first_min_rows(p.bits)) {
    MatmulProblem dense = p;
    dense.bits = 0;
    LaunchPlan plan = plan_matmul(dense);
    if (plan.kind == KernelKind::Wgmma) {
      plan.dequantize_first = true;
      plan.name = "dequantize_" + weights_name(p) + "+" + plan.name;
      return plan;
    }
  }
  if (p.sm90 && (p.bits == 0 || wgmma_affine_bits(p.bits)) && p.transpose &&
      p.aligned && k_in_chunks && tensor_type && p.m > kWgmmaMinRows) {
    if (tile_fills_gpu(WgmmaTile::Wide, p)) {
      return wgmma_plan(WgmmaTile::Wide, p, 1);
    }
    // Split wide tiles multiply x by twice the rows of w that narrow ones
    // do, for the same stage handovers; but not where they pad x more (4-
    // and 8-bit wide tiles take 256 rows of x).
    const int wide_splits = wgmma_splits(WgmmaTile::Wide, p);
    const int narrow_splits = wgmma_splits(WgmmaTile::Narrow, p);
    if (p.bits == 0 && wide_splits > 0 && p.m <= kWgmmaBlockM &&
        ceil_div(ceil_div(p.k, kWgmmaBlockK), wide_splits) <
            kWgmmaDenseWideSplitMinSteps &&
        narrow_splits > 0) {
      return wgmma_plan(
          WgmmaTile::Narrow,
          p,
          wgmma_splits(
              WgmmaTile::Narrow, p, kWgmmaDenseNarrowMinFillTenths, 1));
    }
    if (wide_splits > 0 &&
        padded_rows(WgmmaTile::Wide, p) <= padded_rows(WgmmaTile::Narrow, p)) {
      return wgmma_plan(WgmmaTile::Wide, p, wide_splits);
    }
    if (tile_fills_gpu(WgmmaTile::Narrow, p)) {
      return wgmma_plan(WgmmaTile::Narrow, p, 1);
    }
    if (narrow_splits > 0) {
      return wgmma_plan(WgmmaTile::Narrow, p, narrow_splits);
    }
    if (10 * tile_blocks(WgmmaTile::Narrow, p) >=
        kWgmmaNarrowMinFillTenths * p.multiprocessors) {
      return wgmma_plan(WgmmaTile::Narrow, p, 1);
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
