"""mlx_qmm.nn and mlx_qmm.patch: drop-in parity with mlx.nn's linear and
embedding layers.

Our layers must look exactly like the stock ones (parameters, shapes, dtypes,
initialisation, freezing, checkpoints, signatures, isinstance) and compute the
same function, on our kernels: checked against stock's layers in float32 and
against the float32 reference (mx.dequantize + matmul) in every dtype.
"""

from __future__ import annotations

import inspect
import math

import mlx.core as mx
import mlx.nn as nn
import mlx_qmm
import mlx_qmm.nn as qnn
import numpy as np
import pytest
from conftest import (
    DTYPES,
    SUPPORTED_BITS,
    SUPPORTED_GROUP_SIZES,
    TOLERANCE,
    assert_close,
    evaluate_poisoned,
    reference_qmm,
)
from mlx.utils import tree_flatten, tree_map

# ---------------------------------------------------------------------------
# Helpers


def flat(tree) -> dict:
    return dict(tree_flatten(tree))


def assert_same_arrays(a: dict, b: dict):
    """Same keys, shapes, dtypes and values (exactly)."""
    assert a.keys() == b.keys()
    for key in a:
        assert a[key].shape == b[key].shape, key
        assert a[key].dtype == b[key].dtype, key
        assert mx.array_equal(a[key], b[key]).item(), key


def parameters_of(function) -> list:
    """A signature's parameters without annotations: name, kind, default."""
    return [
        (p.name, p.kind, p.default)
        for p in inspect.signature(function).parameters.values()
    ]


def dequantized(layer) -> mx.array:
    """The float32 weight a quantized (affine) layer multiplies by."""
    return mx.dequantize(
        layer.weight,
        layer.scales.astype(mx.float32),
        layer.biases.astype(mx.float32),
        layer.group_size,
        layer.bits,
    )


def linear_reference(layer, x) -> mx.array:
    """float32 ``x @ W.T + b`` of a Linear or affine QuantizedLinear."""
    w = dequantized(layer) if "scales" in layer else layer.weight
    return reference_qmm(x, w.astype(mx.float32), True, layer.get("bias"))


INPUT_SHAPES = [(), (1,), (7,), (3, 5)]  # leading dims of x: vector .. batched


# ---------------------------------------------------------------------------
# Linear


@pytest.mark.parametrize("bias", [True, False])
def test_linear_parameters_match_stock(bias, seed):
    ours = qnn.Linear(24, 40, bias=bias)
    stock = nn.Linear(24, 40, bias=bias)
    assert isinstance(ours, nn.Linear)
    assert type(ours) is qnn.Linear
    ours_p, stock_p = flat(ours.parameters()), flat(stock.parameters())
    assert (
        ours_p.keys() == stock_p.keys() == ({"weight", "bias"} if bias else {"weight"})
    )
    for key in ours_p:
        assert ours_p[key].shape == stock_p[key].shape
        assert ours_p[key].dtype == stock_p[key].dtype
    assert flat(ours.trainable_parameters()).keys() == ours_p.keys()
    assert repr(ours).endswith(repr(stock).split("(", 1)[1])
    for name in ("__init__", "to_quantized", "__call__"):
        assert parameters_of(getattr(qnn.Linear, name)) == parameters_of(
            getattr(nn.Linear, name)
        ), name


def test_linear_initialisation(seed):
    input_dims, output_dims = 64, 512
    layer = qnn.Linear(input_dims, output_dims)
    k = 1 / math.sqrt(input_dims)
    for name, count in (("weight", input_dims * output_dims), ("bias", output_dims)):
        values = np.array(layer[name])
        assert values.size == count
        assert values.min() >= -k and values.max() <= k, (name, seed)
        # Spread over the whole interval (and not constant): with 512 or more
        # uniform draws, each end is reached within 10% of k almost surely.
        assert values.min() < -0.9 * k and values.max() > 0.9 * k, (name, seed)
        assert np.unique(values).size > count // 2, (name, seed)
    weight = np.array(layer.weight)
    # U(-k, k): mean 0, standard deviation k / sqrt(3).
    assert abs(weight.mean()) < 0.05 * k, seed
    assert abs(weight.std() - k / math.sqrt(3)) < 0.05 * k, seed
    # Two layers draw different weights.
    assert not mx.array_equal(layer.weight, qnn.Linear(input_dims, output_dims).weight)


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("lead", INPUT_SHAPES, ids=str)
def test_linear_matches_stock(bias, lead, seed):
    stock = nn.Linear(48, 33, bias=bias)
    ours = qnn.Linear(48, 33, bias=bias)
    ours.update(stock.parameters())
    x = mx.random.normal((*lead, 48))
    out = evaluate_poisoned(ours(x))
    expected = stock(x)
    assert out.shape == expected.shape == (*lead, 33)
    assert out.dtype == expected.dtype
    assert_close(out, expected, mx.float32, seed)
    assert_close(out, linear_reference(stock, x), mx.float32, seed)


