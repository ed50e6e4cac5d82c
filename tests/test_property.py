"""Differential property tests: mlx_qmm's ops against stock MLX.

Hypothesis draws shapes (vectors, single rows, ragged M and N, batched and
broadcast operands), bits, group sizes, dtypes, transposes and fused biases,
and, half of the time, one perturbation from a list of invalid (or unusual)
arguments. For every draw both implementations run: either both raise (ours a
ValueError or TypeError at call time, never at evaluation) or both succeed,
with ours within tolerance of the float32 reference and of stock's shape and
dtype. A few draws have no meaningful stock counterpart (see OURS_ONLY and
``stock_comparable``): there only ours runs, and must fail cleanly or be right.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import mlx.core as mx
import mlx_qmm
import numpy as np
import pytest
from conftest import (
    DTYPES,
    SUPPORTED_BITS,
    SUPPORTED_GROUP_SIZES,
    assert_close,
    evaluate_poisoned,
    random_quantized,
    reference_qmm,
)
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

# Captured at import so nothing the package (or a test) does can swap it.
STOCK_QUANTIZED_MATMUL = mx.quantized_matmul
# The affine bit widths stock MLX 0.32 accepts. A width stock has but ours
# does not (1 before mlx_qmm supports it) is an "ours only" draw: ours must
# refuse it cleanly. Widths neither supports must be refused by both.
STOCK_BITS = (1, 2, 3, 4, 5, 6, 8)
UNSUPPORTED_BITS = tuple(b for b in (1, 7, 9, 12, 16) if b not in SUPPORTED_BITS)

FLOAT_DTYPES = list(DTYPES)  # names, so that hypothesis prints them nicely

# Perturbations for which both implementations must raise (or, for "x_int",
# both succeed).
BOTH = (
    "w_dtype",  # packed weights that are not uint32
    "scales_groups",  # scales/biases with a group too many or too few
    "biases_shape",  # biases shaped unlike scales
    "scales_batch",  # scales/biases batch unlike w's
    "missing_biases",  # biases=None in affine mode
    "k_mismatch",  # x's last dimension is not w's K
    "bits_mismatch",  # a supported bits that does not match w's packing
    "bits_unsupported",  # 7, 9, 12, 16 (1?) with consistently shaped operands
    "group_size_mismatch",  # a supported group size not matching scales
    "group_size_unsupported",  # 8, 16, 48, 96, 256 with consistent shapes
    "x_int",  # integer / bool x: valid, promoted to the scales' type
    "x_complex",
    "x_float64",
    "scales_int",  # integer scales and biases
    "bias_shape",  # a (N + 1,) bias
    "batch_mismatch",  # x and w batch shapes that cannot broadcast
    "bad_mode",
    "arg_type",  # a float bits, a string group size, a None transpose
)
# Perturbations stock must never see: it crashes, misbehaves or reads out of
# bounds on them, or supports what ours deliberately does not.
OURS_ONLY = (
    "scales_rows",  # stock reads out of bounds (known difference 3)
    "bits_zero",  # stock dies of SIGFPE (known difference 5)
    "x_empty",  # M = 0: stock dies of SIGFPE (known difference 5)
    "x_scalar",  # 0-d x: stock misbehaves (known difference 5)
    "bias_ndim",  # a (1, N) or () bias: stock's mx.add just broadcasts it
)


@dataclass
class QmmCase:
    seed: int
    bits: int
    group_size: int
    transpose: bool
    dtype: str  # x's dtype
    scales_dtype: str
    bias_dtype: str | None  # None: no bias
    rows: int  # the quantized matrix is [rows, cols], packed along cols
    cols: int
    m: int | None  # None: x is a vector
    x_batch: tuple[int, ...]
    w_batch: tuple[int, ...]
    perturbation: str | None
    detail: object = field(default=None)  # the perturbation's parameter

    @property
    def n(self) -> int:
        return self.rows if self.transpose else self.cols

    @property
    def k(self) -> int:
        return self.cols if self.transpose else self.rows


def _broadcastable_batch(draw, w_batch):
    """A batch for x that broadcasts with ``w_batch``: each of w's dims kept
    or 1 (a 1 of w's may face 1-3), maybe fewer dims, maybe an extra one."""
    dims = [
        draw(st.sampled_from([d, 1])) if d != 1 else draw(st.integers(1, 3))
        for d in w_batch
    ]
    dims = dims[draw(st.integers(0, len(dims))) :]
    if len(dims) == len(w_batch):
        dims = draw(st.lists(st.integers(1, 3), max_size=1)) + dims
    return tuple(dims)


@st.composite
def qmm_cases(draw, perturbations=None):
    """A case; the perturbation drawn from ``perturbations`` (by default
    none about half of the time)."""
    perturbation = draw(
        st.one_of(st.none(), st.sampled_from(BOTH + OURS_ONLY))
        if perturbations is None
        else st.sampled_from(perturbations)
    )
    bits = draw(st.sampled_from(SUPPORTED_BITS))
    group_size = draw(st.sampled_from(SUPPORTED_GROUP_SIZES))
    transpose = draw(st.booleans())
    dtype = draw(st.sampled_from(FLOAT_DTYPES))
    scales_dtype = draw(st.one_of(st.just(dtype), st.sampled_from(FLOAT_DTYPES)))
    bias_dtype = draw(
        st.one_of(st.none(), st.just(dtype), st.sampled_from(FLOAT_DTYPES))
    )
    cols = group_size * draw(st.integers(1, 256 // group_size))
    rows = draw(
        st.one_of(
            st.integers(1, 8),
            st.sampled_from([31, 32, 33, 63, 64, 65]),
            st.integers(9, 100),
        )
    )
    m = draw(
        st.one_of(
            st.none(),
            st.just(1),
            st.integers(2, 9),
            st.integers(10, 70),
        )
    )
    w_batch = tuple(draw(st.lists(st.integers(1, 3), max_size=2)))
    x_batch = () if m is None else _broadcastable_batch(draw, w_batch)

    detail = None
    if perturbation == "w_dtype":
        detail = draw(st.sampled_from(["int32", "uint8", "uint64", "float32"]))
    elif perturbation in ("scales_groups", "scales_rows"):
        detail = draw(st.sampled_from([-1, 1]))
    elif perturbation == "k_mismatch":
        detail = draw(st.sampled_from([-1, 1, 32, -group_size]))
    elif perturbation == "bits_mismatch":
        detail = draw(st.sampled_from([b for b in SUPPORTED_BITS if b != bits]))
    elif perturbation == "bits_unsupported":
        detail = draw(st.sampled_from(UNSUPPORTED_BITS))
    elif perturbation == "group_size_mismatch":
        detail = draw(
            st.sampled_from([g for g in SUPPORTED_GROUP_SIZES if g != group_size])
        )
    elif perturbation == "group_size_unsupported":
        detail = draw(st.sampled_from([8, 16, 48, 96, 256]))
        # Consistent shapes: cols a multiple of the group and of 32.
        step = math.lcm(32, detail)
        cols = step * draw(st.integers(1, 256 // step))
    elif perturbation == "x_int":
        detail = draw(
            st.sampled_from(["int32", "int16", "int8", "uint8", "uint32", "bool_"])
        )
    elif perturbation in ("bias_shape", "bias_ndim"):
        if bias_dtype is None:
            bias_dtype = dtype
        if perturbation == "bias_ndim":
            detail = draw(st.sampled_from(["row", "scalar"]))
    elif perturbation == "batch_mismatch":
        b = draw(st.integers(2, 3))
        w_batch = (b,)
        x_batch = (b + draw(st.integers(1, 2)),)
        m = draw(st.integers(1, 9))
    elif perturbation == "bad_mode":
        detail = draw(st.sampled_from(["foo", "Affine", ""]))
    elif perturbation == "arg_type":
        detail = draw(st.sampled_from(["bits", "group_size", "transpose"]))
    elif perturbation == "x_empty":
        m = 0
        x_batch = _broadcastable_batch(draw, w_batch)

    return QmmCase(
        seed=draw(st.integers(0, 2**32 - 1)),
        bits=bits,
        group_size=group_size,
        transpose=transpose,
        dtype=dtype,
        scales_dtype=scales_dtype,
        bias_dtype=bias_dtype,
        rows=rows,
        cols=cols,
        m=m,
        x_batch=x_batch,
        w_batch=w_batch,
        perturbation=perturbation,
        detail=detail,
    )


@dataclass
class QmmArgs:
    x: object
    w: object
    scales: object
    biases: object
    transpose: object
    group_size: object
    bits: object
    mode: str
    bias: object
    w_hat: mx.array | None  # the float32 dequantized weight when valid

    def ours(self):
        return mlx_qmm.quantized_matmul(
            self.x,
            self.w,
            self.scales,
            self.biases,
            self.transpose,
            self.group_size,
            self.bits,
            self.mode,
            bias=self.bias,
        )

    def stock(self):
        """Stock's result, evaluated; its bias added with a plain mx.add."""
        out = STOCK_QUANTIZED_MATMUL(
            self.x,
            self.w,
            self.scales,
            self.biases,
            self.transpose,
            self.group_size,
            self.bits,
            self.mode,
        )
        if self.bias is not None:
            out = mx.add(out, self.bias)
        mx.eval(out)
        return out


def _raw_operands(case, bits, group_size, sdtype):
    """Random packed words and scales shaped consistently for any bits/group
    size (for formats mx.quantize cannot produce)."""
    shape = (*case.w_batch, case.rows)
    w = mx.random.randint(0, 2**31 - 1, (*shape, case.cols * bits // 32))
    scales = mx.random.uniform(shape=(*shape, case.cols // group_size))
    biases = mx.random.normal((*shape, case.cols // group_size))
    return w.astype(mx.uint32), scales.astype(sdtype), biases.astype(sdtype)


def build(case: QmmCase) -> QmmArgs:
    mx.random.seed(case.seed)
    dtype, sdtype = DTYPES[case.dtype], DTYPES[case.scales_dtype]
    bits, group_size = case.bits, case.group_size
    p, detail = case.perturbation, case.detail

    w_hat = None
    if p == "bits_unsupported":
        bits = detail
        w, scales, biases = _raw_operands(case, bits, group_size, sdtype)
    elif p == "group_size_unsupported":
        group_size = detail
        w, scales, biases = _raw_operands(case, bits, group_size, sdtype)
    else:
        w, scales, biases, w_hat = random_quantized(
            (*case.w_batch, case.rows, case.cols), group_size, bits, sdtype
        )

    k, n = case.k, case.n
    if p == "k_mismatch":
        k = k + detail if k + detail >= 1 else k + 1
    if case.m is None:
        x = mx.random.normal((k,))
    else:
        x = mx.random.normal((*case.x_batch, case.m, k))
    if p == "x_int":
        int_dtype = getattr(mx, detail)
        low = 0 if detail.startswith("uint") or detail == "bool_" else -8
        x = mx.random.randint(low, 8, x.shape).astype(int_dtype)
    else:
        x = x.astype(dtype)

    bias = None
    if case.bias_dtype is not None:
        bias_shape = (n,)
        if p == "bias_shape":
            bias_shape = (n + 1,)
        elif p == "bias_ndim":
            bias_shape = (1, n) if detail == "row" else ()
        bias = mx.random.normal(bias_shape).astype(DTYPES[case.bias_dtype])

    mode = "affine"
    transpose = case.transpose
    if p == "w_dtype":
        w = w.astype(getattr(mx, detail))
    elif p == "scales_groups":
        if detail < 0 and scales.shape[-1] > 1:
            scales, biases = scales[..., :-1], biases[..., :-1]
        else:
            scales = mx.concatenate([scales, scales[..., :1]], axis=-1)
            biases = mx.concatenate([biases, biases[..., :1]], axis=-1)
    elif p == "biases_shape":
        biases = mx.concatenate([biases, biases[..., :1]], axis=-1)
    elif p == "scales_rows":
        if detail < 0 and scales.shape[-2] > 1:
            scales, biases = scales[..., :-1, :], biases[..., :-1, :]
        else:
            scales = mx.concatenate([scales, scales[..., :1, :]], axis=-2)
            biases = mx.concatenate([biases, biases[..., :1, :]], axis=-2)
    elif p == "scales_batch":
        if case.w_batch:
            # The scales of w's first matrix only, 2-D.
            idx = (0,) * len(case.w_batch)
            scales, biases = scales[idx], biases[idx]
        else:
            scales = mx.stack([scales, scales])
            biases = mx.stack([biases, biases])
    elif p == "missing_biases":
        biases = None
    elif p == "bits_mismatch":
        bits = detail
    elif p == "group_size_mismatch":
        group_size = detail
    elif p == "x_complex":
        x = x.astype(mx.complex64)
    elif p == "x_float64":
        x = x.astype(mx.float64)
    elif p == "scales_int":
        scales, biases = scales.astype(mx.int32), biases.astype(mx.int32)
    elif p == "bad_mode":
        mode = detail
    elif p == "arg_type":
        if detail == "bits":
            bits = float(bits)
        elif detail == "group_size":
            group_size = str(group_size)
        else:
            transpose = None
    elif p == "bits_zero":
        bits = 0
    elif p == "x_scalar":
        x = mx.array(1.0, dtype=dtype)
    mx.eval(x, w, scales, *(a for a in (biases, bias) if a is not None))
    return QmmArgs(x, w, scales, biases, transpose, group_size, bits, mode, bias, w_hat)


def stock_comparable(case: QmmCase, args: QmmArgs) -> bool:
    """Whether stock may be called on these arguments at all."""
    if case.perturbation in OURS_ONLY:
        return False
    if case.perturbation == "bits_unsupported" and case.detail in STOCK_BITS:
        # A width stock supports and ours does not: only ours can be judged.
        return False
    if case.perturbation == "scales_batch" and math.prod(case.w_batch) == 1:
        # Stock accepts batched scales for a 2-D w (and reads only some of
        # them), a relative of known difference 3, and 2-D scales for a w
        # whose batch dims are all 1; ours must reject the first and may
        # reject the second (it asks scales to have w's dims).
        return False
    if case.perturbation == "scales_batch" and (
        args.scales.shape[: len(case.w_batch)] == case.w_batch
    ):
        # Stock compares the leading dims of the (here 2-D) scales with w's
        # batch, so 2-D scales of R rows pass for a w of batch (R,), and it
        # reads past them: known difference 3 again.
        return False
    if case.perturbation == "bias_shape" and case.n == 1:
        # mx.add broadcasts any 1-D bias against a single output column;
        # ours, whose bias is one value per column, must still refuse it.
        return False
    return True


def stock_values_comparable(case: QmmCase, args: QmmArgs) -> bool:
    """Whether stock's output (shape and values) is a valid comparison."""
    # Known difference 2: with a 1-D/2-D x and a batched w, stock silently
    # multiplies by w's first matrix only and drops w's batch dims (even unit
    # ones) from the output; ours broadcasts like matmul.
    return not (case.w_batch and args.x.ndim <= 2)


def expected_dtype(args: QmmArgs):
    operands = [args.x, args.scales, args.biases]
    if args.bias is not None:
        operands.append(args.bias)
    return mx.result_type(*operands)


def run_ours(args: QmmArgs):
    """(result, error): errors must be ValueError/TypeError at call time; the
    evaluation of a returned result must not raise at all."""
    try:
        out = args.ours()
    except (ValueError, TypeError) as e:
        return None, e
    return evaluate_poisoned(out), None


def conditioning(x, w_hat, transpose, bias, ref) -> float:
    """How much cancellation the sums behind ``ref`` had, as a factor (at
    least 1) for the tolerance: ``|| |x| @ |W| + |bias| ||`` over
    ``sqrt(K) * ||ref||``. Random operands give about 0.6; a draw whose few
    outputs nearly cancel (one output of a 1-bit weight, say) gives more,
    and float32 summation-order differences grow relative to ``ref`` by as
    much: a correct kernel may then miss the plain tolerance."""
    x = mx.abs(x.astype(mx.float32))
    abs_bias = None if bias is None else mx.abs(bias.astype(mx.float32))
    magnitude = reference_qmm(x, mx.abs(w_hat), transpose, abs_bias)
    num = float(np.linalg.norm(np.array(magnitude, dtype=np.float64)))
    den = float(np.linalg.norm(np.array(ref, dtype=np.float64)))
    den *= math.sqrt(max(x.shape[-1], 1))
    return max(1.0, num / den) if den > 0 else 1.0


def check_ours_valid(case, args, out):
    """Ours succeeded on valid arguments: shape, dtype and values."""
    ref = reference_qmm(args.x, args.w_hat, case.transpose, args.bias)
    assert out.shape == ref.shape, (out.shape, ref.shape, case)
    assert out.dtype == expected_dtype(args), (out.dtype, case)
    scale = conditioning(args.x, args.w_hat, case.transpose, args.bias, ref)
    assert_close(out, ref, out.dtype, seed=case.seed, scale=scale)
    return scale


# The perturbations after which the arguments are still valid.
VALID = (None, "x_int")


def may_succeed(case: QmmCase) -> bool:
    """Invalid-looking draws that still have a meaning, which ours may either
    compute (correctly) or refuse: an x with M = 0, and 2-D scales for a w
    whose batch dims are all 1."""
    if case.perturbation == "x_empty":
        return True
    return (
        case.perturbation == "scales_batch"
        and bool(case.w_batch)
        and (math.prod(case.w_batch) == 1)
    )


def check_against_stock(case: QmmCase):
    args = build(case)
    ours, ours_error = run_ours(args)
    event(f"perturbation: {case.perturbation}")
    if case.perturbation in VALID:
        assert ours_error is None, f"ours raised {ours_error!r}: {case}"
    elif not may_succeed(case):
        assert ours_error is not None, f"ours accepted {case.perturbation}: {case}"

    if not stock_comparable(case, args):
        if ours_error is None:
            # Only where the arguments still mean something: be right.
            assert ours.size > 0 or case.perturbation == "x_empty"
            check_ours_valid(case, args, ours)
        return

    try:
        stock, stock_error = args.stock(), None
    except Exception as e:  # stock raises RuntimeError at eval for some
        stock, stock_error = None, e

    event("both raised" if stock_error and ours_error else "compared")
    if stock_error is not None or ours_error is not None:
        assert stock_error is not None, f"only ours raised {ours_error!r}: {case}"
        assert ours_error is not None, f"only stock raised {stock_error!r}: {case}"
        return

    scale = check_ours_valid(case, args, ours)
    if stock_values_comparable(case, args):
        assert ours.shape == stock.shape, (ours.shape, stock.shape, case)
        assert ours.dtype == stock.dtype, (ours.dtype, stock.dtype, case)
        # Known difference 1: stock accumulates float16/bfloat16 in the input
        # type, far less accurately than ours; its values are a reference
        # only where its product is computed in float32 (a float32 bias added
        # afterwards does not make it so). The float32 reference above
        # covers every dtype.
        if mx.result_type(args.x, args.scales, args.biases) == mx.float32:
            assert_close(ours, stock, mx.float32, seed=case.seed, scale=2 * scale)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(case=qmm_cases())
def test_quantized_matmul_matches_stock(case):
    check_against_stock(case)


@pytest.mark.parametrize("perturbation", BOTH + OURS_ONLY)
@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(data=st.data())
def test_each_perturbation(perturbation, data):
    """Every perturbation, a few times each (the mixed draw above meets each
    only a handful of times)."""
    check_against_stock(data.draw(qmm_cases(perturbations=(perturbation,))))


# ---------------------------------------------------------------------------
# mlx_qmm.matmul against mx.matmul(x, w^T) + bias.


@st.composite
def matmul_cases(draw):
    transpose = draw(st.booleans())
    kind = draw(st.sampled_from(["float", "float", "float", "mixed", "int"]))
    dtype = draw(st.sampled_from(FLOAT_DTYPES))
    w_dtype = dtype
    if kind == "mixed":
        w_dtype = draw(st.sampled_from(FLOAT_DTYPES))
    n = draw(st.one_of(st.integers(1, 8), st.integers(9, 100)))
    k = draw(st.one_of(st.integers(1, 8), st.integers(9, 256)))
    m = draw(st.one_of(st.none(), st.just(1), st.integers(2, 70)))
    w_batch = tuple(draw(st.lists(st.integers(1, 3), max_size=2)))
    x_batch = () if m is None else _broadcastable_batch(draw, w_batch)
    with_bias = draw(st.booleans())
    return dict(
        seed=draw(st.integers(0, 2**32 - 1)),
        transpose=transpose,
        kind=kind,
        dtype=dtype,
        w_dtype=w_dtype,
        n=n,
        k=k,
        m=m,
        x_batch=x_batch,
        w_batch=w_batch,
        with_bias=with_bias,
    )


@settings(max_examples=60, deadline=None)
@given(case=matmul_cases())
def test_matmul_matches_stock(case):
    mx.random.seed(case["seed"])
    n, k, m = case["n"], case["k"], case["m"]
    x_shape = (k,) if m is None else (*case["x_batch"], m, k)
    w_shape = (*case["w_batch"], *((n, k) if case["transpose"] else (k, n)))
    x = mx.random.normal(x_shape)
    w = mx.random.normal(w_shape)
    bias = mx.random.normal((n,)) if case["with_bias"] else None
    if case["kind"] == "int":
        x = mx.random.randint(-8, 8, x_shape)
        w = mx.random.randint(-8, 8, w_shape)
        bias = bias.astype(mx.int32) if bias is not None else None
    else:
        x = x.astype(DTYPES[case["dtype"]])
        w = w.astype(DTYPES[case["w_dtype"]])
        bias = bias.astype(DTYPES[case["dtype"]]) if bias is not None else None

    try:
        ours, ours_error = (
            mlx_qmm.matmul(x, w, case["transpose"], bias=bias),
            None,
        )
    except (ValueError, TypeError) as e:
        ours, ours_error = None, e
    try:
        w_op = mx.swapaxes(w, -1, -2) if case["transpose"] else w
        stock = mx.matmul(x, w_op)
        if bias is not None:
            stock = stock + bias
        mx.eval(stock)
        stock_error = None
    except Exception as e:
        stock, stock_error = None, e

    if case["kind"] == "int":
        # Integer matmul is not supported by either.
        assert ours_error is not None, case
        assert stock_error is not None, case
        return
    assert ours_error is None, (ours_error, case)
    assert stock_error is None, (stock_error, case)

    evaluate_poisoned(ours)
    assert ours.shape == stock.shape, (ours.shape, stock.shape, case)
    assert ours.dtype == stock.dtype, (ours.dtype, stock.dtype, case)
    w32 = w.astype(mx.float32)
    ref = reference_qmm(x, w32, case["transpose"], bias)
    scale = conditioning(x, w32, case["transpose"], bias, ref)
    assert_close(ours, ref, ours.dtype, seed=case["seed"], scale=scale)
    if ours.dtype == mx.float32:
        assert_close(ours, stock, mx.float32, seed=case["seed"], scale=2 * scale)


def test_quantized_matmul_errors_are_raised_at_call_time():
    """A fixed spot check of the property above that cannot pass vacuously:
    an invalid call raises before anything is evaluated, a valid one does
    not raise."""
    w, scales, biases, w_hat = random_quantized((16, 64), 64, 4, mx.float32)
    x = mx.random.normal((3, 64))
    out = evaluate_poisoned(mlx_qmm.quantized_matmul(x, w, scales, biases))
    assert_close(out, reference_qmm(x, w_hat, True), mx.float32)
    for kwargs in (
        dict(group_size=16),
        dict(bits=7),
        dict(bits=0),
    ):
        try:
            mlx_qmm.quantized_matmul(x, w, scales, biases, **kwargs)
        except ValueError:
            continue
        raise AssertionError(f"no ValueError at call time for {kwargs}")
