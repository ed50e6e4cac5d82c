"""The simulator's fidelity, proven on code we did not write: MLX's own Metal
kernels, known to be right on Apple GPUs, compiled from the headers MLX ships
in its wheel (``mlx/include/mlx/backend/metal/kernels``, never copied here)
and launched with the grids MLX's host code uses
(``mlx/backend/metal/quantized.cpp``), must reproduce stock MLX on the CPU."""

from __future__ import annotations

from pathlib import Path

import metal_sim
import mlx.core as mx
import numpy as np
import pytest

pytestmark = metal_sim.needs_compiler()

MLX_INCLUDE = Path(mx.__file__).resolve().parent / "include"

GROUP_SIZE = 64
BITS = (4, 8)


def instantiations() -> str:
    lines = []
    for b in BITS:
        g = GROUP_SIZE
        kernels = {
            f"qmv_{b}": f"affine_qmv<float, {g}, {b}, false>",
            f"qmv_fast_{b}": f"affine_qmv_fast<float, {g}, {b}, false>",
            f"qvm_{b}": f"affine_qvm<float, {g}, {b}, false>",
            f"qmm_t_{b}": f"affine_qmm_t<float, {g}, {b}, false, false>",
            f"qmm_n_{b}": f"affine_qmm_n<float, {g}, {b}, false>",
        }
        lines += [f'METAL_SIM_KERNEL("{n}", {k})' for n, k in kernels.items()]
    return "\n".join(lines)


SOURCE = """
#include "mlx/backend/metal/kernels/utils.h"
#include "mlx/backend/metal/kernels/steel/gemm/gemm.h"
#include "mlx/backend/metal/kernels/quantized_utils.h"
#include "mlx/backend/metal/kernels/quantized.h"
""" + instantiations()


@pytest.fixture(scope="module")
def lib():
    return metal_sim.Library(
        SOURCE, include_trees={MLX_INCLUDE: "mlx/backend/metal/kernels"}
    )


def quantized(rows: int, cols: int, bits: int):
    w = mx.random.normal((rows, cols))
    wq, scales, biases = mx.quantize(w, GROUP_SIZE, bits)
    return wq, scales, biases


def run(lib, kernel, grid, group, wq, scales, biases, x, out_shape, *sizes):
    y = np.full(out_shape, np.nan, np.float32)
    buffers = {
        0: np.array(wq),
        1: np.array(scales),
        2: np.array(biases),
        3: np.array(x),
        4: y,
    }
    for i, size in enumerate(sizes):
        buffers[5 + i] = np.array([size], np.int32)
    report = lib.launch(kernel, grid, group, buffers)
    return y, report


def assert_matches_stock(y, x, wq, scales, biases, bits, transpose):
    stock = np.array(
        mx.quantized_matmul(x, wq, scales, biases, transpose, GROUP_SIZE, bits)
    )
    err = np.linalg.norm(y - stock) / np.linalg.norm(stock)
    assert err < 1e-5, err