@pytest.mark.parametrize("dtype", list(DTYPES))
def test_linear_dtypes(dtype, seed):
    dtype = DTYPES[dtype]
    stock = nn.Linear(200, 70)
    stock.set_dtype(dtype)
    ours = qnn.Linear(200, 70)
    ours.set_dtype(dtype)
    ours.update(stock.parameters())
    x = mx.random.normal((2, 9, 200)).astype(dtype)
    out = evaluate_poisoned(ours(x))
    expected = stock(x)
    assert out.dtype == expected.dtype == dtype
    assert out.shape == expected.shape
    assert_close(out, linear_reference(ours, x), dtype, seed)


@pytest.mark.parametrize("fmt", ["safetensors", "npz"])
def test_linear_loads_stock_checkpoint(fmt, tmp_path, seed):
    stock = nn.Linear(40, 24)
    path = str(tmp_path / f"linear.{fmt}")
    stock.save_weights(path)
    ours = qnn.Linear(40, 24)
    assert not mx.array_equal(ours.weight, stock.weight)  # fresh weights
    ours.load_weights(path)
    assert_same_arrays(flat(ours.parameters()), flat(stock.parameters()))
    x = mx.random.normal((6, 40))
    assert_close(evaluate_poisoned(ours(x)), stock(x), mx.float32, seed)
    # And the other way round: our checkpoint loads into a stock layer.
    path2 = str(tmp_path / f"ours.{fmt}")
    ours.save_weights(path2)
    stock2 = nn.Linear(40, 24)
    stock2.load_weights(path2)
    assert_same_arrays(flat(stock2.parameters()), flat(ours.parameters()))


@pytest.mark.parametrize("bias", [True, False])
def test_linear_to_quantized(bias, seed):
    ours = qnn.Linear(128, 36, bias=bias)
    stock = nn.Linear(128, 36, bias=bias)
    stock.update(ours.parameters())
    q = ours.to_quantized(64, 4)
    assert type(q) is qnn.QuantizedLinear
    expected = stock.to_quantized(64, 4)
    assert type(expected) is nn.QuantizedLinear
    assert (q.group_size, q.bits, q.mode) == (64, 4, "affine")
    assert_same_arrays(flat(q.parameters()), flat(expected.parameters()))
    x = mx.random.normal((5, 128))
    out = evaluate_poisoned(q(x))
    assert_close(out, expected(x), mx.float32, seed)
    assert_close(out, linear_reference(q, x), mx.float32, seed)
    # Quantized activations are stock's business, with stock's errors.
    with pytest.raises(ValueError):
        stock.to_quantized(quantize_input=True)
    with pytest.raises(ValueError):
        ours.to_quantized(quantize_input=True)


def test_stock_quantize_of_our_linears(seed):
    model = nn.Sequential(
        qnn.Linear(64, 128), nn.ReLU(), qnn.Linear(128, 32, bias=False)
    )
    x = mx.random.normal((4, 64))
    nn.quantize(model, 32, 8)
    assert [type(layer) for layer in model.layers] == [
        qnn.QuantizedLinear,
        nn.ReLU,
        qnn.QuantizedLinear,
    ]
    out = evaluate_poisoned(model(x))
    hidden = mx.maximum(linear_reference(model.layers[0], x), 0)
    assert_close(out, linear_reference(model.layers[2], hidden), mx.float32, seed)


# ---------------------------------------------------------------------------
# QuantizedLinear


def test_quantized_linear_signature_matches_stock():
    for name in ("__init__", "from_linear", "__call__"):
        assert parameters_of(getattr(qnn.QuantizedLinear, name)) == (
            parameters_of(getattr(nn.QuantizedLinear, name))
        ), name
    # The full signature (annotations included) of the constructor.
    assert inspect.signature(qnn.QuantizedLinear.__init__) == inspect.signature(
        nn.QuantizedLinear.__init__
    )


