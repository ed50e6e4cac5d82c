"""Bad input: every argument stock rejects (and a few that stock mishandles)
raises ValueError/TypeError naming the argument, at call time, before any
graph is built or evaluated. Nothing crashes the process."""

from __future__ import annotations

import mlx.core as mx
import mlx_qmm
import pytest


@pytest.fixture
def q():
    """Valid operands for x [3, 128] @ W.T, W [40, 128], group 64, 4 bits."""
    w = mx.random.normal((40, 128))
    wq, scales, biases = mx.quantize(w, 64, 4)
    return {
        "x": mx.random.normal((3, 128)),
        "w": wq,
        "scales": scales,
        "biases": biases,
    }


def call_q(q, **overrides):
    args = {**q, **overrides}
    extra = {k: v for k, v in args.items() if k not in ("x", "w", "scales")}
    return mlx_qmm.quantized_matmul(args["x"], args["w"], args["scales"], **extra)


QUANTIZED_CASES = {
    # name: (overrides given the valid operands, exception, words in message)
    "w_not_uint32": (
        lambda q: {"w": q["w"].astype(mx.float32)},
        ValueError,
        ["w must be uint32", "float32"],
    ),
    "w_int32": (
        lambda q: {"w": q["w"].view(mx.int32)},
        ValueError,
        ["w must be uint32"],
    ),
    "w_1d": (
        lambda q: {"w": q["w"].reshape(-1)},
        ValueError,
        ["w must have at least two dimensions"],
    ),
    "missing_biases": (
        lambda q: {"biases": None},
        ValueError,
        ["Biases must be provided"],
    ),
    "scales_biases_shape_differ": (
        lambda q: {"biases": q["biases"][:20]},
        ValueError,
        ["scales and biases must have the same shape"],
    ),
    "scales_wrong_groups": (
        lambda q: {"scales": q["scales"][:, :1], "biases": q["biases"][:, :1]},
        ValueError,
        ["incompatible", "group_size=64", "bits=4"],
    ),
    # Stock accepts this and reads past the end of scales: we refuse it.
    "scales_wrong_rows": (
        lambda q: {"scales": q["scales"][:20], "biases": q["biases"][:20]},
        ValueError,
        ["scales must have shape"],
    ),
    "scales_batch_mismatch": (
        lambda q: {
            "w": mx.stack([q["w"]] * 2),
            "scales": mx.stack([q["scales"]] * 3),
            "biases": mx.stack([q["biases"]] * 3),
        },
        ValueError,
        ["scales must have shape"],
    ),
    "scales_integer": (
        lambda q: {
            "scales": q["scales"].astype(mx.int32),
            "biases": q["biases"].astype(mx.int32),
        },
        ValueError,
        ["scales and biases must promote to a floating point type"],
    ),
    "bits_unsupported": (
        lambda q: {"bits": 7},
        ValueError,
        ["bits must be 1, 2, 3, 4, 5, 6 or 8", "7"],
    ),
    "bits_zero": (lambda q: {"bits": 0}, ValueError, ["bits must be"]),  # stock: SIGFPE
    "bits_negative": (lambda q: {"bits": -4}, ValueError, ["bits must be"]),
    "group_size_16": (
        lambda q: {"group_size": 16},
        ValueError,
        ["group_size must be 32, 64 or 128", "16"],
    ),
    "group_size_zero": (
        lambda q: {"group_size": 0},
        ValueError,
        ["group_size must be"],
    ),
    "k_mismatch": (
        lambda q: {"x": mx.random.normal((3, 64))},
        ValueError,
        ["Last dimension of x", "(3,64)"],
    ),
    "k_mismatch_no_transpose": (
        lambda q: {"x": mx.random.normal((3, 128)), "transpose": False},
        ValueError,
        ["Last dimension of x", "transpose=false"],
    ),
    "x_scalar": (
        lambda q: {"x": mx.array(1.0)},
        ValueError,
        ["x must have at least one dimension"],
    ),
    "x_complex": (
        lambda q: {"x": q["x"].astype(mx.complex64)},
        ValueError,
        ["x must promote", "complex64"],
    ),
    "x_float64": (
        lambda q: {"x": q["x"].astype(mx.float64)},
        ValueError,
        ["x must promote", "float64"],
    ),
    "batch_not_broadcastable": (
        lambda q: {
            "x": mx.random.normal((2, 3, 128)),
            "w": mx.stack([q["w"]] * 3),
            "scales": mx.stack([q["scales"]] * 3),
            "biases": mx.stack([q["biases"]] * 3),
        },
        ValueError,
        ["batch shapes of x", "cannot be broadcast"],
    ),
    "bias_wrong_length": (
        lambda q: {"bias": mx.zeros((39,))},
        ValueError,
        ["bias must have shape (40,)"],
    ),
    "bias_2d": (
        lambda q: {"bias": mx.zeros((1, 40))},
        ValueError,
        ["bias must have shape (40,)"],
    ),
    "mode_unknown": (
        lambda q: {"mode": "foo"},
        ValueError,
        ["Invalid quantization mode 'foo'"],
    ),
    "x_not_array": (lambda q: {"x": [[1.0] * 128]}, TypeError, ["quantized_matmul"]),
    "group_size_str": (lambda q: {"group_size": "64"}, TypeError, ["quantized_matmul"]),
    "transpose_none": (lambda q: {"transpose": None}, TypeError, ["quantized_matmul"]),
}


