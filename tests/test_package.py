"""The package around the kernels: the MLX version guard, backend_info, the
format constants shared with C++, the test harness's poisoning, and
``python -m mlx_qmm``."""

from __future__ import annotations

import subprocess
import sys

import mlx.core as mx
import mlx_qmm
import numpy as np
from conftest import SUPPORTED_BITS, SUPPORTED_GROUP_SIZES, evaluate_poisoned


def run_python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)


def test_import_with_another_mlx_fails_clearly():
    result = run_python(
        "import mlx.core as mx; mx.__version__ = '0.0.1'; import mlx_qmm"
    )
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError"), result.stderr
    assert "0.0.1" in last and mlx_qmm.BUILT_AGAINST_MLX in last
    assert "pip install" in last


def test_built_against_the_running_mlx():
    assert mlx_qmm.BUILT_AGAINST_MLX == mx.__version__
    assert mlx_qmm._loader._ext.LINKED_MLX == mx.__version__


def test_backend_info():
    info = mlx_qmm.backend_info()
    assert info["mlx_version"] == mx.__version__
    assert info["cpu_threads"] >= 1
    assert set(info["kernels"]) == {"cpu", "gpu"}
    for op in ("quantized_matmul", "matmul"):
        assert "mlx_qmm CPU kernels" in info["kernels"]["cpu"][op]
        gpu = info["kernels"]["gpu"][op]
        if info["gpu_backend"] is None:
            assert gpu == "no GPU backend in this MLX"
        elif info["gpu_backend"] == "cuda":
            assert gpu.startswith("mlx_qmm CUDA kernels")
        else:
            assert gpu.startswith("mlx_qmm Metal kernels")


def test_format_constants_match_stock_quantize():
    """The supported widths and group sizes are exactly those mx.quantize
    accepts for affine mode."""
    w = mx.random.normal((4, 256))
    for bits in range(1, 9):
        for group_size in (16, 32, 64, 128, 256):
            try:
                mx.eval(mx.quantize(w, group_size, bits))
                accepted = True
            except (ValueError, RuntimeError):
                accepted = False
            expected = bits in SUPPORTED_BITS and group_size in SUPPORTED_GROUP_SIZES
            assert accepted == expected, (bits, group_size)


def test_poisoned_evaluation_lands_on_poison():
    """evaluate_poisoned really makes the output reuse NaN-filled memory."""
    x = mx.random.normal((3, 16))
    w = mx.random.normal((8, 16))
    mx.eval(x, w)
    out = mlx_qmm.matmul(x, w)
    mx.clear_cache()
    poison = [mx.full(out.shape, float("nan"), out.dtype) for _ in range(2)]
    mx.eval(poison)
    addresses = {np.array(p, copy=False).__array_interface__["data"][0] for p in poison}
    del poison
    mx.eval(out)
    assert np.array(out, copy=False).__array_interface__["data"][0] in addresses
    assert np.all(np.isfinite(np.array(evaluate_poisoned(mlx_qmm.matmul(x, w)))))


def test_main_checks_and_prints_a_table():
    result = subprocess.run(
        [sys.executable, "-m", "mlx_qmm", "--repeats", "1"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "speedup" in result.stdout and "OK: all" in result.stdout