@pytest.mark.parametrize("bias", [True, False])
def test_quantized_linear_parameters_frozen(bias, seed):
    ours = qnn.QuantizedLinear(128, 20, bias, 32, 3)
    stock = nn.QuantizedLinear(128, 20, bias, 32, 3)
    assert isinstance(ours, nn.QuantizedLinear)
    assert (ours.group_size, ours.bits, ours.mode) == (32, 3, "affine")
    ours_p, stock_p = flat(ours.parameters()), flat(stock.parameters())
    assert ours_p.keys() == stock_p.keys()
    assert {"weight", "scales", "biases"} <= ours_p.keys()
    assert ("bias" in ours_p) == bias
    for key in ours_p:
        assert ours_p[key].shape == stock_p[key].shape, key
        assert ours_p[key].dtype == stock_p[key].dtype, key
    assert flat(ours.trainable_parameters()) == {}
    assert flat(stock.trainable_parameters()) == {}
    assert repr(ours).split("(", 1)[1] == repr(stock).split("(", 1)[1]


def test_quantized_linear_defaults(seed):
    ours, stock = qnn.QuantizedLinear(128, 8), nn.QuantizedLinear(128, 8)
    assert (ours.group_size, ours.bits, ours.mode) == (
        stock.group_size,
        stock.bits,
        stock.mode,
    )
    x = mx.random.normal((3, 128))
    ours.update(stock.parameters())
    assert_close(evaluate_poisoned(ours(x)), stock(x), mx.float32, seed)


@pytest.mark.parametrize("bias", [True, False])
def test_quantized_linear_from_linear(bias, seed):
    linear = nn.Linear(256, 50, bias=bias)
    ours = qnn.QuantizedLinear.from_linear(linear, 128, 5)
    stock = nn.QuantizedLinear.from_linear(linear, 128, 5)
    assert type(ours) is qnn.QuantizedLinear
    assert (ours.group_size, ours.bits) == (128, 5)
    assert_same_arrays(flat(ours.parameters()), flat(stock.parameters()))
    # Stock's from_linear freezes before it copies the Linear's bias, which
    # so stays trainable; ours must do just the same.
    assert (
        flat(ours.trainable_parameters()).keys()
        == flat(stock.trainable_parameters()).keys()
    )
    assert {"weight", "scales", "biases"}.isdisjoint(flat(ours.trainable_parameters()))
    x = mx.random.normal((2, 3, 256))
    out = evaluate_poisoned(ours(x))
    assert_close(out, stock(x), mx.float32, seed)
    assert_close(out, linear_reference(ours, x), mx.float32, seed)


# A spread of the grid: every bits, group size and dtype, each at least once.
QL_CASES = [
    (bits, SUPPORTED_GROUP_SIZES[i % len(SUPPORTED_GROUP_SIZES)], dtype)
    for i, bits in enumerate(SUPPORTED_BITS)
    for dtype in DTYPES
]


@pytest.mark.parametrize("bits,group_size,dtype", QL_CASES)
def test_quantized_linear_matches_reference(bits, group_size, dtype, seed):
    dtype = DTYPES[dtype]
    linear = nn.Linear(256, 72)
    linear.set_dtype(dtype)
    layer = qnn.QuantizedLinear.from_linear(linear, group_size, bits)
    stock = nn.QuantizedLinear.from_linear(linear, group_size, bits)
    assert layer.scales.dtype == dtype and layer.bias.dtype == dtype
    for lead in INPUT_SHAPES:
        x = mx.random.normal((*lead, 256)).astype(dtype)
        out = evaluate_poisoned(layer(x))
        expected = stock(x)
        assert out.shape == expected.shape == (*lead, 72)
        assert out.dtype == expected.dtype == dtype
        # Known difference: stock accumulates float16/bfloat16 in the input
        # type; only the float32 reference judges ours in every dtype.
        assert_close(out, linear_reference(layer, x), dtype, seed)
        if dtype == mx.float32:
            assert_close(out, expected, mx.float32, seed)


