"""Parity of mlx_qmm.quantized_matmul with stock MLX over the full grid of
bits x group sizes x dtypes x transposes, in shapes that reach every edge of
the CPU kernels: vectors, single rows, ragged N and K, several row blocks,
batched and broadcast operands, non-contiguous views and a fused bias."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys

import mlx.core as mx
import mlx_qmm
import pytest
from conftest import (
    CPU_PANEL_COLUMNS,
    CPU_ROW_BLOCK,
    DTYPES,
    SUPPORTED_BITS,
    SUPPORTED_GROUP_SIZES,
    assert_close,
    evaluate_poisoned,
    random_quantized,
    reference_qmm,
)

GRID = list(
    itertools.product(SUPPORTED_BITS, SUPPORTED_GROUP_SIZES, DTYPES, [True, False])
)


def grid_id(params):
    bits, gs, dtype, transpose = params
    return f"b{bits}-g{gs}-{dtype}-{'xwT' if transpose else 'xw'}"


def quantized_operands(transpose, n, k, group_size, bits, dtype, w_batch=()):
    """Quantize a random weight for ``x @ W.T`` (W [N, K], packed along K) or
    ``x @ W`` (W [K, N], packed along N)."""
    shape = (*w_batch, n, k) if transpose else (*w_batch, k, n)
    return random_quantized(shape, group_size, bits, dtype)


# (x shape without K, N, K, w batch, with bias), with N or K as a multiple of
# the group size g where the packing needs it (K for x @ W.T, N for x @ W).
def shape_cases(g, transpose):
    ragged = CPU_PANEL_COLUMNS * 3 + 5  # a partial panel / an odd K
    packed = 2 * g
    n, k = (ragged, packed) if transpose else (packed, ragged)
    return {
        "vector": ((), n, k, (), False),
        "m1": ((1,), n, k, (), True),
        "m7": ((7,), n, k, (), False),
        "rows_over_blocks": ((2, CPU_ROW_BLOCK + 3), n, k, (), True),
        "batched_broadcast": ((2, 1, 5), n, k, (3,), False),
        "x2d_w_batched": ((3,), n, k, (2,), True),
    }


@pytest.mark.parametrize("case", GRID, ids=grid_id)
def test_grid(case, seed):
    bits, group_size, dtype_name, transpose = case
    dtype = DTYPES[dtype_name]
    for name, (x_lead, n, k, w_batch, with_bias) in shape_cases(
        group_size, transpose
    ).items():
        wq, scales, biases, w_hat = quantized_operands(
            transpose, n, k, group_size, bits, dtype, w_batch
        )
        x = mx.random.normal((*x_lead, k)).astype(dtype)
        bias = mx.random.normal((n,)).astype(dtype) if with_bias else None
        out = mlx_qmm.quantized_matmul(
            x, wq, scales, biases, transpose, group_size, bits, bias=bias
        )
        evaluate_poisoned(out)
        ref = reference_qmm(x, w_hat, transpose, bias)
        assert out.shape == ref.shape, name
        assert out.dtype == dtype, name
        assert_close(out, ref, dtype, seed)


@pytest.mark.parametrize("bits", SUPPORTED_BITS)
@pytest.mark.parametrize("transpose", [True, False])
def test_float32_equals_stock(bits, transpose, seed):
    """In float32 stock accumulates in float32 too: compare to it directly."""
    group_size = 64
    wq, scales, biases, _ = quantized_operands(
        transpose, 128, 192, group_size, bits, mx.float32
    )
    x = mx.random.normal((2, 9, 192))
    out = evaluate_poisoned(
        mlx_qmm.quantized_matmul(x, wq, scales, biases, transpose, group_size, bits)
    )
    stock = mx.quantized_matmul(x, wq, scales, biases, transpose, group_size, bits)
    assert_close(out, stock, mx.float32, seed)


def test_defaults_are_stocks(seed):
    """group_size and bits default to affine's 64 and 4, like stock."""
    w = mx.random.normal((64, 256))
    wq, scales, biases = mx.quantize(w)
    x = mx.random.normal((3, 256))
    out = evaluate_poisoned(mlx_qmm.quantized_matmul(x, wq, scales, biases))
    assert_close(out, mx.quantized_matmul(x, wq, scales, biases), mx.float32, seed)


