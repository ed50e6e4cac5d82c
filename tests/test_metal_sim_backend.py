"""MLX_QMM_BACKEND=metal-sim: our primitives evaluate CPU streams by running
their Metal launch plans on the Metal simulator. Runs in both CI passes: the
test loads the project's Metal library and switches the backend on itself."""

from __future__ import annotations

import metal_sim
import mlx.core as mx
import mlx_qmm
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

pytestmark = metal_sim.needs_compiler()

ext = mlx_qmm._loader._ext


@pytest.fixture
def metal_sim_backend(monkeypatch):
    ext.load_metal_simulator(str(metal_sim.project_library().path))
    monkeypatch.setenv("MLX_QMM_BACKEND", "metal-sim")


def launches(kernel: str) -> int:
    return ext.metal_simulator_launches().get(kernel, 0)


@pytest.mark.parametrize("dtype_name", list(DTYPES))
@pytest.mark.parametrize("transpose", [True, False])
@pytest.mark.parametrize(
    "x_shape,n,bias",
    [
        ((1, 200), 37, True),
        ((129,), 9, False),
        ((3, 64), 8, False),
        ((2, 20, 130), 45, True),
    ],
)
def test_dense_on_the_simulator(
    metal_sim_backend, dtype_name, transpose, x_shape, n, bias, seed
):
    """dense_gemv for one row of x @ w.T, dense_gemm otherwise, with partial
    tiles in M, N and K."""
    dtype = DTYPES[dtype_name]
    k = x_shape[-1]
    x = mx.random.normal(x_shape).astype(dtype)
    w = mx.random.normal((n, k) if transpose else (k, n)).astype(dtype)
    b = mx.random.normal((n,)).astype(dtype) if bias else None
    rows = x.size // k
    if transpose and rows == 1:
        kernel = f"dense_gemv_{dtype_name}"
    else:
        kernel = f"dense_gemm_{'t' if transpose else 'n'}_{dtype_name}"
    before = launches(kernel)
    out = evaluate_poisoned(mlx_qmm.matmul(x, w, transpose, bias=b))
    assert launches(kernel) == before + 1
    w32 = w.astype(mx.float32)
    ref = reference_qmm(x, w32, transpose, b)
    assert_close(out, ref, dtype, seed)


@pytest.mark.parametrize("bits", SUPPORTED_BITS)
@pytest.mark.parametrize("group_size", SUPPORTED_GROUP_SIZES)
@pytest.mark.parametrize("dtype_name", list(DTYPES))
def test_qmv_affine_on_the_simulator(
    metal_sim_backend, bits, group_size, dtype_name, seed
):
    """Every qmv_affine instantiation, on a shape with a partial threadgroup
    of rows (N = 150) and a partial last K block (40 groups: 32 + 8)."""
    dtype = DTYPES[dtype_name]
    n, k = 150, 40 * group_size
    wq, scales, biases, w_hat = random_quantized((n, k), group_size, bits, dtype)
    x = mx.random.normal((1, 1, k)).astype(dtype)
    bias = mx.random.normal((n,)).astype(dtype)
    kernel = f"qmv_affine_{dtype_name}_gs_{group_size}_b_{bits}"
    before = launches(kernel)
    out = evaluate_poisoned(
        mlx_qmm.quantized_matmul(
            x, wq, scales, biases, True, group_size, bits, bias=bias
        )
    )
    assert launches(kernel) == before + 1
    assert_close(out, reference_qmm(x, w_hat, True, bias), dtype, seed)


@pytest.mark.parametrize("bits", SUPPORTED_BITS)
@pytest.mark.parametrize("group_size", SUPPORTED_GROUP_SIZES)
@pytest.mark.parametrize("dtype_name", list(DTYPES))
@pytest.mark.parametrize("transpose", [True, False])
def test_qmm_affine_on_the_simulator(
    metal_sim_backend, bits, group_size, dtype_name, transpose, seed
):
    """Every qmm_affine instantiation, with partial tiles in M (37 rows) and
    in N (x @ w.T: N = 70) or K (x @ w: K = 70)."""
    dtype = DTYPES[dtype_name]
    if transpose:
        n, k = 70, 3 * group_size
        shape = (n, k)
    else:
        n, k = 2 * group_size, 70
        shape = (k, n)
    wq, scales, biases, w_hat = random_quantized(shape, group_size, bits, dtype)
    x = mx.random.normal((37, k)).astype(dtype)
    bias = mx.random.normal((n,)).astype(dtype)
    kernel = (
        f"qmm_affine_{'t' if transpose else 'n'}_{dtype_name}_gs_{group_size}_b_{bits}"
    )
    before = launches(kernel)
    out = evaluate_poisoned(
        mlx_qmm.quantized_matmul(
            x, wq, scales, biases, transpose, group_size, bits, bias=bias
        )
    )
    assert launches(kernel) == before + 1
    assert_close(out, reference_qmm(x, w_hat, transpose, bias), dtype, seed)


def test_cases_without_a_metal_kernel_stay_on_the_cpu(metal_sim_backend, seed):
    # A batched or a non-contiguous w: no Metal kernel yet.
    x = mx.random.normal((2, 4, 32))
    w = mx.random.normal((2, 32, 16))
    before = ext.metal_simulator_launches()
    out = evaluate_poisoned(mlx_qmm.matmul(x, w, transpose=False))
    assert ext.metal_simulator_launches() == before
    assert_close(out, x @ w, mx.float32, seed)
    w = mx.random.normal((32, 32))[:, ::2]
    out = evaluate_poisoned(mlx_qmm.matmul(x[0], w, transpose=False))
    assert ext.metal_simulator_launches() == before
    assert_close(out, x[0] @ w, mx.float32, seed)
    # A batched w: no Metal kernel yet.
    wq, scales, biases, w_hat = random_quantized((2, 16, 64), 64, 4, mx.float32)
    x = mx.random.normal((2, 3, 64))
    out = evaluate_poisoned(mlx_qmm.quantized_matmul(x, wq, scales, biases))
    assert ext.metal_simulator_launches() == before
    assert_close(out, reference_qmm(x, w_hat, True), mx.float32, seed)


def test_backend_info_reports_metal_sim(metal_sim_backend):
    kernels = mlx_qmm.backend_info()["kernels"]["cpu"]
    assert kernels["matmul"].startswith(
        "metal-sim: Metal kernels on the Metal simulator"
    )
    assert kernels["quantized_matmul"].startswith(
        "metal-sim: Metal kernels on the Metal simulator"
    )


def test_kernel_errors_surface_as_exceptions(metal_sim_backend):
    """A simulator diagnostic fails the evaluation with its message."""
    lib = metal_sim.project_library()
    with pytest.raises(metal_sim.MetalSimError, match="out-of-bounds device read"):
        # K larger than the buffers: the kernel reads past x and w.
        import numpy as np

        lib.launch(
            "dense_gemv_float32",
            (1, 1, 1),
            (32, 2, 1),
            {
                0: np.zeros(8, np.float32),
                1: np.zeros(64, np.float32),
                3: np.zeros(8, np.float32),
                4: np.int32([16]),
                5: np.int32([8]),
            },
            constants={0: False},
        )
