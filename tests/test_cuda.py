"""Our CUDA kernels on MLX's CUDA backend, against stock MLX in float32.

Runs only where MLX has its CUDA backend and a GPU (an NVIDIA machine; see
bench/cuda_device.sh); CI has neither, and these tests skip there with that
reason. The launch-plan rules (which kernel serves which case) are plain C++
and are tested everywhere, at the end of this file.

Each case is picked to land on one kernel of the plan (matvec for M <= 8,
tensor cores for float16/bfloat16 beyond, the CUDA-core kernel for float32,
x @ w and unaligned operands) with partial tiles in M, N and K.
"""

from __future__ import annotations

import itertools
import re

import mlx.core as mx
import mlx_qmm
import numpy as np
import pytest
from conftest import (
    DTYPES,
    SUPPORTED_BITS,
    TOLERANCE,
    assert_close,
    evaluate_poisoned,
    random_quantized,
    reference_qmm,
)

EXT = mlx_qmm._loader._ext


def _cuda_gpu() -> bool:
    cuda = getattr(mx, "cuda", None)
    return bool(cuda and cuda.is_available())


needs_cuda = pytest.mark.skipif(
    not _cuda_gpu(), reason="needs MLX's CUDA backend and an NVIDIA GPU"
)

# (M, N, K) per kernel: partial matvec blocks (N % 16), skinny blocks (N % 32,
# blocks of 8, 16 and 32 rows, fewer K chunks than warps and uneven shares of
# them), tensor tiles (M % 32, N % 64, K % 64) and CUDA-core tiles (M, N % 64,
# K % 16). With 2 <= M <= 8 the matvec shapes land on the 8-row matvec in
# float32 only; quantized float16 and bfloat16 take the skinny kernel there
# too, wherever K is a multiple of 128 and 2 <= M <= 32 (on sm_90 from 17
# rows the cluster-split one: (30, 72, 384) in 3 splits).
MATVEC_SHAPES = [(1, 200, 512), (3, 37, 256), (8, 1000, 2048)]
SKINNY_SHAPES = [(2, 40, 128), (7, 300, 640), (16, 100, 1152), (30, 72, 384)]
TILED_SHAPES = [(9, 130, 448), (40, 300, 1024), (300, 520, 192)]
# The warpgroup GEMM (sm_90, dense weights) serves only grids that fill the
# GPU, so its shapes are large: wide tiles with a partial last x tile (300 =
# 2 x 128 + 44) and narrow ones with a partial, odd last w tile (7643 = 59 x
# 128 + 91), over K steps whose last is partial (K = 200, 520 and 4104:
# 3, 8 and 64 steps of 64, and 8 values), the last wrapping the ring 16 times.
# (96, 13952, 520): 109 narrow blocks, 83% of the SMs, neither 90% nor
# splittable into one wave; unsplit narrow tiles still take it.
WGMMA_SHAPES = [
    (300, 10240, 200),
    (130, 7643, 520),
    (129, 15360, 4104),
    (96, 13952, 520),
]
# With 4- and 8-bit weights its tiles are 128 rows of w by 256 (wide) or 128
# (narrow) rows of x: a partial, odd last w tile and a partial last x tile
# (300 = 256 + 44, 130 = 128 + 2); K = 608, 576 or 512 by group size: 9.5,
# 9 or 8 steps of 64, wrapping the ring of 5 or 6 stages.
WGMMA_AFFINE_SHAPES = [(300, 7643, 608), (130, 7680, 608), (96, 13952, 608)]
# Grids too small for the GPU split K between blocks (float32 partial sums,
# then split_sum): (shape, dense or bits, the plan's tile and split) with
# partial x and w tiles and, for some group sizes, a partial last K step;
# 8200 = 128 steps of 64 and 8 values split 5 ways (26 + 26 + 26 + 26 + 25).
WGMMA_SPLIT_CASES = [
    ((200, 4096, 4104), "dense", "wide_split4"),
    ((70, 3001, 8200), "dense", "narrow_split5"),
    ((100, 4000, 4096), "quantized", "narrow_split4"),
    ((500, 4000, 2080), "quantized", "wide_split2"),
]


# The few-row dense kernel (float16 / bfloat16, 2 to 16 rows of x): x tiles
# of 8 rows (M <= 8) and 16, partial blocks of 16 rows of W (40, 300, 100,
# 33), K in stages of 128 split between a block's 4 warps: one stage (three
# warps idle), a partial last stage (1000 = 7 x 128 + 104, 200, 4104 = 32 x
# 128 + 8), and the benchmark's shapes (uneven shares: 112 stages at 14336).
SKINNY_DENSE_SHAPES = [
    (2, 40, 128),
    (8, 300, 1000),
    (9, 33, 200),
    (16, 100, 4104),
    (5, 14336, 4096),
    (11, 4096, 14336),
    # 32-row x tiles (sm_90): 32 rows of W a block, partial blocks of W and
    # of x, one stage, partial last stages.
    (17, 70, 136),
    (24, 33, 1000),
    (32, 100, 4104),
    (29, 4096, 14336),
    (32, 14336, 4096),
]

# The cluster-split few-row kernel (sm_90, 17 to 32 rows of x): (shape,
# its K splits on the H100's 132 SMs). A partial last column tile of 256
# rows of W (300, 4000) and uneven K shares (9 chunks of 128 split 8 ways:
# seven of one chunk and one of two), one chunk a split (384 = 3 x 128),
# and the benchmark's 14336 x 4096 (56 tiles, 4 splits of 8 chunks; 8 bits
# only: 4 bits take the ring-fed kernel there). Each
# warp copies its rows' scales and biases 8 groups at a time: 16-byte copies
# where a row's groups are a multiple of 8 (2048, 4096, 8192), plain loads
# where not (1152, 384). A split's groups span two such windows at 4096
# (4 chunks a split, 16 groups of 32), and one, two or four at 8192 (8
# chunks a split: 8, 16 or 32 groups of 128, 64 or 32).
SKINNY_CLUSTER_CASES = [
    ((17, 300, 1152), 8),
    ((32, 4000, 2048), 8),
    ((24, 520, 384), 3),
    ((20, 1000, 4096), 8),
    ((32, 2000, 8192), 8),
]
SKINNY_CLUSTER_MODEL_CASE = ((32, 14336, 4096), 4)