@pytest.mark.parametrize(
    "x_dtype,s_dtype,expected",
    [
        (mx.float16, mx.float32, mx.float32),
        (mx.float16, mx.bfloat16, mx.float32),
        (mx.bfloat16, mx.float16, mx.float32),
        (mx.int32, mx.float16, mx.float16),
        (mx.float16, mx.float16, mx.float16),
    ],
)
def test_output_dtype_promotion_matches_stock(x_dtype, s_dtype, expected, seed):
    wq, scales, biases, w_hat = random_quantized((40, 128), 64, 4, s_dtype)
    x = (mx.random.normal((3, 128)) * 4).astype(x_dtype)
    out = mlx_qmm.quantized_matmul(x, wq, scales, biases)
    stock = mx.quantized_matmul(x, wq, scales, biases)
    assert out.dtype == stock.dtype == expected
    assert_close(evaluate_poisoned(out), reference_qmm(x, w_hat, True), expected, seed)


def test_bias_dtype_promotes(seed):
    wq, scales, biases, w_hat = random_quantized((40, 128), 64, 4, mx.float16)
    x = mx.random.normal((3, 128)).astype(mx.float16)
    bias = mx.random.normal((40,))
    out = mlx_qmm.quantized_matmul(x, wq, scales, biases, bias=bias)
    assert out.dtype == mx.float32
    assert_close(
        evaluate_poisoned(out),
        reference_qmm(x, w_hat, True, bias),
        mx.float32,
        seed,
        scale=100,  # the float16 operands were rounded; the sum is not
    )


@pytest.mark.parametrize("transpose", [True, False])
def test_non_contiguous_operands(transpose, seed):
    """Transposed x, row-sliced weights (with their scales) and broadcast x."""
    g, bits = 32, 5
    wq, scales, biases, w_hat = quantized_operands(
        transpose, 160, 128, g, bits, mx.float32
    )
    # Every other row of w, scales and biases: strided, not contiguous.
    wq, scales, biases, w_hat = (a[::2] for a in (wq, scales, biases, w_hat))
    k = w_hat.shape[-1] if transpose else w_hat.shape[-2]
    x = mx.swapaxes(mx.random.normal((k, 6)), 0, 1)  # column-major x
    out = evaluate_poisoned(
        mlx_qmm.quantized_matmul(x, wq, scales, biases, transpose, g, bits)
    )
    assert_close(out, reference_qmm(x, w_hat, transpose), mx.float32, seed)

    xb = mx.broadcast_to(mx.random.normal((1, 1, k)), (4, 3, k))
    out = evaluate_poisoned(
        mlx_qmm.quantized_matmul(xb, wq, scales, biases, transpose, g, bits)
    )
    assert_close(out, reference_qmm(xb, w_hat, transpose), mx.float32, seed)


def test_empty_dimensions(seed):
    wq, scales, biases, _ = random_quantized((40, 128), 64, 4, mx.float32)
    out = mlx_qmm.quantized_matmul(mx.random.normal((0, 128)), wq, scales, biases)
    mx.eval(out)
    assert out.shape == (0, 40)
    out = mlx_qmm.quantized_matmul(
        mx.random.normal((2, 0, 128)), wq[None], scales[None], biases[None]
    )
    mx.eval(out)
    assert out.shape == (2, 0, 40)


def test_single_thread_schedule_matches():
    """Run a ragged case with one CPU thread (MLX_QMM_NUM_THREADS=1) in a
    fresh process: the serial schedule must give the same answer."""
    code = f"""
import mlx.core as mx, mlx_qmm, sys
sys.path.insert(0, {os.path.dirname(__file__)!r})
from conftest import random_quantized, reference_qmm, rel_error
assert mlx_qmm.backend_info()["cpu_threads"] == 1
wq, s, b, w_hat = random_quantized((101, 192), 64, 3, mx.float32)
x = mx.random.normal((70, 192))
out = mlx_qmm.quantized_matmul(x, wq, s, b, bits=3)
err = rel_error(out, reference_qmm(x, w_hat, True))
assert err < 1e-5, err
print("ok")
"""
    env = dict(os.environ, MLX_QMM_NUM_THREADS="1")
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True
    )
    assert result.returncode == 0 and "ok" in result.stdout, result.stderr


def test_other_modes_route_to_stock(seed):
    w = mx.random.normal((64, 128))
    wq, scales = mx.quantize(w, mode="mxfp4")
    x = mx.random.normal((3, 128))
    bias = mx.random.normal((64,))
    out = mlx_qmm.quantized_matmul(x, wq, scales, mode="mxfp4", bias=bias)
    stock = mx.quantized_matmul(x, wq, scales, mode="mxfp4") + bias
    assert mx.array_equal(out, stock).item()
