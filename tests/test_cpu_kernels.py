"""The CPU kernels' own code paths, each forced: every instruction-set level
(MLX_QMM_CPU_ISA, read at each evaluation), one thread and several (in
fresh processes, since MLX_QMM_NUM_THREADS sizes the pool once), the GEMV
tiles for 1 to CPU_GEMV_MAX_ROWS rows and the GEMM micro-panels past them,
partial panels, tasks and micro-kernel tiles, K tails of the SIMD width and
of the word-major blocks, depth blocking, strided and broadcast operands,
every bits value, group size and dtype, both transposes.

These tests always run the CPU kernels: under MLX_QMM_BACKEND=metal-sim
they unset it for themselves (the Metal kernels have their own suites).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import mlx.core as mx
import mlx_qmm
import numpy as np
import pytest
from conftest import (
    CPU_PANEL_COLUMNS,
    CPU_ROW_BLOCK,
    DTYPES,
    SUPPORTED_BITS,
    assert_close,
    evaluate_poisoned,
    random_quantized,
    reference_qmm,
)

EXT = mlx_qmm._loader._ext
GEMV_MAX_ROWS = EXT.CPU_GEMV_MAX_ROWS
MICRO_ROWS = EXT.CPU_MICRO_ROWS
DEPTH_BLOCK = EXT.CPU_DEPTH_BLOCK
COLUMNS_PER_CALL = EXT.CPU_GEMV_COLUMNS_PER_CALL
ISAS = EXT.cpu_isas()

# Every level the kernels have on this architecture; a level this CPU
# cannot run is skipped with the reason (the scalar level always runs).
LEVELS = (
    ["scalar", "avx2", "avx512"]
    if os.uname().machine in ("x86_64", "AMD64")
    else [
        "scalar",
        "neon",
    ]
)

# Rows of x: each GEMV tile (1..4), the first GEMM sizes (a partial
# micro-kernel tile, one full and one partial), and more than a row block.
ROWS = [1, 2, 3, 4, GEMV_MAX_ROWS + 1, MICRO_ROWS + 1, CPU_ROW_BLOCK + 5]

# N: a partial panel, a partial GEMV tile of 4 columns and a partial task.
RAGGED_N = COLUMNS_PER_CALL + CPU_PANEL_COLUMNS + 3

# (group size, K along the packed axis) for x @ W.T: word-major blocks hold
# 8 (AVX2, NEON: 2 x 4) or 16 (AVX-512) words, 64, 128 or 256 values (4, 2
# and 1 bits) on 8 lanes and twice that on 16, so these leave a tail of whole
# groups after the blocks (g=32, g=64) or use group-wide segments (g=128)
# on either width (544 = 512 + 32 reaches a 1-bit block of 16 words); for 3,
# 5, 6 and 8 bits K just spans several groups.
PACKED_K = [(32, 160), (64, 320), (128, 384), (32, 544)]


@pytest.fixture(autouse=True)
def cpu_backend(monkeypatch):
    """Our CPU kernels, whatever MLX_QMM_BACKEND the suite runs under."""
    monkeypatch.delenv("MLX_QMM_BACKEND", raising=False)


@pytest.fixture(params=LEVELS)
def isa(request, monkeypatch) -> str:
    level = request.param
    if level not in ISAS:
        pytest.skip(f"this CPU or build cannot run the {level} kernels ({ISAS})")
    monkeypatch.setenv("MLX_QMM_CPU_ISA", level)
    assert mlx_qmm.backend_info()["cpu_isa"] == level
    return level


# The AVX-512 VNNI level is the AVX-512 table with the 4-bit GEMV for one
# row of x on int8 dot products (x split into int8 pieces); its own tests
# below cover that path, and every other kernel is the avx512 level's.
SPLIT_LEVEL = "avx512_vnni"
SPLIT_BLOCK = EXT.CPU_SPLIT_BLOCK_VALUES
SPLIT_LANE = EXT.CPU_SPLIT_LANE_VALUES


@pytest.fixture
def split_isa(monkeypatch) -> str:
    if SPLIT_LEVEL not in ISAS:
        pytest.skip(f"this CPU or build cannot run the {SPLIT_LEVEL} kernels ({ISAS})")
    monkeypatch.setenv("MLX_QMM_CPU_ISA", SPLIT_LEVEL)
    return SPLIT_LEVEL


def check_quantized(x, w_q, w_hat, transpose, g, bits, dtype, seed, bias=None):
    wq, scales, biases = w_q
    out = evaluate_poisoned(
        mlx_qmm.quantized_matmul(x, wq, scales, biases, transpose, g, bits, bias=bias)
    )
    assert out.dtype == dtype
    assert_close(out, reference_qmm(x, w_hat, transpose, bias), dtype, seed)


@pytest.mark.parametrize("bits", SUPPORTED_BITS)
@pytest.mark.parametrize("dtype_name", list(DTYPES))
def test_quantized_transposed(isa, bits, dtype_name, seed):
    """x @ W.T: the GEMV kernels for up to 4 rows, GEMM past them."""
    dtype = DTYPES[dtype_name]
    for g, k in PACKED_K:
        wq, scales, biases, w_hat = random_quantized((RAGGED_N, k), g, bits, dtype)
        bias = mx.random.normal((RAGGED_N,)).astype(dtype)
        for m in ROWS:
            x = mx.random.normal((m, k)).astype(dtype)
            check_quantized(
                x,
                (wq, scales, biases),
                w_hat,
                True,
                g,
                bits,
                dtype,
                seed,
                bias if m % 2 else None,
            )


@pytest.mark.parametrize("bits", SUPPORTED_BITS)
@pytest.mark.parametrize("dtype_name", list(DTYPES))
def test_quantized_not_transposed(isa, bits, dtype_name, seed):
    """x @ W, W [K, N] packed along N: K any length (37 is odd)."""
    dtype = DTYPES[dtype_name]
    for g in (32, 128):
        n = 3 * g
        wq, scales, biases, w_hat = random_quantized((37, n), g, bits, dtype)
        for m in (1, GEMV_MAX_ROWS + 1, CPU_ROW_BLOCK + 5):
            x = mx.random.normal((m, 37)).astype(dtype)
            check_quantized(x, (wq, scales, biases), w_hat, False, g, bits, dtype, seed)


@pytest.mark.parametrize("bits", [3, 4])
def test_gemv_tiny_activations(isa, bits, seed):
    """Activations of 1e-35, where the word-major layout's factors (down to
    2^-28) would push x into subnormals: the driver scales such rows up by
    a power of two and the results back, so they keep float32's precision
    (3 bits, unpacked the natural way, for comparison). Subnormal
    activations too (scaled by up to 2^149, past float's range as one
    factor): against a float64 reference, within the float32 subnormal
    grid that the results themselves fall on."""
    g, k = 64, 512
    wq, scales, biases, w_hat = random_quantized((RAGGED_N, k), g, bits, mx.float32)
    for m in (1, GEMV_MAX_ROWS):
        x = 1e-35 * mx.random.normal((m, k))
        check_quantized(x, (wq, scales, biases), w_hat, True, g, bits, mx.float32, seed)
        x = 1e-43 * mx.random.normal((m, k))
        out = evaluate_poisoned(
            mlx_qmm.quantized_matmul(x, wq, scales, biases, True, g, bits)
        )
        xd = np.array(x, dtype=np.float64)
        ref = xd @ np.array(w_hat, dtype=np.float64).T
        got = np.array(out, dtype=np.float64)
        assert np.all(np.isfinite(got))
        grid = 2.0**-149  # the spacing of float32 subnormals
        err = np.linalg.norm(got - ref) / np.linalg.norm(ref)
        assert err <= 1e-5 + grid * np.sqrt(ref.size) / np.linalg.norm(ref), err


@pytest.mark.parametrize("g", [32, 64, 128])
@pytest.mark.parametrize("dtype_name", list(DTYPES))
def test_gemv_on_int8_pieces(split_isa, dtype_name, g, seed):
    """One row of x, 4 bits, K whole blocks (one, three, 4096 values): x
    in three int8 pieces for float32 and two for float16 and bfloat16; each
    block takes 4, 2 or 1 groups' scales; N leaves a partial tile of 4 rows,
    and at 4101 its tasks are long enough to be read as streams on up to 8
    threads. x has a lane of zeros and an outlier 1000 times its lane's
    others; a batch of weights takes one row of x per matrix."""
    dtype = DTYPES[dtype_name]
    for n, k in (
        (RAGGED_N, SPLIT_BLOCK),
        (RAGGED_N, 3 * SPLIT_BLOCK),
        (RAGGED_N, 4096),
        (4101, 256),
    ):
        wq, scales, biases, w_hat = random_quantized((n, k), g, 4, dtype)
        bias = mx.random.normal((n,)).astype(dtype)
        x = mx.random.normal((1, k))
        x[:, SPLIT_LANE : 2 * SPLIT_LANE] = 0
        x[:, k - 3] = 1000 * x[:, k - 3]
        x = x.astype(dtype)
        for b in (None, bias):
            check_quantized(x, (wq, scales, biases), w_hat, True, g, 4, dtype, seed, b)
    wq, scales, biases, w_hat = random_quantized((3, 40, 256), g, 4, dtype)
    x = mx.random.normal((3, 1, 256)).astype(dtype)
    check_quantized(x, (wq, scales, biases), w_hat, True, g, 4, dtype, seed)


def test_gemv_on_int8_pieces_declined(split_isa, seed):
    """x that int8 pieces cannot carry goes to the float kernel: K not whole
    blocks, and non-finite values (every output then not finite, as the
    reference's). Activations of 1e-35 (scaled up by the driver first, for
    either kernel) keep float32's precision."""
    g = 64
    for k, scale in (
        (SPLIT_BLOCK + g, 1.0),
        (2 * SPLIT_BLOCK, 1e-35),
        (SPLIT_BLOCK + g, 1e-35),
    ):
        wq, scales, biases, w_hat = random_quantized((RAGGED_N, k), g, 4, mx.float32)
        x = scale * mx.random.normal((1, k))
        check_quantized(x, (wq, scales, biases), w_hat, True, g, 4, mx.float32, seed)
    wq, scales, biases, w_hat = random_quantized((RAGGED_N, 256), g, 4, mx.float32)
    for bad in (float("inf"), float("nan")):
        x = mx.random.normal((1, 256))
        x[:, 100] = bad
        out = evaluate_poisoned(mlx_qmm.quantized_matmul(x, wq, scales, biases))
        ref = reference_qmm(x, w_hat, True)
        assert not mx.isfinite(ref).any().item()
        assert not mx.isfinite(out).any().item(), bad