# The ring-fed few-row kernel (sm_90, 4 bits, 17 to 32 rows of x, blocks of
# 128 rows of W filling 80% of the SMs, K in stages of 256): the benchmark's
# 14336 x 4096 at 32 and 17 rows (16 stages, wrapping the ring of 4 slots
# four times); a partial last block of W (13600 = 106 x 128 + 32) over 2
# stages; an odd N (13601: no paired stores) over 3 stages, fewer than the
# ring's slots; one stage (16384 x 256); exactly as many stages as slots
# (14000 = 109 x 128 + 48, K = 1024). Group sizes 32, 64 and 128 copy 16, 8
# and 4 bytes of a row's scales and biases a stage.
SKINNY_RING_SHAPES = [
    (32, 14336, 4096),
    (17, 14336, 4096),
    (24, 13600, 512),
    (20, 13601, 768),
    (32, 16384, 256),
    (29, 14000, 1024),
]

# 4-bit decode (M = 1, float16 / bfloat16) on tensor cores, each block's
# scales and biases in shared memory: a last trip of fewer than 32 blocks a
# row (512 = 16 blocks, 1408 = 44); a partial last block of 16 rows of W (300
# = 18 x 16 + 12, 14330 = 895 x 16 + 10), whose run of scales ends off a
# 16-byte boundary at 300 rows and group size 128 (12 rows x 11 groups = 132
# values); the benchmark's shapes; and the longest row it takes at group
# size 32 (1024 groups, 64 KB of shared memory a block).
MATVEC_TENSOR_SHAPES = [
    (1, 200, 512),
    (1, 300, 1408),
    (1, 14330, 3584),
    (1, 14336, 4096),
    (1, 4096, 14336),
    (1, 40, 32768),
]

# The widths with a fused warpgroup GEMM (launch_plan.h: wgmma_affine_bits).
FUSED_WGMMA_BITS = (4, 8)

# From 768 rows of x (DEQUANTIZE_FIRST_MIN_ROWS; 384 for the widths other
# than 4 and 8 bits) on, sm_90 writes quantized weights out dense and the
# dense warpgroup GEMM multiplies them, with its own plan: (shape, batches of
# w, that plan's tile and split). Partial x and w tiles (1100 = 8 x 128 +
# 76, 4000 = 15 x 256 + 160); a K split in two (63 wide blocks, 36 steps);
# two weight batches, each dequantized into its own rows of one temporary;
# 400 rows, which only the other widths dequantize first (narrow tiles:
# 4 x 32 blocks, 400 = 3 x 128 + 16).
DEQUANTIZE_FIRST_CASES = [
    ((1100, 4000, 640), 1, "wide"),
    ((800, 2304, 2304), 1, "wide_split2"),
    ((900, 4000, 512), 2, "wide"),
    ((400, 4000, 640), 1, "narrow"),
]


def quantized_case(shape, bits, group_size, dtype_name):
    """(out, reference): x [M, K] @ w_hat.T + bias on the GPU with fresh
    random operands (out poisoned before the kernel writes it), and the
    float32 reference."""
    m, n, k = shape
    dtype = DTYPES[dtype_name]
    w, scales, biases, w_hat = random_quantized((n, k), group_size, bits, dtype)
    x = mx.random.normal((m, k)).astype(dtype)
    bias = mx.random.normal((n,)).astype(dtype)
    with mx.stream(mx.gpu):
        out = mlx_qmm.quantized_matmul(
            x, w, scales, biases, group_size=group_size, bits=bits, bias=bias
        )
        out = evaluate_poisoned(out)
    return out, reference_qmm(x, w_hat, True, bias)


def _served_by_us() -> None:
    kernels = mlx_qmm.backend_info()["kernels"]["gpu"]
    assert "CUDA kernels" in kernels["quantized_matmul"]
    assert EXT.cuda_kernel_list(True) in kernels["quantized_matmul"]
    assert EXT.cuda_kernel_list(False) in kernels["matmul"]


