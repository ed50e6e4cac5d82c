"""Our primitives under MLX's transforms: grad/vjp (against stock's
gradients), jvp, vmap, compile, and mx.export_to_dot showing our names."""

from __future__ import annotations

import mlx.core as mx
import mlx_qmm
import pytest
from conftest import assert_close, evaluate_poisoned, random_quantized, reference_qmm

GRAD_TOL = 1e-4  # float32 sums of a few hundred products, in different orders


def qmm_loss(fn, transpose, g, bits):
    def loss(x, scales, biases, wq, cot):
        return (fn(x, wq, scales, biases, transpose, g, bits) * cot).sum()

    return loss


@pytest.mark.parametrize("transpose", [True, False])
@pytest.mark.parametrize("bits", [3, 4, 8])
def test_quantized_grads_match_stock(transpose, bits, seed):
    g = 32
    shape = (48, 96) if transpose else (96, 64)
    wq, scales, biases, _ = random_quantized(shape, g, bits, mx.float32)
    k = 96 if transpose else 96
    x = mx.random.normal((2, 5, k))
    n = 48 if transpose else 64
    cot = mx.random.normal((2, 5, n))
    ours = mx.grad(
        qmm_loss(mlx_qmm.quantized_matmul, transpose, g, bits), argnums=(0, 1, 2)
    )(x, scales, biases, wq, cot)
    stock = mx.grad(
        qmm_loss(mx.quantized_matmul, transpose, g, bits), argnums=(0, 1, 2)
    )(x, scales, biases, wq, cot)
    for name, a, b in zip(("x", "scales", "biases"), ours, stock, strict=True):
        assert a.shape == b.shape, name
        assert_close(a, b, mx.float32, seed, scale=GRAD_TOL / 1e-5)


def test_quantized_grads_batched_weights(seed):
    """Batched w: per-batch scale/bias gradients, summed over broadcast x."""
    g, bits = 32, 4
    wq, scales, biases, w_hat = random_quantized((3, 40, 64), g, bits, mx.float32)
    x = mx.random.normal((2, 1, 4, 64))
    bias = mx.random.normal((40,))
    cot = mx.random.normal((2, 3, 4, 40))

    def ours(x, scales, biases, bias):
        out = mlx_qmm.quantized_matmul(x, wq, scales, biases, True, g, bits, bias=bias)
        return (out * cot).sum()

    def reference(x, scales, biases, bias):
        w = mx.dequantize(wq, scales, biases, g, bits)
        return ((x @ mx.swapaxes(w, -1, -2) + bias) * cot).sum()

    got = mx.grad(ours, argnums=(0, 1, 2, 3))(x, scales, biases, bias)
    want = mx.grad(reference, argnums=(0, 1, 2, 3))(x, scales, biases, bias)
    for a, b in zip(got, want, strict=True):
        assert a.shape == b.shape
        assert_close(a, b, mx.float32, seed, scale=GRAD_TOL / 1e-5)


def test_no_gradient_for_packed_weights():
    wq, scales, biases, _ = random_quantized((8, 64), 64, 4, mx.float32)
    f = lambda w: mlx_qmm.quantized_matmul(mx.ones((1, 64)), w, scales, biases).sum()  # noqa: E731
    with pytest.raises(
        ValueError, match="no gradient with respect to the quantized weights"
    ):
        mx.grad(f)(wq)


def test_quantized_vjp_bias(seed):
    wq, scales, biases, _ = random_quantized((24, 64), 32, 5, mx.float32)
    x = mx.random.normal((3, 7, 64))
    bias = mx.random.normal((24,))
    cot = mx.random.normal((3, 7, 24))
    _, (db,) = mx.vjp(
        lambda b: mlx_qmm.quantized_matmul(
            x, wq, scales, biases, bits=5, group_size=32, bias=b
        ),
        [bias],
        [cot],
    )
    assert_close(db, cot.sum(axis=(0, 1)), mx.float32, seed)


def test_quantized_jvp(seed):
    g, bits = 64, 6
    wq, scales, biases, w_hat = random_quantized((30, 128), g, bits, mx.float32)
    x = mx.random.normal((4, 128))
    bias = mx.random.normal((30,))
    tx, ts, tb, tbias = (mx.random.normal(a.shape) for a in (x, scales, biases, bias))

    def f(x, s, b, bias):
        return mlx_qmm.quantized_matmul(x, wq, s, b, True, g, bits, bias=bias)

    _, (tangent,) = mx.jvp(f, [x, scales, biases, bias], [tx, ts, tb, tbias])
    w_tangent = mx.dequantize(wq, ts, tb, g, bits)
    expected = tx @ w_hat.T + x @ w_tangent.T + tbias
    assert_close(tangent, expected, mx.float32, seed, scale=10)

    # x alone: stock supports this one too.
    _, (t_ours,) = mx.jvp(lambda x: f(x, scales, biases, None), [x], [tx])
    _, (t_stock,) = mx.jvp(
        lambda x: mx.quantized_matmul(x, wq, scales, biases, True, g, bits), [x], [tx]
    )
    assert_close(t_ours, t_stock, mx.float32, seed)


