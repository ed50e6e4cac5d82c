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
    simulator_launches,
)
from mlx_qmm.metal_kernels import host_name, select_kernel

pytestmark = metal_sim.needs_compiler()

ext = mlx_qmm._loader._ext


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
    kernel = host_name(select_kernel(False, transpose, x.size // k), dtype_name)
    before = simulator_launches(kernel)
    out = evaluate_poisoned(mlx_qmm.matmul(x, w, transpose, bias=b))
    assert simulator_launches(kernel) == before + 1
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
    before = simulator_launches(kernel)
    out = evaluate_poisoned(
        mlx_qmm.quantized_matmul(
            x, wq, scales, biases, True, group_size, bits, bias=bias
        )
    )
    assert simulator_launches(kernel) == before + 1
    assert_close(out, reference_qmm(x, w_hat, True, bias), dtype, seed)


@pytest.mark.parametrize("bits", SUPPORTED_BITS)
@pytest.mark.parametrize("group_size", SUPPORTED_GROUP_SIZES)
@pytest.mark.parametrize("dtype_name", list(DTYPES))
@pytest.mark.parametrize("transpose", [True, False])
@pytest.mark.parametrize("rows", [20, 37], ids=["tile32", "tile64"])
def test_qmm_affine_on_the_simulator(
    metal_sim_backend, bits, group_size, dtype_name, transpose, rows, seed
):
    """Every qmm_affine instantiation, both tiles, with partial tiles in M
    and in N (x @ w.T: N = 70; x @ w, 64-tile: N = 96 at group size 32) or
    K (x @ w: K = 70)."""
    dtype = DTYPES[dtype_name]
    if transpose:
        n, k = 70, 3 * group_size
        shape = (n, k)
    else:
        n, k = 3 * group_size, 70
        shape = (k, n)
    wq, scales, biases, w_hat = random_quantized(shape, group_size, bits, dtype)
    x = mx.random.normal((rows, k)).astype(dtype)
    bias = mx.random.normal((n,)).astype(dtype)
    rule = select_kernel(True, transpose, rows)
    kernel = host_name(rule, dtype_name, group_size, bits)
    before = simulator_launches(kernel)
    out = evaluate_poisoned(
        mlx_qmm.quantized_matmul(
            x, wq, scales, biases, transpose, group_size, bits, bias=bias
        )
    )
    assert simulator_launches(kernel) == before + 1
    assert_close(out, reference_qmm(x, w_hat, transpose, bias), dtype, seed)


def strided(a: mx.array) -> mx.array:
    """A view of `a` with a non-unit stride in its last axis (every other
    element of an array twice as wide)."""
    wide = mx.repeat(a, 2, axis=-1)
    mx.eval(wide)
    return wide[..., ::2]


def rows_of(x_shape: tuple[int, ...]) -> int:
    return x_shape[-2] if len(x_shape) > 1 else 1


# (x shape, w shape, transpose): batched w, broadcast batch axes on either
# side, one row of x per batch (the matrix-vector kernels), both tiles.
DENSE_BATCHED = [
    ((2, 4, 32), (2, 32, 16), False),
    ((3, 1, 40), (3, 24, 40), True),
    ((5, 40), (2, 1, 24, 40), True),
    ((4, 1, 2, 33), (3, 24, 33), True),
    ((2, 40, 32), (2, 32, 16), False),
]


@pytest.mark.parametrize("x_shape,w_shape,transpose", DENSE_BATCHED)
@pytest.mark.parametrize("dtype_name", list(DTYPES))
def test_dense_batched_on_the_simulator(
    metal_sim_backend, x_shape, w_shape, transpose, dtype_name, seed
):
    dtype = DTYPES[dtype_name]
    x = mx.random.normal(x_shape).astype(dtype)
    w = mx.random.normal(w_shape).astype(dtype)
    bias = mx.random.normal((w_shape[-2] if transpose else w_shape[-1],))
    bias = bias.astype(dtype)
    name = host_name(select_kernel(False, transpose, rows_of(x_shape)), dtype_name)
    before = simulator_launches(name)
    out = evaluate_poisoned(mlx_qmm.matmul(x, w, transpose, bias=bias))
    assert simulator_launches(name) == before + 1
    ref = reference_qmm(x, w.astype(mx.float32), transpose, bias)
    assert out.shape == ref.shape
    assert_close(out, ref, dtype, seed)


# (x shape, w shape before packing, transpose).
QUANTIZED_BATCHED = [
    ((2, 3, 64), (2, 16, 64), True),
    ((1, 1, 128), (3, 40, 128), True),
    ((4, 1, 2, 64), (2, 64, 64), False),
    ((6, 128), (2, 1, 20, 128), True),
    ((2, 40, 64), (2, 16, 64), True),
]


@pytest.mark.parametrize("x_shape,w_shape,transpose", QUANTIZED_BATCHED)
@pytest.mark.parametrize("dtype_name", list(DTYPES))
def test_quantized_batched_on_the_simulator(
    metal_sim_backend, x_shape, w_shape, transpose, dtype_name, seed
):
    dtype = DTYPES[dtype_name]
    group_size, bits = 64, 4
    wq, scales, biases, w_hat = random_quantized(w_shape, group_size, bits, dtype)
    x = mx.random.normal(x_shape).astype(dtype)
    n = w_shape[-2] if transpose else w_shape[-1]
    bias = mx.random.normal((n,)).astype(dtype)
    rule = select_kernel(True, transpose, rows_of(x_shape))
    name = host_name(rule, dtype_name, group_size, bits)
    before = simulator_launches(name)
    out = evaluate_poisoned(
        mlx_qmm.quantized_matmul(
            x, wq, scales, biases, transpose, group_size, bits, bias=bias
        )
    )
    assert simulator_launches(name) == before + 1
    ref = reference_qmm(x, w_hat, transpose, bias)
    assert out.shape == ref.shape
    assert_close(out, ref, dtype, seed)


def test_views_on_the_simulator(metal_sim_backend, seed):
    """Transposed, strided and broadcast views: strided_copy gathers the
    first two into row-contiguous temporaries that the matmul kernel reads;
    a broadcast batch is read in place, through the batch offsets."""
    k, n = 48, 20
    # x transposed, w transposed, bias strided: three copies.
    x = mx.random.normal((k, 5)).T
    w = mx.random.normal((k, n)).T
    bias = strided(mx.random.normal((n,)))
    before = simulator_launches("dense_gemm_t_float32_tile_32")
    copies = simulator_launches("strided_copy_32")
    out = evaluate_poisoned(mlx_qmm.matmul(x, w, bias=bias))
    assert simulator_launches("dense_gemm_t_float32_tile_32") == before + 1
    assert simulator_launches("strided_copy_32") == copies + 3
    assert_close(out, reference_qmm(x, w, True, bias), mx.float32, seed)
    # The same in float16, where the copy moves 16-bit elements.
    x16 = mx.random.normal((k, 5)).astype(mx.float16).T
    w16 = mx.random.normal((n, k)).astype(mx.float16)
    copies = simulator_launches("strided_copy_16")
    out = evaluate_poisoned(mlx_qmm.matmul(x16, w16))
    assert simulator_launches("strided_copy_16") == copies + 1
    assert_close(out, reference_qmm(x16, w16, True), mx.float16, seed)
    # x strided along K, a broadcast batch of x.
    x = strided(mx.random.normal((3, k)))
    out = evaluate_poisoned(mlx_qmm.matmul(x, w, bias=bias))
    assert_close(out, reference_qmm(x, w, True, bias), mx.float32, seed)
    x = mx.broadcast_to(mx.random.normal((1, 2, k)), (4, 2, k))
    before = simulator_launches("dense_gemm_t_float32_tile_32")
    out = evaluate_poisoned(mlx_qmm.matmul(x, w))
    assert simulator_launches("dense_gemm_t_float32_tile_32") == before + 1
    assert_close(out, reference_qmm(x, w, True), mx.float32, seed)
    # Quantized: a row slice of the packed weights (an offset into its
    # buffer), strided scales, a broadcast x batch.
    wq, scales, biases, w_hat = random_quantized((2 * n, 128), 64, 4, mx.float32)
    x = mx.broadcast_to(mx.random.normal((1, 3, 128)), (2, 3, 128))
    s = strided(scales[n:])
    out = evaluate_poisoned(
        mlx_qmm.quantized_matmul(x, wq[n:], s, biases[n:], True, 64, 4)
    )
    w_ref = mx.dequantize(wq[n:], s, biases[n:], 64, 4)
    assert_close(out, reference_qmm(x, w_ref, True), mx.float32, seed)
    assert (
        ext.metal_simulator_last_launch()[0] == "qmm_affine_t_float32_gs_64_b_4_tile_32"
    )


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


@pytest.mark.parametrize(
    "rows,n,k",
    [(1, 512, 256), (64, 256, 128)],
    ids=["qmv_affine", "qmm_affine"],
)
def test_sampled_byte_counts_match_the_full_count(
    metal_sim_backend, monkeypatch, rows, n, k
):
    """bench/metal_bytes_model.py simulates a sample of the threadgroups of
    its large launches and scales the bytes by the grid: on shapes with no
    partial tiles every threadgroup moves the same bytes, so the estimate
    equals the full count."""
    wq, scales, biases, _ = random_quantized((n, k), 64, 4, mx.float16)
    x = mx.random.normal((rows, k)).astype(mx.float16)

    def moved() -> tuple[float, int, int]:
        mx.eval(mlx_qmm.quantized_matmul(x, wq, scales, biases))
        _, read, written, run, total = ext.metal_simulator_last_launch()
        return (read + written) * total / run, run, total

    full, run, total = moved()
    assert run == total >= 4
    monkeypatch.setenv("METAL_SIM_SAMPLE_THREADGROUPS", "2")
    estimate, run, _ = moved()
    assert run == 2
    assert estimate == full


@pytest.mark.parametrize("bits", [4, 8])
@pytest.mark.parametrize("dtype_name", ["float16", "bfloat16"])
def test_matrix_vector_kernel_moves_at_most_110_percent_of_compulsory(
    metal_sim_backend, bits, dtype_name
):
    """The decode kernel streams w once: device bytes read and written, as
    the simulator counts them, within 1.10x of the compulsory bytes (w,
    scales and biases read once, x read once, y written once)."""
    dtype = DTYPES[dtype_name]
    n, k, group_size = 1024, 2048, 64
    wq, scales, biases, _ = random_quantized((n, k), group_size, bits, dtype)
    x = mx.random.normal((1, k)).astype(dtype)
    mx.eval(mlx_qmm.quantized_matmul(x, wq, scales, biases, True, group_size, bits))
    kernel, read, written, run, total = ext.metal_simulator_last_launch()
    assert kernel.startswith("qmv_affine_") and run == total
    compulsory = wq.nbytes + scales.nbytes + biases.nbytes + x.nbytes + n * 2
    assert compulsory <= read + written <= 1.10 * compulsory