@needs_cuda
@pytest.mark.parametrize("bits", SUPPORTED_BITS)
@pytest.mark.parametrize("group_size", [32, 64, 128])
@pytest.mark.parametrize("dtype_name", list(DTYPES))
@pytest.mark.parametrize("shape", MATVEC_SHAPES + SKINNY_SHAPES + TILED_SHAPES)
def test_quantized_transposed(bits, group_size, dtype_name, shape, seed):
    m, n, k = shape
    k = max(group_size, k // group_size * group_size)
    out, ref = quantized_case((m, n, k), bits, group_size, dtype_name)
    _served_by_us()
    assert out.dtype == DTYPES[dtype_name]
    assert_close(out, ref, DTYPES[dtype_name], seed)


def assert_rows_and_columns_close(out, ref, dtype, seed):
    """Beyond the whole-matrix norm: every row and every column of out within
    twice the dtype's tolerance of its reference, so that one wrong tile row,
    column or edge cannot hide in a large output."""
    out = np.array(out.astype(mx.float32), dtype=np.float64)
    ref = np.array(ref.astype(mx.float32), dtype=np.float64)
    assert np.all(np.isfinite(out)), f"unwritten or non-finite outputs (seed={seed})"
    tol = 2 * TOLERANCE[dtype]
    for axis in (1, 0):
        err = np.linalg.norm(out - ref, axis=axis) / np.linalg.norm(ref, axis=axis)
        worst = int(np.argmax(err))
        assert err[worst] <= tol, (
            f"{'row' if axis == 1 else 'column'} {worst}: relative error "
            f"{err[worst]:.3e} > {tol:.1e} (seed={seed})"
        )


def assert_quantized_case_close(shape, bits, group_size, dtype_name, seed):
    """quantized_case within the dtype's tolerance, whole matrix and every
    row and column."""
    out, ref = quantized_case(shape, bits, group_size, dtype_name)
    assert_close(out, ref, DTYPES[dtype_name], seed)
    assert_rows_and_columns_close(out, ref, DTYPES[dtype_name], seed)


def _check_skinny_cluster(case, bits, group_size, dtype_name, seed):
    (m, n, k), splits = case
    k = k // group_size * group_size
    name = plan(dtype_name, bits, True, m, n, k, sm90=True)[0]
    assert name == (
        f"skinny_cluster_affine_{dtype_short(dtype_name)}_b{bits}_rows32_split{splits}"
    )
    assert_quantized_case_close((m, n, k), bits, group_size, dtype_name, seed)


@needs_cuda
@pytest.mark.parametrize("bits", SUPPORTED_BITS)
@pytest.mark.parametrize("group_size", [32, 64, 128])
@pytest.mark.parametrize("dtype_name", ["float16", "bfloat16"])
@pytest.mark.parametrize("case", SKINNY_CLUSTER_CASES)
def test_skinny_cluster(case, bits, group_size, dtype_name, seed):
    """The few-row GEMM with x in shared memory and K split between the
    blocks of a cluster, which add up their partial tiles through distributed
    shared memory (sm_90; the plan is checked for the H100's 132 SMs): every
    output row and column, so that one wrong split share or tile edge shows."""
    _check_skinny_cluster(case, bits, group_size, dtype_name, seed)


def assert_tiles_close(out, ref, dtype, seed, tile):
    """One row of out against its reference `tile` outputs at a time, each
    tile within twice the dtype's tolerance of its own norm: a wrong block of
    rows cannot hide in a long row (single outputs near zero would make
    per-element relative errors meaningless)."""
    out = np.array(out.astype(mx.float32), dtype=np.float64).reshape(-1)
    ref = np.array(ref.astype(mx.float32), dtype=np.float64).reshape(-1)
    assert np.all(np.isfinite(out)), f"unwritten or non-finite outputs (seed={seed})"
    tol = 2 * TOLERANCE[dtype]
    for start in range(0, out.size, tile):
        o, r = out[start : start + tile], ref[start : start + tile]
        err = np.linalg.norm(o - r) / np.linalg.norm(r)
        assert err <= tol, (
            f"outputs {start}..{start + o.size - 1}: relative error {err:.3e} "
            f"> {tol:.1e} (seed={seed})"
        )


def _check_decode(shape, group_size, dtype_name, seed, kernel):
    name = plan(dtype_name, 4, True, *shape, sm90=True, group_size=group_size)[0]
    assert name == f"{kernel}_affine_{dtype_short(dtype_name)}_b4" + (
        "_rows1" if kernel == "matvec" else ""
    )
    out, ref = quantized_case(shape, 4, group_size, dtype_name)
    dtype = DTYPES[dtype_name]
    assert_close(out, ref, dtype, seed)
    # Blocks of 16 rows of W (tiles of 10 where N is not a multiple of 16).
    assert_tiles_close(out, ref, dtype, seed, 16 if shape[1] % 16 == 0 else 10)


@needs_cuda
@pytest.mark.parametrize("group_size", [32, 64, 128])
@pytest.mark.parametrize("dtype_name", ["float16", "bfloat16"])
@pytest.mark.parametrize("shape", MATVEC_TENSOR_SHAPES)
def test_matvec_tensor(shape, group_size, dtype_name, seed):
    """4-bit decode on tensor cores, every block of rows of W."""
    _check_decode(shape, group_size, dtype_name, seed, "matvec_tensor")


@needs_cuda
@pytest.mark.parametrize("dtype_name", ["float16", "bfloat16"])
def test_matvec_streaming_beyond_tensor_groups(dtype_name, seed):
    """Rows of more groups than the tensor-core decode kernel keeps in shared
    memory stay with the CUDA-core streaming kernel."""
    groups = EXT.CUDA_MATVEC_TENSOR_MAX_GROUPS + 8
    _check_decode((1, 40, 32 * groups), 32, dtype_name, seed, "matvec")


@needs_cuda
@pytest.mark.parametrize("dtype_name", ["float16", "bfloat16"])
def test_skinny_cluster_model_shape(dtype_name, seed):
    """The benchmark's 14336 x 4096 at 32 rows, 8 bits (4 bits: below)."""
    _check_skinny_cluster(SKINNY_CLUSTER_MODEL_CASE, 8, 64, dtype_name, seed)


@needs_cuda
@pytest.mark.parametrize("group_size", [32, 64, 128])
@pytest.mark.parametrize("dtype_name", ["float16", "bfloat16"])
@pytest.mark.parametrize("shape", SKINNY_RING_SHAPES)
def test_skinny_ring(shape, group_size, dtype_name, seed):
    """The 4-bit few-row GEMM whose warps share a ring of shared-memory
    stages (sm_90; the plan is checked for the H100's 132 SMs), including
    the issue's M = 32 target shape: every output row and column, so that
    one wrong stage, row group, span or edge shows."""
    name = plan(dtype_name, 4, True, *shape, sm90=True, group_size=group_size)[0]
    assert name == f"skinny_ring_affine_{dtype_short(dtype_name)}_b4_rows32"
    assert_quantized_case_close(shape, 4, group_size, dtype_name, seed)


@needs_cuda
@pytest.mark.parametrize("with_bias", [True, False])
@pytest.mark.parametrize("dtype_name", ["float16", "bfloat16"])
@pytest.mark.parametrize("shape", SKINNY_DENSE_SHAPES)
def test_skinny_dense(shape, dtype_name, with_bias, seed):
    """Dense weights against 2 to 32 rows of x, K split between the warps of
    a block: every output row and column, so that one warp's missing share
    or a wrong edge of a block shows. (The 32-row x tile needs sm_90's
    shared memory; on other GPUs tensor_gemm computes those cases.)"""
    dtype = DTYPES[dtype_name]
    m, n, k = shape
    x_rows = 8 if m <= 8 else 16 if m <= 16 else 32
    assert plan(dtype_name, 0, True, m, n, k, sm90=True)[0] == (
        f"skinny_dense_{dtype_short(dtype_name)}_rows{x_rows}"
    )
    w = mx.random.normal((n, k)).astype(dtype)
    x = mx.random.normal((m, k)).astype(dtype)
    bias = mx.random.normal((n,)).astype(dtype) if with_bias else None
    with mx.stream(mx.gpu):
        out = evaluate_poisoned(mlx_qmm.matmul(x, w, bias=bias))
    ref = reference_qmm(x, w, True, bias)
    assert_close(out, ref, dtype, seed)
    assert_rows_and_columns_close(out, ref, dtype, seed)


@needs_cuda
@pytest.mark.parametrize("bits", [4, 8])
@pytest.mark.parametrize("group_size", [32, 64, 128])
@pytest.mark.parametrize("dtype_name", ["float16", "bfloat16"])
@pytest.mark.parametrize("shape", WGMMA_AFFINE_SHAPES)
def test_wgmma_quantized(bits, group_size, dtype_name, shape, seed):
    """Shapes that the warpgroup GEMM serves on an sm_90 GPU (the plan is
    checked for the H100's 132 SMs); elsewhere the tensor-core GEMM does."""
    m, n, k = shape
    k = k // group_size * group_size
    tile = "wide" if m > 256 else "narrow"
    name = plan(dtype_name, bits, True, m, n, k, sm90=True)[0]
    assert name == f"wgmma_affine_{dtype_short(dtype_name)}_b{bits}_{tile}"
    assert_quantized_case_close((m, n, k), bits, group_size, dtype_name, seed)


@needs_cuda
@pytest.mark.parametrize("dtype_name", ["float16", "bfloat16"])
@pytest.mark.parametrize(
    "case, bits, group_size",
    [
        (case, bits, group_size)
        for case in WGMMA_SPLIT_CASES
        for bits, group_size in (
            [(0, 0)] if case[1] == "dense" else [(4, 32), (4, 128), (8, 64)]
        )
    ],
)
def test_wgmma_split_k(case, bits, group_size, dtype_name, seed):
    """The warpgroup GEMM with K split between blocks, whose partial sums
    split_sum adds up with the bias (sm_90; the plan is checked for the
    H100's 132 SMs)."""
    (m, n, k), _, split = case
    dtype = DTYPES[dtype_name]
    if bits:
        k = k // group_size * group_size
    short = dtype_short(dtype_name)
    kind = f"affine_{short}_b{bits}" if bits else f"dense_{short}"
    assert plan(dtype_name, bits, True, m, n, k, sm90=True)[0] == (
        f"wgmma_{kind}_{split}"
    )
    x = mx.random.normal((m, k)).astype(dtype)
    bias = mx.random.normal((n,)).astype(dtype)
    if bits:
        w, scales, biases, w_ref = random_quantized((n, k), group_size, bits, dtype)
        args = (x, w, scales, biases)
        op = lambda: mlx_qmm.quantized_matmul(  # noqa: E731
            *args, group_size=group_size, bits=bits, bias=bias
        )
    else:
        w_ref = mx.random.normal((n, k)).astype(dtype)
        op = lambda: mlx_qmm.matmul(x, w_ref, bias=bias)  # noqa: E731
    with mx.stream(mx.gpu):
        out = evaluate_poisoned(op())
    ref = reference_qmm(x, w_ref, True, bias)
    assert_close(out, ref, dtype, seed)
    assert_rows_and_columns_close(out, ref, dtype, seed)


@needs_cuda
@pytest.mark.parametrize("dtype_name", ["float16", "bfloat16"])
@pytest.mark.parametrize("shape", WGMMA_SHAPES)
def test_wgmma_dense(dtype_name, shape, seed):
    """Shapes that the warpgroup GEMM serves on an sm_90 GPU (the plan is
    checked for the H100's 132 SMs); elsewhere the tensor-core GEMM does."""
    dtype = DTYPES[dtype_name]
    m, n, k = shape
    tile = "wide" if n % 256 == 0 else "narrow"
    assert plan(dtype_name, 0, True, m, n, k, sm90=True)[0] == (
        f"wgmma_dense_{dtype_short(dtype_name)}_{tile}"
    )
    w = mx.random.normal((n, k)).astype(dtype)
    x = mx.random.normal((m, k)).astype(dtype)
    bias = mx.random.normal((n,)).astype(dtype)
    with mx.stream(mx.gpu):
        out = evaluate_poisoned(mlx_qmm.matmul(x, w, bias=bias))
    ref = reference_qmm(x, w, True, bias)
    assert_close(out, ref, dtype, seed)
    assert_rows_and_columns_close(out, ref, dtype, seed)


@needs_cuda
@pytest.mark.parametrize("dtype_name", ["float16", "bfloat16"])
@pytest.mark.parametrize(
    "case, bits, group_size",
    [(DEQUANTIZE_FIRST_CASES[0], b, g) for b in SUPPORTED_BITS for g in (32, 64, 128)]
    + [(c, b, 64) for c in DEQUANTIZE_FIRST_CASES[1:3] for b in (3, 4, 8)]
    + [
        (DEQUANTIZE_FIRST_CASES[3], b, 64)
        for b in SUPPORTED_BITS
        if b not in FUSED_WGMMA_BITS
    ],
)
def test_dequantize_first(case, bits, group_size, dtype_name, seed):
    """Quantized weights written out dense by dequantize_affine, then the
    dense warpgroup GEMM (sm_90; the plan is checked for the H100's 132 SMs),
    with the dequantized temporary poisoned like the output."""
    (m, n, k), batches, tile = case
    dtype = DTYPES[dtype_name]
    k = k // group_size * group_size
    short = dtype_short(dtype_name)
    assert m >= dequantize_first_min_rows(bits)
    assert plan(dtype_name, bits, True, m, n, k, sm90=True)[0] == (
        f"dequantize_affine_{short}_b{bits}+wgmma_dense_{short}_{tile}"
    )
    lead = (batches,) if batches > 1 else ()
    w, scales, biases, w_hat = random_quantized((*lead, n, k), group_size, bits, dtype)
    x = mx.random.normal((*lead, m, k)).astype(dtype)
    bias = mx.random.normal((n,)).astype(dtype)
    with mx.stream(mx.gpu):
        out = mlx_qmm.quantized_matmul(
            x, w, scales, biases, group_size=group_size, bits=bits, bias=bias
        )
        out = evaluate_poisoned(out, temporaries=(((batches * n, k), dtype),))
    ref = reference_qmm(x, w_hat, True, bias)
    assert_close(out, ref, dtype, seed)
    for b in range(batches):
        assert_rows_and_columns_close(
            out.reshape(-1, m, n)[b], ref.reshape(-1, m, n)[b], dtype, seed
        )


@needs_cuda
@pytest.mark.parametrize("bits", [2, 4, 5, 8])
@pytest.mark.parametrize("dtype_name", list(DTYPES))
@pytest.mark.parametrize("shape", [(1, 256, 96), (20, 320, 130)])
def test_quantized_not_transposed(bits, dtype_name, shape, seed):
    dtype = DTYPES[dtype_name]
    m, n, k = shape
    # x @ w: w is [K, N], packed and grouped along N.
    w, scales, biases, w_hat = random_quantized((k, n), 64, bits, dtype)
    x = mx.random.normal((m, k)).astype(dtype)
    with mx.stream(mx.gpu):
        out = evaluate_poisoned(
            mlx_qmm.quantized_matmul(x, w, scales, biases, transpose=False, bits=bits)
        )
    assert_close(out, reference_qmm(x, w_hat, False), dtype, seed)


@needs_cuda
@pytest.mark.parametrize("transpose", [True, False])
@pytest.mark.parametrize("dtype_name", list(DTYPES))
@pytest.mark.parametrize(
    "shape", [(1, 300, 1024), (6, 33, 200), (70, 200, 320), (257, 129, 100)]
)
def test_dense(transpose, dtype_name, shape, seed):
    dtype = DTYPES[dtype_name]
    m, n, k = shape
    w = mx.random.normal((n, k) if transpose else (k, n)).astype(dtype)
    x = mx.random.normal((m, k)).astype(dtype)
    bias = mx.random.normal((n,)).astype(dtype)
    with mx.stream(mx.gpu):
        out = evaluate_poisoned(mlx_qmm.matmul(x, w, transpose=transpose, bias=bias))
    assert_close(out, reference_qmm(x, w, transpose, bias), dtype, seed)


@needs_cuda
@pytest.mark.parametrize("dtype_name", list(DTYPES))
@pytest.mark.parametrize("m", [1, 5, 24, 64])
def test_batched_broadcast_and_strided(dtype_name, m, seed):
    """Batched weights broadcast against x, a transposed view of x and an
    operand that starts off a 16-byte boundary all take the copy or the
    unaligned path and still match (24 rows: one cluster-split launch a
    weight batch on sm_90)."""
    dtype = DTYPES[dtype_name]
    n, k = 96, 256
    w, scales, biases, w_hat = random_quantized((3, 1, n, k), 64, 4, dtype)
    x = mx.swapaxes(mx.random.normal((2, k, m)).astype(dtype), -1, -2)  # strided
    with mx.stream(mx.gpu):
        out = evaluate_poisoned(mlx_qmm.quantized_matmul(x, w, scales, biases))
    assert out.shape == (3, 2, m, n)
    assert_close(out, reference_qmm(x, w_hat, True), dtype, seed)

    flat = mx.random.normal((m * k + 1,)).astype(dtype)
    mx.eval(flat)
    shifted = flat[1:].reshape(m, k)  # contiguous, one element off alignment
    wd = mx.random.normal((n, k)).astype(dtype)
    with mx.stream(mx.gpu):
        out = evaluate_poisoned(mlx_qmm.matmul(shifted, wd))
    assert_close(out, reference_qmm(shifted, wd, True), dtype, seed)


@needs_cuda
def test_model_shape_decode_and_prefill(seed):
    """The benchmark's 4-bit bfloat16 shape at decode and prefill sizes."""
    n, k = 4096, 4096
    w, scales, biases, w_hat = random_quantized((n, k), 64, 4, mx.bfloat16)
    for m in (1, 32, 512):
        x = mx.random.normal((m, k)).astype(mx.bfloat16)
        with mx.stream(mx.gpu):
            out = evaluate_poisoned(mlx_qmm.quantized_matmul(x, w, scales, biases))
        assert_close(out, reference_qmm(x, w_hat, True), mx.bfloat16, seed)


# ----------------------------- launch plan (everywhere) -----------------------------

H100_SMS = 132
DEQUANTIZE_FIRST_MIN_ROWS = EXT.CUDA_DEQUANTIZE_FIRST_MIN_ROWS
DEQUANTIZE_FIRST_MIN_ROWS_UNFUSED = EXT.CUDA_DEQUANTIZE_FIRST_MIN_ROWS_UNFUSED


def dequantize_first_min_rows(bits: int) -> int:
    """Rows of x from which the plan dequantizes weights of ``bits`` first."""
    if bits in FUSED_WGMMA_BITS:
        return DEQUANTIZE_FIRST_MIN_ROWS
    return DEQUANTIZE_FIRST_MIN_ROWS_UNFUSED


def plan(
    dtype,
    bits,
    transpose,
    m,
    n,
    k,
    aligned=True,
    sms=H100_SMS,
    sm90=False,
    group_size=64,
):
    return EXT.cuda_launch_plan(
        dtype, bits, transpose, m, n, k, aligned, sms, sm90, group_size
    )


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
def test_plan_matvec_for_decode(dtype):
    name, grid, block, shared = plan(dtype, 8, True, 1, 14336, 4096)
    assert name == f"matvec_affine_{dtype_short(dtype)}_b8_rows1"
    assert grid == [14336 // 16, 1, 1] and block == 128 and shared == 0
    # 4 bits: float32 on CUDA cores; the half types on tensor cores, with
    # each block's 16 rows' scales and biases (2 bytes a group) in shared
    # memory, up to CUDA_MATVEC_TENSOR_MAX_GROUPS groups a row.
    for group_size in (32, 64, 128):
        name, grid, block, shared = plan(
            dtype, 4, True, 1, 14336, 4096, group_size=group_size
        )
        assert grid == [14336 // 16, 1, 1] and block == 128
        if dtype == "float32":
            assert name == "matvec_affine_f32_b4_rows1" and shared == 0
        else:
            assert name == f"matvec_tensor_affine_{dtype_short(dtype)}_b4"
            assert shared == 2 * 16 * (4096 // group_size) * 2
    if dtype != "float32":
        limit = EXT.CUDA_MATVEC_TENSOR_MAX_GROUPS
        for groups, kernel in [(limit, "matvec_tensor"), (limit + 1, "matvec")]:
            name = plan(dtype, 4, True, 1, 40, 32 * groups, group_size=32)[0]
            assert name.startswith(f"{kernel}_affine_")
    name, grid, block, shared = plan(dtype, 0, True, 8, 4096, 4096)
    if dtype == "float32":
        assert name == "matvec_dense_f32_rows8"
    else:  # tensor cores beyond one row
        assert name == f"skinny_dense_{dtype_short(dtype)}_rows8"
        # 16 rows of W a block; 4 warps, each a ring of 3 stages of 128
        # values of 16 rows of W and 8 of x.
        assert grid == [4096 // 16, 1, 1] and block == 128
        assert shared == 4 * 3 * (16 + 8) * 128 * 2
        assert plan(dtype, 0, True, 16, 4096, 4096)[0].endswith("_rows16")
        # 17 to 32 rows: on sm_90, 32 rows of W and of x a block (192 KB of
        # rings); elsewhere that does not fit, and tensor_gemm takes them.
        assert plan(dtype, 0, True, 17, 4096, 4096)[0].startswith("tensor_dense_")
        name, grid, block, shared = plan(dtype, 0, True, 17, 4096, 4096, sm90=True)
        assert name == f"skinny_dense_{dtype_short(dtype)}_rows32"
        assert grid == [4096 // 32, 1, 1] and block == 128
        assert shared == 4 * 3 * (32 + 32) * 128 * 2
        assert plan(dtype, 0, True, 32, 14336, 4096, sm90=True)[0] == name
        assert plan(dtype, 0, True, 33, 14336, 4096, sm90=True)[0].startswith(
            "tensor_dense_"
        )


def test_kernel_list_names_every_planned_kernel():
    """backend_info's CUDA kernel lists name every kernel family that the
    launch plans pick, over dtypes, widths, layouts, GPUs and shapes from
    decode to prefill (names as "matvec_tensor_affine_bf16_b4", "+" between
    the kernels of a two-kernel plan)."""
    lists = {True: EXT.cuda_kernel_list(True), False: EXT.cuda_kernel_list(False)}
    seen = set()
    for dtype, bits, transpose, aligned, sm90, m, n, k, group_size in itertools.product(
        ["float32", "float16", "bfloat16"],
        [0, 3, 4, 8],
        [True, False],
        [True, False],
        [True, False],
        [1, 2, 17, 32, 128, 2048],
        [40, 14336],
        [4096, 40000],
        [32, 64],
    ):
        if bits == 0 and group_size != 64:
            continue
        name = plan(
            dtype, bits, transpose, m, n, k, aligned, H100_SMS, sm90, group_size
        )[0]
        for part in name.split("+"):
            family = re.split(r"_(?:f32|f16|bf16)", part)[0]
            seen.add(family)
            assert re.search(rf"\b{family}\b", lists[bits != 0]), (family, name)
    # The grid reaches every kernel the lists name.
    for listed in lists.values():
        for family in re.findall(r"\b[a-z]+(?:_[a-z]+)+\b", listed):
            assert family in seen, family


def dtype_short(dtype: str) -> str:
    return {"float32": "f32", "float16": "f16", "bfloat16": "bf16"}[dtype]


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_plan_skinny_for_a_few_rows(dtype):
    short = dtype_short(dtype)
    for m, rows in [(2, 8), (8, 8), (9, 16), (16, 16), (17, 32), (32, 32)]:
        name, grid, block, shared = plan(dtype, 4, True, m, 4096, 14336)
        assert name == f"skinny_affine_{short}_b4_rows{rows}"
        assert grid == [4096 // 32, 1, 1] and block == 256 and shared == 0
    assert plan(dtype, 8, True, 8, 100, 1152)[:2] == (
        f"skinny_affine_{short}_b8_rows8",
        [4, 1, 1],
    )
    # One row stays with matvec; more than 32 rows, K not a multiple of 128,
    # dense weights and float32 take the other kernels.
    assert plan(dtype, 4, True, 1, 4096, 4096)[0].startswith("matvec_")
    assert plan(dtype, 4, True, 33, 4096, 4096)[0].startswith("tensor_")
    assert plan(dtype, 4, True, 8, 4096, 4032)[0].startswith("tensor_")
    assert plan(dtype, 0, True, 8, 4096, 4096)[0].startswith("skinny_dense_")
    assert plan("float32", 4, True, 8, 4096, 4096)[0].startswith("matvec_")
    assert plan(dtype, 4, True, 8, 4096, 4096, aligned=False)[0].startswith("simt_")


def test_plan_skinny_cluster_on_sm90():
    """From 17 rows of x on sm_90 the cluster-split kernel takes the few-row
    cases that the ring-fed kernel does not (below), with as many K splits as
    the column tiles leave room for in two blocks an SM (at most 8, at least
    one K chunk each); where no split fits, and on other GPUs, skinny_gemm
    keeps them."""
    cols = EXT.CUDA_SKINNY_CLUSTER_COLS
    per_sm = EXT.CUDA_SKINNY_CLUSTER_BLOCKS_PER_SM
    max_splits = EXT.CUDA_SKINNY_CLUSTER_MAX_SPLITS
    min_rows = EXT.CUDA_SKINNY_CLUSTER_MIN_ROWS
    assert (cols, per_sm, max_splits, min_rows) == (256, 2, 8, 17)
    for dtype in ["float16", "bfloat16"]:
        short = dtype_short(dtype)
        name, grid, block, shared = plan(dtype, 8, True, 32, 14336, 4096, sm90=True)
        # 56 column tiles: room for 264 // 56 = 4 splits.
        assert name == f"skinny_cluster_affine_{short}_b8_rows32_split4"
        assert grid == [56 * 4, 1, 1] and block == 256 and shared == 0
        name, grid, *_ = plan(dtype, 4, True, 17, 4096, 14336, sm90=True)
        assert name == f"skinny_cluster_affine_{short}_b4_rows32_split8"
        assert grid == [16 * 8, 1, 1]
        # One K chunk a split at most: 3 chunks, 3 splits.
        assert plan(dtype, 4, True, 20, 100, 384, sm90=True)[:2] == (
            f"skinny_cluster_affine_{short}_b4_rows32_split3",
            [3, 1, 1],
        )
        # Fewer rows, no room for two splits (133 tiles), one K chunk, or
        # not sm_90: skinny_gemm.
        assert plan(dtype, 4, True, 16, 14336, 4096, sm90=True)[0] == (
            f"skinny_affine_{short}_b4_rows16"
        )
        assert plan(dtype, 8, True, 32, 133 * 256, 4096, sm90=True)[0] == (
            f"skinny_affine_{short}_b8_rows32"
        )
        assert plan(dtype, 4, True, 32, 4096, 128, sm90=True)[0] == (
            f"skinny_affine_{short}_b4_rows32"
        )
        assert plan(dtype, 4, True, 32, 14336, 4096)[0] == (
            f"skinny_affine_{short}_b4_rows32"
        )
    # Other SM counts change the room: 66 SMs leave 2 splits at 56 tiles.
    assert plan("bfloat16", 8, True, 32, 14336, 4096, sms=66, sm90=True)[0] == (
        "skinny_cluster_affine_bf16_b8_rows32_split2"
    )


def test_plan_skinny_ring_on_sm90():
    """4-bit weights, 17 to 32 rows of x on sm_90: the ring-fed kernel, one
    block of CUDA_SKINNY_RING_ROWS_W rows of W an SM and no K split, where
    those blocks fill 80% of the SMs and K is whole stages; elsewhere the
    cluster-split kernel or skinny_gemm."""
    rows_w = EXT.CUDA_SKINNY_RING_ROWS_W
    stage_k = EXT.CUDA_SKINNY_RING_STAGE_K
    tenths = EXT.CUDA_SKINNY_RING_MIN_FILL_TENTHS
    threads = EXT.CUDA_SKINNY_RING_THREADS
    shared = EXT.CUDA_SKINNY_RING_SHARED_BYTES
    assert (rows_w, stage_k, tenths, threads) == (128, 256, 8, 256)
    # Four stages of 36 KB (W, x, scales, biases), alignment slack and the
    # stages' mbarriers: one block an SM.
    assert shared == 1024 + 4 * (36 * 1024 + 16) and 2 * shared > 227 * 1024
    fewest = -(-tenths * H100_SMS // 10)  # 106 blocks fill 80% of 132 SMs
    for dtype in ["float16", "bfloat16"]:
        short = dtype_short(dtype)
        ring = f"skinny_ring_affine_{short}_b4_rows32"
        for m in (17, 24, 32):
            assert plan(dtype, 4, True, m, 14336, 4096, sm90=True) == (
                ring,
                [112, 1, 1],
                threads,
                shared,
            )
        for group_size in (32, 64, 128):
            name = plan(
                dtype, 4, True, 32, 14336, 512, sm90=True, group_size=group_size
            )
            assert name[0] == ring
        # The fill bound: 106 blocks of 128 rows (a partial last one) do,
        # 105 do not (53 cluster tiles: 264 // 53 = 4 splits).
        assert (
            plan(dtype, 4, True, 32, fewest * rows_w - 64, 1024, sm90=True)[0] == ring
        )
        assert plan(dtype, 4, True, 32, (fewest - 1) * rows_w, 1024, sm90=True)[0] == (
            f"skinny_cluster_affine_{short}_b4_rows32_split4"
        )
        # K not whole stages, 16 rows of x, 8 bits, or not sm_90.
        assert plan(dtype, 4, True, 32, 14336, 4224, sm90=True)[0].startswith(
            "skinny_cluster_"
        )
        assert plan(dtype, 4, True, 16, 14336, 4096, sm90=True)[0].startswith(
            "skinny_affine_"
        )
        assert plan(dtype, 8, True, 32, 14336, 4096, sm90=True)[0].startswith(
            "skinny_cluster_"
        )
        assert plan(dtype, 4, True, 32, 14336, 4096)[0].startswith("skinny_affine_")


def test_plan_tensor_tiles_fill_the_gpu():
    # The largest tile whose blocks fill at least 90% of the SMs.
    assert plan("bfloat16", 4, True, 2048, 14336, 4096)[0].endswith("_huge")
    # 112 huge tiles: 85% of 132 SMs.
    assert plan("bfloat16", 4, True, 256, 14336, 4096)[0].endswith("_large")
    # 128 large tiles: 97%.
    assert plan("bfloat16", 4, True, 512, 4096, 14336)[0].endswith("_large")
    assert plan("bfloat16", 4, True, 512, 4096, 14336, sms=143)[0].endswith("_medium")
    assert plan("bfloat16", 4, True, 64, 14336, 4096)[0].endswith("_small")
    assert plan("bfloat16", 4, True, 64, 14336, 4096, sms=100)[0].endswith("_large")
    name, grid, block, shared = plan("float16", 8, True, 512, 14336, 4096)
    assert name == "tensor_affine_f16_b8_huge"
    assert grid == [56, 4, 1] and block == 256
    assert shared > 48 * 1024  # the launch raises the dynamic limit


def test_plan_wgmma_on_sm90():
    """On sm_90 the warpgroup GEMM takes dense, 4- and 8-bit float16 /
    bfloat16 weights with M > 64 where a wide or else a narrow tile fills 90%
    of the SMs; the tensor-core tiles serve the rest and other GPUs."""
    name, grid, block, shared = plan("bfloat16", 0, True, 2048, 14336, 4096, sm90=True)
    assert name == "wgmma_dense_bf16_wide"
    # x tiles along the grid's x; one producer and two consumer warpgroups.
    assert grid == [16, 56, 1] and block == 384
    # Four stages of a 128 x 64 x tile and a 256 x 64 w tile, their
    # mbarriers, and 1 KB to align them.
    assert shared == 4 * ((128 + 256) * 64 * 2 + 16) + 1024
    # 120 narrow blocks (six stages) fill 90% of 132 SMs; 60 wide ones do not.
    assert plan("float16", 0, True, 512, 3840, 256, sm90=True) == (
        "wgmma_dense_f16_narrow",
        [4, 30, 1],
        384,
        6 * ((128 + 128) * 64 * 2 + 16) + 1024,
    )
    assert plan("bfloat16", 0, True, 512, 14336, 4096)[0].startswith("tensor_")
    # Few rows; too few blocks, even split (2048 x 512: 4 steps of K).
    for m, n, k in [(64, 14336, 4096), (256, 2048, 512)]:
        assert plan("bfloat16", 0, True, m, n, k, sm90=True)[0].startswith("tensor_")
    # Quantized: 128 rows of w by 256 (wide) or 128 rows of x; five 4-bit
    # stages of a 256 x 64 x tile and 128 raw rows of 8 + 4 words.
    assert plan("bfloat16", 4, True, 512, 14336, 4096, sm90=True) == (
        "wgmma_affine_bf16_b4_wide",
        [2, 112, 1],
        384,
        5 * (256 * 64 * 2 + 128 * 12 * 4 + 16) + 1024,
    )
    assert plan("float16", 8, True, 512, 3840, 256, sm90=True)[:2] == (
        "wgmma_affine_f16_b8_narrow",
        [4, 30, 1],
    )
    # The tensor-core GEMM keeps the other widths (below the rows from which
    # they are dequantized first).
    for bits in set(SUPPORTED_BITS) - set(FUSED_WGMMA_BITS):
        m = DEQUANTIZE_FIRST_MIN_ROWS_UNFUSED - 1
        assert plan("bfloat16", bits, True, m, 14336, 4096, sm90=True)[0].startswith(
            "tensor_"
        )
    assert plan("float32", 0, True, 512, 14336, 4096, sm90=True)[0].startswith("simt_")
    assert plan("bfloat16", 0, False, 512, 14336, 4096, sm90=True)[0].startswith(
        "simt_"
    )


def test_plan_wgmma_split_k_on_sm90():
    """Where no warpgroup tile's grid fills 90% of the SMs, K is split
    between blocks (grid z) into one wave that does, each block taking at
    least 16 steps of 64 values: the wide tile first unless it pads x more
    than the narrow one or, with dense weights and one x tile, its shares
    would be shorter than 32 steps where the narrow tile splits too; those
    narrow tiles split only until they fill 40% of the SMs."""
    # N = 4096, M = 512: 64 wide blocks, two ways: 128 blocks of 112 steps.
    assert plan("float16", 0, True, 512, 4096, 14336, sm90=True) == (
        "wgmma_dense_f16_wide_split2",
        [4, 16, 2],
        384,
        4 * ((128 + 256) * 64 * 2 + 16) + 1024,
    )
    assert plan("bfloat16", 4, True, 512, 4096, 14336, sm90=True)[:2] == (
        "wgmma_affine_bf16_b4_wide_split2",
        [2, 32, 2],
    )
    # M = 128: a 4-bit wide tile (256 rows of x) would be half padding, so
    # 32 narrow blocks, four ways.
    assert plan("bfloat16", 4, True, 128, 4096, 14336, sm90=True)[:2] == (
        "wgmma_affine_bf16_b4_narrow_split4",
        [1, 32, 4],
    )
    # Dense, M = 128 (one x tile): 16 wide blocks would need 8 shares of 28
    # steps; 32 narrow ones split only until they fill 40% of the SMs, 2
    # ways; at 8192 rows 64 narrow blocks do unsplit.
    assert plan("bfloat16", 0, True, 128, 4096, 14336, sm90=True)[:2] == (
        "wgmma_dense_bf16_narrow_split2",
        [1, 32, 2],
    )
    assert plan("bfloat16", 0, True, 100, 8192, 4096, sm90=True)[:2] == (
        "wgmma_dense_bf16_narrow",
        [1, 64, 1],
    )
    # Every split has steps: 65 steps five ways would leave the fifth one
    # step; 200 x 4096 x 4104 (two x tiles) takes 17 + 17 + 17 + 14.
    assert plan("bfloat16", 0, True, 200, 4096, 4104, sm90=True)[:2] == (
        "wgmma_dense_bf16_wide_split4",
        [2, 16, 4],
    )
    # 112 blocks split two ways would be 1.7 waves: no split, but unsplit
    # narrow tiles from 80% of the SMs (14336 rows, M = 128: 112 narrow
    # blocks fill 85%); below that the tensor-core GEMM (12288 rows: 73%).
    for bits in (0, 4, 8):
        assert plan("bfloat16", bits, True, 128, 14336, 4096, sm90=True)[:2] == (
            f"wgmma_{'dense_bf16' if bits == 0 else f'affine_bf16_b{bits}'}_narrow",
            [1, 112, 1],
        )
        assert plan("bfloat16", bits, True, 128, 12288, 4096, sm90=True)[0].startswith(
            "tensor_"
        )
    # Too few steps to split: 2048 x 1024 has 16 steps of K.
    assert plan("bfloat16", 0, True, 512, 2048, 1024, sm90=True)[0].startswith(
        "tensor_"
    )
    # Not on other GPUs.
    assert plan("bfloat16", 0, True, 512, 4096, 14336)[0].startswith("tensor_")


def test_plan_dequantize_first_on_sm90():
    """From DEQUANTIZE_FIRST_MIN_ROWS rows of x on (4 and 8 bits; from
    DEQUANTIZE_FIRST_MIN_ROWS_UNFUSED for the widths without a fused
    warpgroup GEMM), quantized float16 / bfloat16 weights are written out
    dense first, then the dense warpgroup GEMM multiplies them, with the dense
    problem's own plan; where that plan is not a warpgroup one, the quantized
    plan stays."""
    for bits in SUPPORTED_BITS:
        m = dequantize_first_min_rows(bits)
        for dtype in ("float16", "bfloat16"):
            short = dtype_short(dtype)
            dense = plan(dtype, 0, True, m, 14336, 4096, sm90=True)
            assert dense[0] == f"wgmma_dense_{short}_wide"
            assert plan(dtype, bits, True, m, 14336, 4096, sm90=True) == (
                f"dequantize_affine_{short}_b{bits}+{dense[0]}",
                *dense[1:],
            )
            # One row fewer: the fused GEMM, or the tensor-core one.
            below = plan(dtype, bits, True, m - 1, 14336, 4096, sm90=True)[0]
            if bits in FUSED_WGMMA_BITS:
                assert below == f"wgmma_affine_{short}_b{bits}_wide"
            else:
                assert below.startswith(f"tensor_affine_{short}_b{bits}_")
    # The dense plan's K split comes along (N = 2304, M = 800: 63 wide
    # blocks, split two ways).
    assert plan("bfloat16", 8, True, 800, 2304, 14336, sm90=True)[:2] == (
        "dequantize_affine_bf16_b8+wgmma_dense_bf16_wide_split2",
        [7, 9, 2],
    )
    m = DEQUANTIZE_FIRST_MIN_ROWS
    # No warpgroup plan for the dense problem: float32, x @ w, other GPUs, a
    # grid too small to fill the GPU.
    assert plan("float32", 4, True, m, 14336, 4096, sm90=True)[0].startswith("simt_")
    assert plan("bfloat16", 4, False, m, 14336, 4096, sm90=True)[0].startswith("simt_")
    assert plan("bfloat16", 4, True, m, 14336, 4096)[0].startswith("tensor_")
    assert plan("bfloat16", 4, True, m, 1024, 512, sm90=True)[0].startswith("tensor_")


@pytest.mark.parametrize(
    "args",
    [
        ("float32", 4, True, 64, 256, 256, True),  # tensor cores would round to tf32
        ("bfloat16", 4, False, 64, 256, 256, True),  # x @ w
        ("bfloat16", 4, True, 64, 256, 256, False),  # unaligned operand
        ("bfloat16", 0, True, 64, 256, 100, True),  # K not a multiple of 8
        ("bfloat16", 0, True, 4, 256, 100, True),
    ],
)
def test_plan_cuda_core_fallback(args):
    name, grid, block, shared = plan(*args)
    assert name.startswith("simt_")
    assert block == 256 and shared == 0


# ------------------------- modules and transforms on the GPU -------------------------


@needs_cuda
@pytest.mark.parametrize("dtype_name", ["float32", "bfloat16"])
def test_quantized_linear_and_gradients(dtype_name, seed):
    """nn.QuantizedLinear's forward pass and the gradients of quantized_matmul
    with respect to x, scales and biases, on the GPU against the CPU."""
    dtype = DTYPES[dtype_name]
    layer = mlx_qmm.nn.QuantizedLinear(256, 96, bias=True, group_size=64, bits=4)
    layer.set_dtype(dtype)
    x = mx.random.normal((5, 256)).astype(dtype)
    with mx.stream(mx.gpu):
        out = evaluate_poisoned(layer(x))
    with mx.stream(mx.cpu):
        expected = layer(x)
    assert_close(out, expected, dtype, seed, scale=2.0)

    w, scales, biases, _ = random_quantized((96, 256), 64, 4, mx.float32)
    x = mx.random.normal((7, 256))

    def loss(x, scales, biases):
        return (mlx_qmm.quantized_matmul(x, w, scales, biases) ** 2).sum()

    grad = mx.grad(loss, argnums=(0, 1, 2))
    with mx.stream(mx.gpu):
        on_gpu = grad(x, scales, biases)
        mx.eval(on_gpu)
    with mx.stream(mx.cpu):
        on_cpu = grad(x, scales, biases)
    for g, c in zip(on_gpu, on_cpu, strict=True):
        assert_close(g, c, mx.float32, seed, scale=10.0)