@pytest.mark.parametrize("bias", [True, False])
def test_quantized_linear_mxfp4_routes_to_stock(bias, seed):
    ours = qnn.QuantizedLinear(128, 24, bias=bias, mode="mxfp4")
    stock = nn.QuantizedLinear(128, 24, bias=bias, mode="mxfp4")
    assert (ours.group_size, ours.bits, ours.mode) == (
        stock.group_size,
        stock.bits,
        "mxfp4",
    )
    assert flat(ours.parameters()).keys() == flat(stock.parameters()).keys()
    if bias:
        ours.bias = mx.random.normal((24,))
    stock.update(ours.parameters())
    x = mx.random.normal((4, 128))
    out = evaluate_poisoned(ours(x))
    expected = stock(x)
    assert out.shape == expected.shape and out.dtype == expected.dtype
    assert mx.array_equal(out, expected).item()
    # Not trivially equal: the output depends on the input.
    assert not mx.array_equal(out, evaluate_poisoned(ours(x + 1))).item()


@pytest.mark.parametrize("fmt", ["safetensors", "npz"])
def test_quantized_linear_loads_stock_checkpoint(fmt, tmp_path, seed):
    stock = nn.QuantizedLinear.from_linear(nn.Linear(192, 40), 64, 6)
    path = str(tmp_path / f"qlinear.{fmt}")
    stock.save_weights(path)
    ours = qnn.QuantizedLinear(192, 40, True, 64, 6)
    ours.load_weights(path)
    assert_same_arrays(flat(ours.parameters()), flat(stock.parameters()))
    assert flat(ours.trainable_parameters()) == {}
    x = mx.random.normal((3, 192))
    out = evaluate_poisoned(ours(x))
    assert_close(out, stock(x), mx.float32, seed)
    assert_close(out, linear_reference(stock, x), mx.float32, seed)


# ---------------------------------------------------------------------------
# Gradients


@pytest.mark.parametrize("bits", [2, 4, 8])
@pytest.mark.parametrize("bias", [True, False])
def test_quantized_linear_input_gradient(bits, bias, seed):
    linear = nn.Linear(128, 40, bias=bias)
    ours = qnn.QuantizedLinear.from_linear(linear, 64, bits)
    stock = nn.QuantizedLinear.from_linear(linear, 64, bits)
    x = mx.random.normal((2, 5, 128))
    cotangent = mx.random.normal((2, 5, 40))

    def loss(layer):
        return lambda x: (layer(x) * cotangent).sum()

    g_ours = evaluate_poisoned(mx.grad(loss(ours))(x))
    g_stock = mx.grad(loss(stock))(x)
    assert g_ours.shape == x.shape
    assert_close(g_ours, g_stock, mx.float32, seed)
    # The reference: the cotangent times the dequantized weight.
    assert_close(g_ours, cotangent @ dequantized(ours), mx.float32, seed)


@pytest.mark.parametrize("bias", [True, False])
def test_linear_gradients(bias, seed):
    stock = nn.Linear(96, 30, bias=bias)
    ours = qnn.Linear(96, 30, bias=bias)
    ours.update(stock.parameters())
    x = mx.random.normal((4, 3, 96))
    cotangent = mx.random.normal((4, 3, 30))

    def loss(model, x):
        return (model(x) * cotangent).sum()

    value_ours, g_ours = nn.value_and_grad(ours, loss)(ours, x)
    value_stock, g_stock = nn.value_and_grad(stock, loss)(stock, x)
    g_ours, g_stock = flat(g_ours), flat(g_stock)
    assert (
        g_ours.keys() == g_stock.keys() == ({"weight", "bias"} if bias else {"weight"})
    )
    # The loss sums terms of both signs that can nearly cancel (about 1 seed in
    # 80 left it small enough to fail a bound relative to its own value): its
    # rounding is relative to the sum of the terms' magnitudes.
    magnitude = mx.abs(stock(x) * cotangent).sum().item()
    assert abs(value_ours.item() - value_stock.item()) <= (
        TOLERANCE[mx.float32] * magnitude
    ), (value_ours, value_stock, seed)
    for key in g_ours:
        evaluate_poisoned(g_ours[key])
        assert g_ours[key].shape == g_stock[key].shape
        assert_close(g_ours[key], g_stock[key], mx.float32, seed)
    flat_cot, flat_x = cotangent.reshape(-1, 30), x.reshape(-1, 96)
    assert_close(g_ours["weight"], flat_cot.T @ flat_x, mx.float32, seed)
    if bias:
        assert_close(g_ours["bias"], flat_cot.sum(0), mx.float32, seed)

    gx_ours = evaluate_poisoned(mx.grad(lambda x: loss(ours, x))(x))
    gx_stock = mx.grad(lambda x: loss(stock, x))(x)
    assert_close(gx_ours, gx_stock, mx.float32, seed)
    assert_close(gx_ours, cotangent @ stock.weight, mx.float32, seed)