@pytest.mark.parametrize("transpose", [True, False])
def test_quantized_deeper_than_a_depth_block(isa, transpose, seed):
    """K past CPU_DEPTH_BLOCK: the GEMM accumulates over depth blocks."""
    g, bits = 128, 4
    k, n = DEPTH_BLOCK + 2 * g, 2 * g
    shape = (n, k) if transpose else (k, n)
    wq, scales, biases, w_hat = random_quantized(shape, g, bits, mx.float32)
    for m in (1, MICRO_ROWS + 1):
        x = mx.random.normal((m, k))
        check_quantized(
            x, (wq, scales, biases), w_hat, transpose, g, bits, mx.float32, seed
        )


@pytest.mark.parametrize("transpose", [True, False])
@pytest.mark.parametrize("m", [1, MICRO_ROWS + 1])
def test_quantized_strided_and_broadcast(isa, transpose, m, seed):
    """Weights strided along their packed axis (the kernels gather them),
    column-major x, x broadcast over a batch of weights."""
    g, bits = 32, 3
    shape = (64, 96) if transpose else (96, 64)
    wq, scales, biases, w_hat = random_quantized(shape, g, bits, mx.float16)
    # Column-major copies: same values, last-axis strides != 1.
    wq_t, s_t, b_t = (mx.swapaxes(mx.array(a.T), 0, 1) for a in (wq, scales, biases))
    k = w_hat.shape[-1] if transpose else w_hat.shape[-2]
    x = mx.swapaxes(mx.random.normal((k, m)).astype(mx.float16), 0, 1)
    check_quantized(x, (wq_t, s_t, b_t), w_hat, transpose, g, bits, mx.float16, seed)

    batch = (3,)
    shape_b = (*batch, *shape)
    wq, scales, biases, w_hat = random_quantized(shape_b, g, bits, mx.float32)
    xb = mx.broadcast_to(mx.random.normal((1, m, k)), (2, 3, m, k))
    check_quantized(
        xb, (wq, scales, biases), w_hat, transpose, g, bits, mx.float32, seed
    )


