"""Parity of the dense mlx_qmm.matmul with stock ``x @ w.T + bias``."""

from __future__ import annotations

import mlx.core as mx
import mlx_qmm
import pytest
from conftest import (
    CPU_PANEL_COLUMNS,
    CPU_ROW_BLOCK,
    DTYPES,
    assert_close,
    evaluate_poisoned,
)

N_RAGGED = CPU_PANEL_COLUMNS * 2 + 7

SHAPES = {
    # name: (x shape, w shape for transpose=True, with bias)
    "vector": ((100,), (N_RAGGED, 100), False),
    "m1": ((1, 256), (N_RAGGED, 256), True),
    "m5_odd_k": ((5, 37), (N_RAGGED, 37), True),
    "rows_over_blocks": ((3, CPU_ROW_BLOCK + 1, 48), (40, 48), False),
    "batched_broadcast": ((2, 1, 4, 32), (3, 24, 32), True),
    "x2d_w_batched": ((6, 32), (2, 24, 32), False),
}


def reference(x, w, transpose, bias):
    x32, w32 = x.astype(mx.float32), w.astype(mx.float32)
    w32 = mx.swapaxes(w32, -1, -2) if transpose else w32
    out = mx.squeeze(x32[None] @ w32, -2) if x.ndim == 1 else x32 @ w32
    return out if bias is None else out + bias.astype(mx.float32)


@pytest.mark.parametrize("dtype_name", list(DTYPES))
@pytest.mark.parametrize("transpose", [True, False])
@pytest.mark.parametrize("shape", list(SHAPES))
def test_dense_parity(shape, transpose, dtype_name, seed):
    dtype = DTYPES[dtype_name]
    x_shape, w_shape, with_bias = SHAPES[shape]
    if not transpose:
        w_shape = (*w_shape[:-2], w_shape[-1], w_shape[-2])
    x = mx.random.normal(x_shape).astype(dtype)
    w = mx.random.normal(w_shape).astype(dtype)
    n = w_shape[-2] if transpose else w_shape[-1]
    bias = mx.random.normal((n,)).astype(dtype) if with_bias else None
    out = evaluate_poisoned(mlx_qmm.matmul(x, w, transpose, bias=bias))
    ref = reference(x, w, transpose, bias)
    assert out.shape == ref.shape and out.dtype == dtype
    assert_close(out, ref, dtype, seed)


def test_float32_equals_stock(seed):
    x = mx.random.normal((3, 7, 300))
    w = mx.random.normal((130, 300))
    b = mx.random.normal((130,))
    out = evaluate_poisoned(mlx_qmm.matmul(x, w, bias=b))
    assert_close(out, mx.addmm(b, x, w.T), mx.float32, seed)
    out = evaluate_poisoned(mlx_qmm.matmul(x, w.T, transpose=False))
    assert_close(out, x @ w.T, mx.float32, seed)


def test_float64_on_cpu(seed):
    x = mx.random.normal((4, 50)).astype(mx.float64)
    w = mx.random.normal((30, 50)).astype(mx.float64)
    out = evaluate_poisoned(mlx_qmm.matmul(x, w, stream=mx.cpu))
    assert out.dtype == mx.float64
    ref = mx.matmul(x, w.T, stream=mx.cpu)
    err = (
        mx.linalg.norm(out - ref, stream=mx.cpu) / mx.linalg.norm(ref, stream=mx.cpu)
    ).item()
    assert err < 1e-12, err


@pytest.mark.parametrize(
    "x_dtype,w_dtype",
    [(mx.float16, mx.float32), (mx.bfloat16, mx.float16), (mx.int8, mx.float16)],
)
def test_mixed_dtypes_promote_like_stock(x_dtype, w_dtype, seed):
    x = (mx.random.normal((3, 40)) * 3).astype(x_dtype)
    w = mx.random.normal((20, 40)).astype(w_dtype)
    out = evaluate_poisoned(mlx_qmm.matmul(x, w))
    stock = x @ w.T
    assert out.dtype == stock.dtype
    assert_close(out, reference(x, w, True, None), out.dtype, seed)


def test_non_contiguous_and_broadcast(seed):
    base = mx.random.normal((64, 80))
    w = base[::2, 1::2]  # strided in both axes
    x = mx.swapaxes(mx.random.normal((40, 9)), 0, 1)
    out = evaluate_poisoned(mlx_qmm.matmul(x, w))
    assert_close(out, reference(x, w, True, None), mx.float32, seed)
    xb = mx.broadcast_to(mx.random.normal((1, 40)), (5, 40))
    wb = mx.broadcast_to(mx.random.normal((1, 40, 12)), (3, 40, 12))
    out = evaluate_poisoned(mlx_qmm.matmul(xb, wb, transpose=False))
    assert_close(out, reference(xb, wb, False, None), mx.float32, seed)


def test_empty_dimensions(seed):
    w = mx.random.normal((16, 8))
    b = mx.random.normal((16,))
    assert mlx_qmm.matmul(mx.zeros((0, 8)), w).shape == (0, 16)
    # K == 0: the product is empty and only the bias remains.
    out = evaluate_poisoned(mlx_qmm.matmul(mx.zeros((3, 0)), mx.zeros((16, 0)), bias=b))
    assert mx.array_equal(out, mx.broadcast_to(b, (3, 16))).item()
    out = evaluate_poisoned(mlx_qmm.matmul(mx.ones((3, 0)), mx.ones((16, 0))))
    assert mx.array_equal(out, mx.zeros((3, 16))).item()
