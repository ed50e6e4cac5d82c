"""Shared references, tolerances and input makers for the test suite.

Reference = stock MLX: ``mx.dequantize`` + ``mx.matmul`` in float32 (and, in
float32, ``mx.quantized_matmul`` itself). Errors are ``||out - ref|| /
||ref||``; the tolerances are set by the dtype's rounding, see TOLERANCE.
Inputs are fresh random draws on every run (the seed is in each failure
message); outputs are poisoned with NaN before evaluation so an element our
kernels fail to write cannot pass.
"""

from __future__ import annotations

import os

import mlx.core as mx
import mlx_qmm
import numpy as np
import pytest

DTYPES = {"float32": mx.float32, "float16": mx.float16, "bfloat16": mx.bfloat16}

# Relative to the float32 reference. Our kernels accumulate in float32; what
# remains is the rounding of the output (and, for a float32 reference built
# from rounded operands, summation order): float32 ~1e-7 per op grows to
# ~1e-6 over long sums, float16's half-ulp is 4.9e-4, bfloat16's 3.9e-3.
TOLERANCE = {mx.float32: 1e-5, mx.float16: 1e-3, mx.bfloat16: 1e-2}

# MLX_QMM_BACKEND=metal-sim: our primitives run the project's Metal kernels
# on the Metal simulator wherever a kernel serves the case. The library is
# built (or taken from the cache) once, before any test runs.
METAL_SIM = os.environ.get("MLX_QMM_BACKEND") == "metal-sim"

# On MLX's CUDA backend the suite's references (stock ops in float32, every
# bits value) need the CPU: CUDA's float32 matmul may round through tf32 and
# it quantizes no 1-bit weights. So the suite runs on the CPU stream there,
# and test_cuda.py runs our CUDA kernels explicitly on the GPU stream against
# CPU references.
CUDA = mlx_qmm.backend_info()["gpu_backend"] == "cuda"


def pytest_configure(config):
    if CUDA:
        mx.set_default_device(mx.cpu)
    if METAL_SIM:
        import metal_sim

        mlx_qmm._loader._ext.load_metal_simulator(str(metal_sim.project_library().path))


def pytest_terminal_summary(terminalreporter):
    """Which of our Metal kernels the suite ran on the simulator, and which
    instantiations the library ships that it never launched."""
    launches = mlx_qmm._loader._ext.metal_simulator_launches()
    if not launches:
        return
    import metal_sim

    shipped = metal_sim.project_library().kernels
    unlaunched = sorted(set(shipped) - set(launches))
    write = terminalreporter.write_line
    terminalreporter.write_sep("-", "Metal kernels launched on the simulator")
    for kernel, count in sorted(launches.items()):
        write(f"{kernel}: {count}")
    write(
        f"{len(shipped) - len(unlaunched)} of {len(shipped)} kernel "
        "instantiations launched"
        + (": not launched: " + ", ".join(unlaunched) if unlaunched else "")
    )


SUPPORTED_BITS = mlx_qmm._loader._ext.SUPPORTED_BITS
SUPPORTED_GROUP_SIZES = mlx_qmm._loader._ext.SUPPORTED_GROUP_SIZES
CPU_PANEL_COLUMNS = mlx_qmm._loader._ext.CPU_PANEL_COLUMNS
CPU_ROW_BLOCK = mlx_qmm._loader._ext.CPU_ROW_BLOCK


@pytest.fixture
def seed(request) -> int:
    """A fresh seed for mx.random and numpy, shown in the test's id on failure."""
    value = int.from_bytes(os.urandom(4), "little")
    mx.random.seed(value)
    request.node.user_properties.append(("seed", value))
    return value


@pytest.fixture
def metal_sim_backend(monkeypatch):
    """Our primitives run their Metal launch plans on the Metal simulator."""
    import metal_sim

    mlx_qmm._loader._ext.load_metal_simulator(str(metal_sim.project_library().path))
    monkeypatch.setenv("MLX_QMM_BACKEND", "metal-sim")


def simulator_launches(kernel: str) -> int:
    """Launches of `kernel` (a host name) on the Metal simulator so far."""
    return mlx_qmm._loader._ext.metal_simulator_launches().get(kernel, 0)


def rel_error(out: mx.array, ref: mx.array) -> float:
    """``||out - ref|| / ||ref||`` in float64 (NaN if out has a NaN)."""
    out = np.array(out.astype(mx.float32), dtype=np.float64)
    ref = np.array(ref.astype(mx.float32), dtype=np.float64)
    assert out.shape == ref.shape, (out.shape, ref.shape)
    if not np.all(np.isfinite(out)):
        return float("nan")
    den = np.linalg.norm(ref)
    return float(np.linalg.norm(out - ref) / (den if den > 0 else 1.0))


def assert_close(out: mx.array, ref: mx.array, dtype, seed=None, scale: float = 1.0):
    """Assert ``out`` is within the dtype's tolerance of ``ref``."""
    err = rel_error(out, ref)
    tol = TOLERANCE[dtype] * scale
    assert err <= tol, f"relative error {err:.3e} > {tol:.1e} (seed={seed})"


def evaluate_poisoned(
    out: mx.array, temporaries: tuple[tuple[tuple[int, ...], mx.Dtype], ...] = ()
) -> mx.array:
    """Evaluate the lazy ``out`` into memory that was just filled with NaN.

    MLX's allocator hands a freed buffer of the same size to the next
    allocation, so with the cache emptied first the output lands on
    NaN-filled memory and any element the kernel does not write stays NaN.
    ``temporaries`` (shape, dtype) get the same for the buffers that a
    computation writes and reads back before ``out``.
    """
    if out.size:
        mx.clear_cache()
        poison = [
            mx.full(shape, float("nan"), dtype)
            for shape, dtype in ((out.shape, out.dtype), *temporaries)
            for _ in range(2)
        ]
        mx.eval(poison)
        del poison
    mx.eval(out)
    return out


def random_quantized(
    shape: tuple[int, ...], group_size: int, bits: int, dtype
) -> tuple[mx.array, mx.array, mx.array, mx.array]:
    """Quantize a random float matrix (any batch) of ``shape``: (w, s, b, w_hat)."""
    # On the CPU stream: exact float32, and every bits value (MLX's CUDA
    # backend quantizes no 1-bit weights).
    cpu = mx.cpu
    w = mx.random.normal(shape).astype(dtype)
    wq, scales, biases = mx.quantize(w, group_size, bits, stream=cpu)
    w_hat = mx.dequantize(
        wq,
        scales.astype(mx.float32, stream=cpu),
        biases.astype(mx.float32, stream=cpu),
        group_size,
        bits,
        stream=cpu,
    )
    mx.eval(wq, scales, biases, w_hat)
    return wq, scales, biases, w_hat


def reference_qmm(x, w_hat, transpose, bias=None):
    """float32 ``x @ w_hat.T (+ bias)`` with matmul broadcasting."""
    # On the CPU stream: a GPU's float32 matmul may round through tf32.
    with mx.stream(mx.cpu):
        x = x.astype(mx.float32)
        w = mx.swapaxes(w_hat, -1, -2) if transpose else w_hat
        if x.ndim == 1:
            out = mx.squeeze(mx.matmul(x[None], w), -2)
        else:
            out = mx.matmul(x, w)
        if bias is not None:
            out = out + bias.astype(mx.float32)
        mx.eval(out)
    return out