def dense_reference(x, w, transpose, bias=None):
    x32, w32 = x.astype(mx.float32), w.astype(mx.float32)
    out = x32 @ (mx.swapaxes(w32, -1, -2) if transpose else w32)
    return out if bias is None else out + bias.astype(mx.float32)


@pytest.mark.parametrize("transpose", [True, False])
@pytest.mark.parametrize("dtype_name", list(DTYPES))
def test_dense(isa, transpose, dtype_name, seed):
    """K not a multiple of the SIMD width (8 or 16) or of the micro-kernel slice,
    N a partial panel, every row count."""
    dtype = DTYPES[dtype_name]
    for k in (7, 300):
        w_shape = (RAGGED_N, k) if transpose else (k, RAGGED_N)
        w = mx.random.normal(w_shape).astype(dtype)
        bias = mx.random.normal((RAGGED_N,)).astype(dtype)
        for m in ROWS:
            x = mx.random.normal((m, k)).astype(dtype)
            b = bias if m % 2 else None
            out = evaluate_poisoned(mlx_qmm.matmul(x, w, transpose, bias=b))
            assert out.dtype == dtype
            assert_close(out, dense_reference(x, w, transpose, b), dtype, seed)


@pytest.mark.parametrize("m", [1, MICRO_ROWS + 1])
def test_dense_strided_deep_and_broadcast(isa, m, seed):
    """Weights strided along K and along N (the gather paths), K past a
    depth block, and a broadcast batch."""
    k = DEPTH_BLOCK + 5
    base = mx.random.normal((2 * RAGGED_N, k)).astype(mx.bfloat16)
    x = mx.random.normal((m, k)).astype(mx.bfloat16)
    for w, transpose in (
        (base[::2], True),  # rows strided: rows contiguous along K
        (mx.swapaxes(mx.array(base.T), 0, 1)[:RAGGED_N], True),  # strided along K
        (base[:RAGGED_N].T, False),  # x @ W with W's columns strided
    ):
        out = evaluate_poisoned(mlx_qmm.matmul(x, w, transpose))
        assert_close(out, dense_reference(x, w, transpose), mx.bfloat16, seed)
    w = mx.random.normal((3, 40, 24))
    xb = mx.broadcast_to(mx.random.normal((1, m, 24)), (2, 3, m, 24))
    out = evaluate_poisoned(mlx_qmm.matmul(xb, w))
    assert_close(out, dense_reference(xb, w, True), mx.float32, seed)