@pytest.mark.parametrize("name", list(QUANTIZED_CASES))
def test_quantized_errors(name, q):
    make, exc, words = QUANTIZED_CASES[name]
    with pytest.raises(exc) as info:
        call_q(q, **make(q))  # no mx.eval: it must raise while building
    for word in words:
        assert word in str(info.value), (name, str(info.value))


@pytest.mark.parametrize(
    "name",
    [
        "w_not_uint32",
        "missing_biases",
        "k_mismatch",
        "bits_unsupported",
        "scales_wrong_groups",
    ],
)
def test_stock_raises_the_same_type(name, q):
    """Where stock raises cleanly, it raises the same exception type."""
    make, exc, _ = QUANTIZED_CASES[name]
    args = {**q, **make(q)}
    with pytest.raises(exc):
        mx.eval(
            mx.quantized_matmul(
                args["x"],
                args["w"],
                args["scales"],
                args.get("biases"),
                args.get("transpose", True),
                args.get("group_size"),
                args.get("bits"),
            )
        )


DENSE_CASES = {
    "x_scalar": (
        mx.array(1.0),
        mx.ones((4, 3)),
        {},
        ValueError,
        ["x must have at least one dimension"],
    ),
    "w_1d": (
        mx.ones((2, 3)),
        mx.ones((3,)),
        {},
        ValueError,
        ["w must have at least two dimensions"],
    ),
    "k_mismatch": (
        mx.ones((2, 3)),
        mx.ones((4, 5)),
        {},
        ValueError,
        ["Last dimension of x", "(2,3)", "(4,5)"],
    ),
    "k_mismatch_no_transpose": (
        mx.ones((2, 3)),
        mx.ones((4, 3)),
        {"transpose": False},
        ValueError,
        ["second to last"],
    ),
    "integer": (
        mx.ones((2, 3), mx.int32),
        mx.ones((4, 3), mx.int32),
        {},
        ValueError,
        ["floating point", "int32"],
    ),
    "bool": (
        mx.ones((2, 3), mx.bool_),
        mx.ones((4, 3), mx.bool_),
        {},
        ValueError,
        ["floating point"],
    ),
    "complex": (
        mx.ones((2, 3), mx.complex64),
        mx.ones((4, 3)),
        {},
        ValueError,
        ["floating point", "complex64"],
    ),
    "bias_wrong_length": (
        mx.ones((2, 3)),
        mx.ones((4, 3)),
        {"bias": mx.ones((3,))},
        ValueError,
        ["bias must have shape (4,)"],
    ),
    "batch_not_broadcastable": (
        mx.ones((2, 1, 3)),
        mx.ones((3, 4, 3)),
        {},
        ValueError,
        ["cannot be broadcast"],
    ),
    "w_not_array": (mx.ones((2, 3)), [[1.0] * 3], {}, TypeError, ["matmul"]),
}


@pytest.mark.parametrize("name", list(DENSE_CASES))
def test_dense_errors(name):
    x, w, kwargs, exc, words = DENSE_CASES[name]
    with pytest.raises(exc) as info:
        mlx_qmm.matmul(x, w, **kwargs)
    for word in words:
        assert word in str(info.value), (name, str(info.value))


def test_bias_with_other_modes_is_checked():
    w = mx.random.normal((64, 128))
    wq, scales = mx.quantize(w, mode="mxfp4")
    with pytest.raises(ValueError, match=r"bias must have shape \(64,\)"):
        mlx_qmm.quantized_matmul(
            mx.ones((2, 128)), wq, scales, mode="mxfp4", bias=mx.ones((3,))
        )