@pytest.mark.parametrize("bits", BITS)
@pytest.mark.parametrize("fast", [False, True])
def test_qmv(lib, bits, fast):
    """x @ w.T for one row: MLX's qmv kernels, grid (M, N / 8), 32 x 2."""
    n, k = 40, 512
    wq, scales, biases = quantized(n, k, bits)
    x = mx.random.normal((1, k))
    kernel = f"qmv{'_fast' if fast else ''}_{bits}"
    y, report = run(
        lib,
        kernel,
        (1, (n + 7) // 8, 1),
        (32, 2, 1),
        wq,
        scales,
        biases,
        x,
        (1, n),
        k,
        n,
    )
    assert_matches_stock(y, x, wq, scales, biases, bits, True)
    # Every packed weight byte was read at least once.
    assert report.device_bytes_read >= np.array(wq).nbytes


@pytest.mark.parametrize("bits", BITS)
def test_qvm(lib, bits):
    """x @ w for one row: grid (M, N / 64), 32 x 2."""
    k, n = 96, 128
    wq, scales, biases = quantized(k, n, bits)
    x = mx.random.normal((1, k))
    y, _ = run(
        lib,
        f"qvm_{bits}",
        (1, (n + 63) // 64, 1),
        (32, 2, 1),
        wq,
        scales,
        biases,
        x,
        (1, n),
        k,
        n,
    )
    assert_matches_stock(y, x, wq, scales, biases, bits, False)


@pytest.mark.parametrize("bits", BITS)
@pytest.mark.parametrize("transpose", [True, False])
def test_qmm(lib, bits, transpose):
    """The tiled kernels (threadgroup memory, simdgroup_matrix): grid
    (N / 32, M / 32), 32 x 2 x 2 threads, with partial tiles in M and N."""
    m, n, k = 37, 72, 128
    if transpose:
        wq, scales, biases = quantized(n, k, bits)
    else:
        n = 128  # the packed axis must hold whole groups
        wq, scales, biases = quantized(k, n, bits)
    x = mx.random.normal((m, k))
    kernel = f"qmm_{'t' if transpose else 'n'}_{bits}"
    y, _ = run(
        lib,
        kernel,
        ((n + 31) // 32, (m + 31) // 32, 1),
        (32, 2, 2),
        wq,
        scales,
        biases,
        x,
        (m, n),
        k,
        n,
        m,
    )
    assert_matches_stock(y, x, wq, scales, biases, bits, transpose)


# MLX's steel GEMM (steel_gemm_fused.h): simdgroup_matrix tiles, the
# threadgroup-memory loaders and function constants for alignment.
GEMM_TILE = {"bm": 64, "bn": 64, "bk": 16, "wm": 2, "wn": 2}
GEMM_SOURCE = """
#include "mlx/backend/metal/kernels/utils.h"
#include "mlx/backend/metal/kernels/steel/gemm/gemm.h"
#include "mlx/backend/metal/kernels/steel/gemm/kernels/steel_gemm_fused.h"
METAL_SIM_KERNEL("gemm_nt", gemm<float, {bm}, {bn}, {bk}, {wm}, {wn}, false, true>)
""".format(**GEMM_TILE)

GEMM_PARAMS = np.dtype(
    [
        (name, np.int32)
        for name in ("M", "N", "K", "lda", "ldb", "ldd", "tiles_n", "tiles_m")
    ]
    + [
        (name, np.int64)
        for name in ("batch_stride_a", "batch_stride_b", "batch_stride_d")
    ]
    + [
        (name, np.int32)
        for name in ("swizzle_log", "gemm_k_iterations_aligned", "batch_ndim")
    ],
    align=True,
)


@pytest.mark.parametrize("m,n,k", [(64, 128, 64), (50, 70, 40)])
def test_steel_gemm(m, n, k):
    """x @ w.T through MLX's steel GEMM, grid (N / bn, M / bm), 32 x wn x wm,
    aligned and with partial tiles in M, N and K."""
    lib = metal_sim.Library(
        GEMM_SOURCE, include_trees={MLX_INCLUDE: "mlx/backend/metal/kernels"}
    )
    t = GEMM_TILE
    a = np.random.default_rng().standard_normal((m, k)).astype(np.float32)
    b = np.random.default_rng().standard_normal((n, k)).astype(np.float32)
    d = np.full((m, n), np.nan, np.float32)
    tiles_n, tiles_m = -(-n // t["bn"]), -(-m // t["bm"])
    params = np.zeros(1, GEMM_PARAMS)
    for name, value in dict(
        M=m,
        N=n,
        K=k,
        lda=k,
        ldb=k,
        ldd=n,
        tiles_n=tiles_n,
        tiles_m=tiles_m,
        batch_stride_a=m * k,
        batch_stride_b=n * k,
        batch_stride_d=m * n,
        swizzle_log=0,
        gemm_k_iterations_aligned=k // t["bk"],
        batch_ndim=1,
    ).items():
        params[name] = value
    constants = {
        10: False,
        100: False,
        110: False,
        200: m % t["bm"] == 0,
        201: n % t["bn"] == 0,
        202: k % t["bk"] == 0,
    }
    lib.launch(
        "gemm_nt",
        (tiles_n, tiles_m, 1),
        (32, t["wn"], t["wm"]),
        {0: a, 1: b, 3: d, 4: params},
        constants=constants,
    )
    stock = np.array(mx.matmul(mx.array(a), mx.array(b).T))
    err = np.linalg.norm(d - stock) / np.linalg.norm(stock)
    assert err < 1e-5, err
