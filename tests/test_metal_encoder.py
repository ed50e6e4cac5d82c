"""The Metal code the simulator does not run as it runs the kernels: the
eval_gpu encoder (csrc/metal/eval_metal.cpp), compiled here against MLX's
own Metal headers, and the single-kernel sources that a Mac without a Metal
compiler builds at run time, compiled and run here on the simulator."""

from __future__ import annotations

import subprocess
from pathlib import Path

import metal_sim
import mlx.core as mx
import mlx_qmm
import pytest
from conftest import (
    DTYPES,
    assert_close,
    evaluate_poisoned,
    random_quantized,
    reference_qmm,
    simulator_launches,
)

pytestmark = metal_sim.needs_compiler()

ext = mlx_qmm._loader._ext
REPO = Path(__file__).resolve().parent.parent
MLX_INCLUDE = Path(mx.__file__).resolve().parent / "include"
METAL_CPP_DECLARATIONS = Path(__file__).resolve().parent / "metal_cpp_declarations"


@pytest.mark.parametrize(
    "definitions",
    [["-DMLX_QMM_METAL"], ["-DMLX_QMM_METAL", "-DMLX_QMM_METALLIB"]],
    ids=["runtime-compiled", "metallib"],
)
def test_encoder_compiles_against_mlx_metal_api(definitions):
    """eval_metal.cpp against the mlx/backend/metal headers of the installed
    MLX (the same headers the macOS wheel ships), warnings as errors."""
    assert (MLX_INCLUDE / "mlx" / "backend" / "metal" / "device.h").exists()
    result = subprocess.run(
        [
            metal_sim.compiler(),
            "-std=c++20",
            "-fsyntax-only",
            "-Wall",
            "-Wextra",
            "-Werror",
            *definitions,
            f"-I{REPO}",
            f"-I{METAL_CPP_DECLARATIONS}",
            "-isystem",
            str(MLX_INCLUDE),
            str(REPO / "csrc" / "metal" / "eval_metal.cpp"),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr


def run_matmul(kind: str, dtype, seed: int):
    """Runs one matmul on the simulator, returns (output, reference)."""
    if kind == "dense_t_views":
        x = mx.random.normal((70, 3)).astype(dtype).T  # strided_copy first
        w = mx.random.normal((40, 70)).astype(dtype)
        return mlx_qmm.matmul(x, w), reference_qmm(x, w, True)
    if kind == "dense_gemv":
        x = mx.random.normal((1, 70)).astype(dtype)
        w = mx.random.normal((40, 70)).astype(dtype)
        return mlx_qmm.matmul(x, w), reference_qmm(x, w, True)
    if kind == "dense_gemm_n":
        x = mx.random.normal((5, 70)).astype(dtype)
        w = mx.random.normal((70, 40)).astype(dtype)
        return mlx_qmm.matmul(x, w, False), reference_qmm(x, w, False)
    transpose = kind != "qmm_affine_n"
    rows = 1 if kind == "qmv_affine" else 9
    shape = (48, 128) if transpose else (128, 64)
    wq, scales, biases, w_hat = random_quantized(shape, 64, 4, dtype)
    x = mx.random.normal((rows, 128)).astype(dtype)
    out = mlx_qmm.quantized_matmul(x, wq, scales, biases, transpose, 64, 4)
    return out, reference_qmm(x, w_hat, transpose)


@pytest.mark.parametrize(
    "kind",
    [
        "dense_t_views",
        "dense_gemv",
        "dense_gemm_n",
        "qmv_affine",
        "qmm_affine_t",
        "qmm_affine_n",
    ],
)
@pytest.mark.parametrize("dtype_name", ["float32", "bfloat16"])
def test_single_kernel_sources_compile_and_run(
    metal_sim_backend, kind, dtype_name, seed
):
    """The source a Mac compiles at run time for a plan's kernel (its .metal
    file with our headers inlined, and that one instantiation) defines that
    kernel alone, under the plan's host name, and computes the same (a plan
    with input copies: each of its launches compiles alone)."""
    dtype = DTYPES[dtype_name]
    out, ref = run_matmul(kind, dtype, seed)
    evaluate_poisoned(out)
    sources = ext.metal_simulator_last_kernel_sources()
    assert len(sources) == (2 if kind == "dense_t_views" else 1)
    for kernel, source in sources:
        assert '#include "' not in source  # self-contained
        assert metal_sim.Library(source).kernels == [kernel]
    if len(sources) > 1:
        return
    kernel, source = sources[0]
    single = metal_sim.Library(source)
    try:
        ext.load_metal_simulator(str(single.path))
        before = simulator_launches(kernel)
        out, ref = run_matmul(kind, dtype, seed)
        out = evaluate_poisoned(out)
        assert simulator_launches(kernel) == before + 1
    finally:
        ext.load_metal_simulator(str(metal_sim.project_library().path))
    assert_close(out, ref, dtype, seed)