def test_unknown_isa_raises_naming_the_variable(monkeypatch):
    monkeypatch.setenv("MLX_QMM_CPU_ISA", "sse9")
    wq, scales, biases, _ = random_quantized((16, 64), 64, 4, mx.float32)
    with pytest.raises(ValueError, match="MLX_QMM_CPU_ISA=sse9"):
        mx.eval(mlx_qmm.quantized_matmul(mx.random.normal((1, 64)), wq, scales, biases))
    with pytest.raises(ValueError, match="MLX_QMM_CPU_ISA=sse9"):
        mlx_qmm.backend_info()


def test_isa_levels_reported():
    """scalar always runs; the default is the fastest level available."""
    assert ISAS[-1] == "scalar"
    if os.uname().machine == "x86_64":
        flags = open("/proc/cpuinfo").read().split()
        assert ("avx2" in ISAS) == ("avx2" in flags)
        has_avx512 = all(
            f in flags for f in ("avx512f", "avx512bw", "avx512dq", "avx512vl")
        )
        assert ("avx512" in ISAS) == has_avx512
        if has_avx512:
            assert ISAS.index("avx512") < ISAS.index("avx2")
        has_vnni = has_avx512 and "avx512_vnni" in flags
        assert (SPLIT_LEVEL in ISAS) == has_vnni
        if has_vnni:
            assert ISAS.index(SPLIT_LEVEL) < ISAS.index("avx512")
    if "MLX_QMM_CPU_ISA" not in os.environ:
        assert mlx_qmm.backend_info()["cpu_isa"] == ISAS[0]