# ---------------------------------------------------------------------------
# patch


class ScaledLinear(nn.Linear):
    """A subclass of stock Linear with its own forward: patch must skip it."""

    def __call__(self, x):
        return super().__call__(x) * 0.5


class Attention(nn.Module):
    def __init__(self, dims: int, heads: int):
        super().__init__()
        self.heads = heads
        self.q_proj = nn.Linear(dims, dims, bias=False)
        self.k_proj = nn.Linear(dims, dims, bias=False)
        self.v_proj = nn.Linear(dims, dims, bias=True)
        self.o_proj = nn.Linear(dims, dims, bias=False)

    def __call__(self, x):
        b, length, d = x.shape

        def heads(t):
            return t.reshape(b, length, self.heads, -1).transpose(0, 2, 1, 3)

        q, k, v = heads(self.q_proj(x)), heads(self.k_proj(x)), heads(self.v_proj(x))
        o = mx.fast.scaled_dot_product_attention(
            q, k, v, scale=1 / math.sqrt(d // self.heads), mask="causal"
        )
        return self.o_proj(o.transpose(0, 2, 1, 3).reshape(b, length, d))


class MLP(nn.Module):
    def __init__(self, dims: int, hidden: int):
        super().__init__()
        self.gate_proj = nn.Linear(dims, hidden, bias=False)
        self.up_proj = nn.Linear(dims, hidden, bias=False)
        self.down_proj = nn.Linear(hidden, dims, bias=True)

    def __call__(self, x):
        return self.down_proj(nn.silu(self.gate_proj(x)) * self.up_proj(x))


class Block(nn.Module):
    def __init__(self, dims: int = 128, heads: int = 4, hidden: int = 256):
        super().__init__()
        self.attn_norm = nn.RMSNorm(dims)
        self.attn = Attention(dims, heads)
        self.mlp_norm = nn.RMSNorm(dims)
        self.mlp = MLP(dims, hidden)
        self.head = ScaledLinear(dims, 64)

    def __call__(self, x):
        x = x + self.attn(self.attn_norm(x))
        x = x + self.mlp(self.mlp_norm(x))
        return self.head(x)


def quantize_some(block):
    """Quantize the MLP and the attention output with stock mlx.nn.quantize,
    leaving q/k/v dense and the ScaledLinear alone."""

    def predicate(path, module):
        if type(module) is not nn.Linear:
            return False
        if path.startswith("mlp.gate") or path.endswith("o_proj"):
            return {"group_size": 32, "bits": 8}
        return path.startswith("mlp.")

    nn.quantize(block, 64, 4, class_predicate=predicate)


def snapshot(model):
    """(module objects and types by path, parameters, trainable keys)."""
    modules = {path: (m, type(m)) for path, m in model.named_modules()}
    return (
        modules,
        tree_flatten(model.parameters()),
        set(flat(model.trainable_parameters())),
    )


def check_patched(model, before):
    """Types swapped exactly where stock's exact types were; every module
    and array the same object; the frozen state unchanged."""
    modules_before, params_before, trainable_before = before
    modules_after, params_after, trainable_after = snapshot(model)
    assert modules_after.keys() == modules_before.keys()
    replaced = {nn.Linear: qnn.Linear, nn.QuantizedLinear: qnn.QuantizedLinear}
    for path, (module, old_type) in modules_before.items():
        new_module, new_type = modules_after[path]
        assert new_module is module, path
        assert new_type is replaced.get(old_type, old_type), (path, new_type)
    assert [k for k, _ in params_after] == [k for k, _ in params_before]
    for (key, a), (_, b) in zip(params_after, params_before, strict=True):
        assert a is b, key
    assert trainable_after == trainable_before


def test_patch_transformer_block(seed):
    block = Block()
    quantize_some(block)
    block.attn.q_proj.freeze()  # a frozen dense layer
    block.mlp_norm.freeze()
    types = {type(m) for _, m in block.named_modules()}
    assert {nn.Linear, nn.QuantizedLinear, ScaledLinear} <= types
    assert block.mlp.gate_proj.bits == 8 and block.mlp.up_proj.bits == 4
    x = mx.random.normal((2, 11, 128))
    expected = block(x)
    mx.eval(expected)

    before = snapshot(block)
    assert "attn.q_proj.weight" not in before[2]
    assert "attn.k_proj.weight" in before[2]
    result = mlx_qmm.patch(block)
    assert result is block
    check_patched(block, before)
    assert type(block.attn.q_proj) is qnn.Linear
    assert type(block.mlp.down_proj) is qnn.QuantizedLinear
    assert type(block.head) is ScaledLinear
    assert (block.mlp.gate_proj.group_size, block.mlp.gate_proj.bits) == (32, 8)

    out = evaluate_poisoned(block(x))
    assert out.shape == expected.shape and out.dtype == expected.dtype
    assert_close(out, expected, mx.float32, seed, scale=2.0)

    # Patching again changes nothing.
    before = snapshot(block)
    assert mlx_qmm.patch(block) is block
    check_patched(block, before)


def test_patch_bfloat16_block(seed):
    block = Block()
    block.set_dtype(mx.bfloat16)
    quantize_some(block)
    assert block.mlp.up_proj.scales.dtype == mx.bfloat16
    # The float32 reference: the same bfloat16-rounded parameters, upcast,
    # run by stock layers in float32.
    reference = Block()
    quantize_some(reference)
    reference.update(
        tree_map(
            lambda a: a.astype(mx.float32) if a.dtype == mx.bfloat16 else a,
            block.parameters(),
        )
    )
    x = mx.random.normal((2, 9, 128)).astype(mx.bfloat16)
    expected = reference(x.astype(mx.float32))

    before = snapshot(block)
    mlx_qmm.patch(block)
    check_patched(block, before)
    out = evaluate_poisoned(block(x))
    assert out.dtype == mx.bfloat16 and out.shape == expected.shape
    assert_close(out, expected, mx.bfloat16, seed)


@pytest.mark.parametrize("kind", ["linear", "quantized", "subclass"])
def test_patch_single_layer(kind, seed):
    if kind == "linear":
        layer, new_type = nn.Linear(64, 24), qnn.Linear
    elif kind == "quantized":
        layer, new_type = nn.QuantizedLinear(64, 24, True, 32, 2), qnn.QuantizedLinear
        layer.bias = mx.random.normal((24,))
    else:
        layer, new_type = ScaledLinear(64, 24), ScaledLinear
    x = mx.random.normal((5, 64))
    expected = layer(x)
    mx.eval(expected)
    before = snapshot(layer)
    assert mlx_qmm.patch(layer) is layer
    check_patched(layer, before)
    assert type(layer) is new_type
    out = evaluate_poisoned(layer(x))
    assert_close(out, expected, mx.float32, seed)
    reference = linear_reference(layer, x) * (0.5 if kind == "subclass" else 1)
    assert_close(out, reference, mx.float32, seed)


# ---------------------------------------------------------------------------
# mlx_qmm.nn.quantize


def test_quantize_quantizes_and_patches(seed):
    block = Block()
    stock_block = Block()
    stock_block.update(block.parameters())
    x = mx.random.normal((1, 6, 128))

    def predicate(path, module):
        return type(module) is nn.Linear and not path.startswith("attn.q_proj")

    assert qnn.quantize(block, 32, 4, class_predicate=predicate) is None
    nn.quantize(stock_block, 32, 4, class_predicate=predicate)
    for path, module in block.named_modules():
        stock_type = type(dict(stock_block.named_modules())[path])
        if path == "attn.q_proj":
            # Not selected: left dense, but patched onto our kernels.
            assert stock_type is nn.Linear and type(module) is qnn.Linear
        elif path == "head":
            assert type(module) is ScaledLinear
        elif stock_type is nn.QuantizedLinear:
            assert type(module) is qnn.QuantizedLinear, path
            assert (module.group_size, module.bits) == (32, 4)
        else:
            assert type(module) is stock_type, path
    assert_same_arrays(flat(block.parameters()), flat(stock_block.parameters()))
    assert (
        flat(block.trainable_parameters()).keys()
        == flat(stock_block.trainable_parameters()).keys()
    )
    out = evaluate_poisoned(block(x))
    assert_close(out, stock_block(x), mx.float32, seed, scale=2.0)


def test_quantize_defaults_and_mxfp4(seed):
    model = nn.Sequential(nn.Linear(128, 64), nn.GELU(), nn.Linear(64, 32))
    stock_model = nn.Sequential(nn.Linear(128, 64), nn.GELU(), nn.Linear(64, 32))
    stock_model.update(model.parameters())
    qnn.quantize(model)
    nn.quantize(stock_model)
    assert type(model.layers[0]) is qnn.QuantizedLinear
    assert (model.layers[0].group_size, model.layers[0].bits) == (64, 4)
    x = mx.random.normal((3, 128))
    assert_close(evaluate_poisoned(model(x)), stock_model(x), mx.float32, seed)

    model = nn.Sequential(nn.Linear(128, 64), nn.GELU(), nn.Linear(64, 32))
    stock_model = nn.Sequential(nn.Linear(128, 64), nn.GELU(), nn.Linear(64, 32))
    stock_model.update(model.parameters())
    qnn.quantize(model, mode="mxfp4")
    nn.quantize(stock_model, mode="mxfp4")
    assert [type(m) for m in model.layers] == [
        qnn.QuantizedLinear,
        nn.GELU,
        qnn.QuantizedLinear,
    ]
    assert model.layers[2].mode == "mxfp4"
    assert mx.array_equal(evaluate_poisoned(model(x)), stock_model(x)).item()


# ---------------------------------------------------------------------------
# Embeddings: the lookup is stock's, as_linear (a tied output projection) ours


@pytest.mark.parametrize("dtype", list(DTYPES))
def test_embedding_as_linear(dtype, seed):
    dtype = DTYPES[dtype]
    stock = nn.Embedding(300, 128)
    stock.set_dtype(dtype)
    ours = qnn.Embedding(300, 128)
    ours.update(stock.parameters())
    ids = mx.random.randint(0, 300, (2, 5))
    assert mx.array_equal(ours(ids), stock(ids)).item()
    x = mx.random.normal((2, 5, 128)).astype(dtype)
    out = evaluate_poisoned(ours.as_linear(x))
    assert out.dtype == dtype and out.shape == (2, 5, 300)
    assert_close(out, reference_qmm(x, stock.weight.astype(mx.float32), True), dtype)

    quantized = ours.to_quantized(group_size=32, bits=5)
    assert type(quantized) is qnn.QuantizedEmbedding
    stock_quantized = stock.to_quantized(group_size=32, bits=5)
    assert_same_arrays(flat(quantized.parameters()), flat(stock_quantized.parameters()))
    assert not flat(quantized.trainable_parameters())
    assert mx.array_equal(quantized(ids), stock_quantized(ids)).item()
    out = evaluate_poisoned(quantized.as_linear(x))
    assert out.dtype == dtype
    w_hat = dequantized(quantized)
    assert_close(out, reference_qmm(x, w_hat, True), dtype, seed)
    if dtype == mx.float32:
        assert_close(out, stock_quantized.as_linear(x), dtype, seed)


def test_patch_embeddings(tmp_path, seed):
    model = nn.Sequential(nn.Embedding(256, 64), nn.Embedding(256, 64))
    model.layers[1] = model.layers[1].to_quantized(group_size=64, bits=4)
    before = {path: m for path, m in model.named_modules()}
    arrays = flat(model.parameters())
    mlx_qmm.patch(model)
    assert [type(m) for m in model.layers] == [qnn.Embedding, qnn.QuantizedEmbedding]
    after = dict(model.named_modules())
    assert after.keys() == before.keys()
    assert all(after[path] is module for path, module in before.items())
    for key, value in flat(model.parameters()).items():
        assert value is arrays[key], key
    x = mx.random.normal((3, 64))
    out = model.layers[1].as_linear(x) + model.layers[0].as_linear(x)
    path = tmp_path / "graph.dot"
    mx.export_to_dot(str(path), out)
    text = path.read_text()
    assert "QmmAffineQuantizedMatmul" in text and "QmmDenseMatmul" in text
    assert_close(
        evaluate_poisoned(out),
        reference_qmm(x, dequantized(model.layers[1]) + model.layers[0].weight, True),
        mx.float32,
        seed,
    )