@pytest.mark.parametrize(
    "in_axes",
    [
        (0, None, None, None, None),  # instances of x only
        (1, None, None, None, None),
        (None, 0, 0, 0, None),  # instances of the weights only
        (0, 0, 0, 0, None),  # both
        (2, 1, None, 0, 0),  # mixed axes, a vmapped bias
        (None, None, None, None, 0),  # only the bias
    ],
)
def test_quantized_vmap(in_axes, seed):
    g, bits, v = 32, 4, 3
    n, k, m = 20, 64, 5

    def instance(i, axis, a):
        return a if axis is None else mx.take(a, i, axis=axis)

    def stacked(shape, axis):
        if axis is None:
            return mx.random.normal(shape)
        shape = list(shape)
        shape.insert(axis, v)
        return mx.random.normal(shape)

    x = stacked((m, k), in_axes[0])
    w = stacked((n, k), 0 if in_axes[1] is not None else None)
    wq, scales, biases = mx.quantize(w, g, bits)
    if in_axes[1] is not None and in_axes[1] != 0:
        wq = mx.moveaxis(wq, 0, in_axes[1])
    if in_axes[2] is None and in_axes[1] is not None:
        scales = scales[0]  # shared scales across instances
    if in_axes[3] is not None and in_axes[3] != 0:
        biases = mx.moveaxis(biases, 0, in_axes[3])
    if in_axes[3] is None and in_axes[1] is not None:
        biases = biases[0]
    bias = stacked((n,), in_axes[4])

    def f(x, wq, s, b, bias):
        return mlx_qmm.quantized_matmul(x, wq, s, b, True, g, bits, bias=bias)

    out = evaluate_poisoned(mx.vmap(f, in_axes=in_axes)(x, wq, scales, biases, bias))
    expected = mx.stack(
        [
            f(
                *(
                    instance(i, ax, a)
                    for ax, a in zip(
                        in_axes, (x, wq, scales, biases, bias), strict=True
                    )
                )
            )
            for i in range(v)
        ]
    )
    assert out.shape == expected.shape
    assert_close(out, expected, mx.float32, seed)


def test_compile_and_shapeless_compile(seed):
    wq, scales, biases, w_hat = random_quantized((33, 128), 64, 4, mx.float32)
    bias = mx.random.normal((33,))

    def f(x):
        return mlx_qmm.quantized_matmul(x, wq, scales, biases, bias=bias) * 2 + 1

    compiled = mx.compile(f)
    shapeless = mx.compile(f, shapeless=True)
    for m in (1, 6):
        x = mx.random.normal((m, 128))
        expected = reference_qmm(x, w_hat, True, bias) * 2 + 1
        assert_close(compiled(x), expected, mx.float32, seed)
        assert_close(shapeless(x), expected, mx.float32, seed)


@pytest.mark.parametrize("transpose", [True, False])
def test_dense_grads_match_stock(transpose, seed):
    x = mx.random.normal((2, 6, 40))
    w = mx.random.normal((24, 40) if transpose else (40, 24))
    bias = mx.random.normal((24,))
    cot = mx.random.normal((2, 6, 24))

    def ours(x, w, b):
        return (mlx_qmm.matmul(x, w, transpose, bias=b) * cot).sum()

    def stock(x, w, b):
        return ((x @ (w.T if transpose else w) + b) * cot).sum()

    for a, b in zip(
        mx.grad(ours, argnums=(0, 1, 2))(x, w, bias),
        mx.grad(stock, argnums=(0, 1, 2))(x, w, bias),
        strict=True,
    ):
        assert a.shape == b.shape
        assert_close(a, b, mx.float32, seed, scale=GRAD_TOL / 1e-5)


def test_dense_grads_batched(seed):
    x = mx.random.normal((2, 1, 3, 16))
    w = mx.random.normal((4, 8, 16))
    cot = mx.random.normal((2, 4, 3, 8))
    got = mx.grad(lambda x, w: (mlx_qmm.matmul(x, w) * cot).sum(), argnums=(0, 1))(x, w)
    want = mx.grad(
        lambda x, w: ((x @ mx.swapaxes(w, -1, -2)) * cot).sum(), argnums=(0, 1)
    )(x, w)
    for a, b in zip(got, want, strict=True):
        assert_close(a, b, mx.float32, seed, scale=GRAD_TOL / 1e-5)


def test_dense_jvp_and_vmap(seed):
    x, w, b = (
        mx.random.normal((5, 16)),
        mx.random.normal((7, 16)),
        mx.random.normal((7,)),
    )
    tx, tw, tb = (
        mx.random.normal(x.shape),
        mx.random.normal(w.shape),
        mx.random.normal(b.shape),
    )
    _, (t,) = mx.jvp(
        lambda x, w, b: mlx_qmm.matmul(x, w, bias=b), [x, w, b], [tx, tw, tb]
    )
    assert_close(t, tx @ w.T + x @ tw.T + tb, mx.float32, seed)

    xs, ws = mx.random.normal((3, 5, 16)), mx.random.normal((7, 3, 16))
    out = mx.vmap(lambda x, w: mlx_qmm.matmul(x, w), in_axes=(0, 1))(xs, ws)
    expected = mx.stack([xs[i] @ ws[:, i].T for i in range(3)])
    assert_close(out, expected, mx.float32, seed)


def test_export_to_dot_shows_our_primitives(tmp_path):
    wq, scales, biases, _ = random_quantized((16, 64), 64, 4, mx.float32)
    x = mx.random.normal((2, 64))
    q_out = mlx_qmm.quantized_matmul(x, wq, scales, biases)
    d_out = mlx_qmm.matmul(x, mx.random.normal((8, 64)))
    path = tmp_path / "graph.dot"
    mx.export_to_dot(str(path), q_out, d_out)
    text = path.read_text()
    assert "QmmAffineQuantizedMatmul" in text
    assert "QmmDenseMatmul" in text
    stock_names = [line for line in text.splitlines() if "label" in line]
    assert not any(
        ("QuantizedMatmul" in line and "Qmm" not in line) or '"Matmul' in line
        for line in stock_names
    ), text