# A battery of cases for a fresh process with its own thread count: every
# level, both schedules, quantized and dense.
THREADS_SCRIPT = """
import json, os, sys
sys.path.insert(0, {tests!r})
import mlx.core as mx, mlx_qmm
mx.set_default_device(mx.cpu)  # the CPU kernels, whatever the GPU
from conftest import (
    TOLERANCE, random_quantized, reference_qmm, rel_error, evaluate_poisoned)
errors = {{}}  # case: relative error over the dtype's tolerance
for isa in mlx_qmm._loader._ext.cpu_isas():
    os.environ["MLX_QMM_CPU_ISA"] = isa
    for bits, g, dtype in ((4, 64, mx.float32), (3, 32, mx.bfloat16),
                           (2, 128, mx.float16)):
        wq, s, b, w_hat = random_quantized((101, 256), g, bits, dtype)
        for m in (1, 3, 70):
            x = mx.random.normal((m, 256)).astype(dtype)
            out = evaluate_poisoned(
                mlx_qmm.quantized_matmul(x, wq, s, b, True, g, bits))
            errors[f"{{isa}} q{{bits}} m{{m}}"] = rel_error(
                out, reference_qmm(x, w_hat, True)) / TOLERANCE[dtype]
        wq, s, b, w_hat = random_quantized((50, 2 * g), g, bits, dtype)
        x = mx.random.normal((9, 50)).astype(dtype)
        out = evaluate_poisoned(mlx_qmm.quantized_matmul(x, wq, s, b, False, g, bits))
        errors[f"{{isa}} q{{bits}} xW"] = rel_error(
            out, reference_qmm(x, w_hat, False)) / TOLERANCE[dtype]
    w = mx.random.normal((77, 129))
    for m in (2, 13):
        x = mx.random.normal((m, 129))
        out = evaluate_poisoned(mlx_qmm.matmul(x, w))
        errors[f"{{isa}} dense m{{m}}"] = (
            rel_error(out, x @ w.T) / TOLERANCE[mx.float32])
print(json.dumps({{"threads": mlx_qmm.backend_info()["cpu_threads"],
                  "errors": errors}}))
"""


@pytest.mark.parametrize("threads", [1, 3])
def test_thread_counts(threads):
    """One thread (everything inline) and more threads than this machine may
    have cores (uneven splits), in a fresh process each."""
    env = dict(os.environ, MLX_QMM_NUM_THREADS=str(threads))
    env.pop("MLX_QMM_BACKEND", None)
    env.pop("MLX_QMM_CPU_ISA", None)
    code = THREADS_SCRIPT.format(tests=os.path.dirname(__file__))
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["threads"] == threads
    assert len(report["errors"]) == len(ISAS) * 14
    for case, ratio in report["errors"].items():
        # Relative error over the dtype's tolerance (NaN if poisoned).
        assert ratio <= 1.0, (case, ratio)


def test_gemv_tasks_are_long_runs():
    """The GEMV hands each thread four runs of consecutive columns, in
    multiples of one kernel call's columns (RAGGED_N above leaves a partial
    task, and the 96-column tasks of N = 1000 make three calls each)."""
    per_task = EXT.cpu_gemv_columns_per_task
    assert per_task(4096, 2) == 512
    assert per_task(14336, 2) == 1792
    assert per_task(1000, 3) == 96  # 1000 / 12 = 84 rounded up to 32s
    for threads in (1, 2, 3):
        assert per_task(RAGGED_N, threads) == COLUMNS_PER_CALL < RAGGED_N
    for n in (1, 31, 33, 4097):
        size = per_task(n, 2)
        assert size % COLUMNS_PER_CALL == 0
        tasks = -(-n // size)
        assert tasks <= 8 and (tasks - 1) * size < n <= tasks * size


@pytest.mark.parametrize("bits", [3, 4])
@pytest.mark.parametrize("dtype_name", ["float32", "bfloat16"])
def test_gemv_tasks_of_several_calls(isa, bits, dtype_name, seed):
    """N such that each thread's tasks make several kernel calls, the last
    one partial, for every GEMV row count."""
    dtype = DTYPES[dtype_name]
    runs = 4 * EXT.cpu_threads()
    n = runs * (2 * COLUMNS_PER_CALL + 16) + 40
    assert EXT.cpu_gemv_columns_per_task(n, EXT.cpu_threads()) > COLUMNS_PER_CALL
    wq, scales, biases, w_hat = random_quantized((n, 256), 64, bits, dtype)
    for m in range(1, GEMV_MAX_ROWS + 1):
        x = mx.random.normal((m, 256)).astype(dtype)
        check_quantized(x, (wq, scales, biases), w_hat, True, 64, bits, dtype, seed)


def test_machine_probes():
    """The benchmark's bandwidth and FMA-rate probes return plausible rates
    (bytes and FLOPs per second of a real machine, not zeros or garbage)."""
    probe = EXT.CpuBandwidthProbe(64 << 20)
    for _ in range(2):  # measures again over the same buffers
        bw = probe.measure(2)
        assert set(bw) == {"read", "copy"}
        for rate in bw.values():
            assert 1e8 < rate < 1e13
    peak = EXT.cpu_fma_peak(0.02, 1)
    assert 1e8 < peak < 1e14
