"""The bytes model of our Metal kernels, from the Metal simulator's counts.

For each case, mlx_qmm.quantized_matmul runs with MLX_QMM_BACKEND=metal-sim,
so the launch plan picks the kernel exactly as on a Mac, and the simulator
counts the device bytes that kernel reads and writes (every load, store and
copy of every thread). The table sets them against the compulsory minimum
(each weight, scale and bias byte read once, x read once, the output written
once) and turns them into the time they take at the memory bandwidth of
Apple GPUs.

    python bench/metal_bytes_model.py [--rows 1 8 64 512] [--sample 48] \
        [--out bench/metal_bytes_model.md]

Needs the Metal simulator (tests/metal_sim, clang 19). Simulating every
thread of a large launch takes hours, so each launch runs a sample of
``--sample`` threadgroups spread evenly over its grid and its bytes are
scaled by the grid's size. Every shape here divides into whole tiles, so
every threadgroup moves the same bytes and the estimate is exact
(tests/test_metal_sim_backend.py checks that against full counts).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import mlx.core as mx
import mlx_qmm

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

import metal_sim  # noqa: E402

SHAPES = [(4096, 4096), (14336, 4096)]  # N x K
ROWS = [1, 8, 64, 512]
BITS = [4, 8]
GROUP_SIZE = 64
DTYPE = "float16"
# Unified memory bandwidth, GB/s, as Apple publishes it.
BANDWIDTH = {
    "M2": 100,
    "M2 Pro": 200,
    "M2 Max": 400,
    "M3": 100,
    "M3 Pro": 150,
    "M3 Max": 400,
    "M4": 120,
    "M4 Pro": 273,
    "M4 Max": 546,
}


def compulsory_bytes(m: int, n: int, k: int, bits: int, itemsize: int) -> int:
    weights = n * k * bits // 8
    scales_and_biases = 2 * n * (k // GROUP_SIZE) * itemsize
    return weights + scales_and_biases + m * k * itemsize + m * n * itemsize


def measure(m: int, n: int, k: int, bits: int) -> tuple[str, float, int, int]:
    """(kernel, estimated bytes moved, threadgroups run, in the grid)."""
    dtype = getattr(mx, DTYPE)
    w = mx.random.normal((n, k)).astype(dtype)
    wq, scales, biases = mx.quantize(w, GROUP_SIZE, bits)
    x = mx.random.normal((m, k)).astype(dtype)
    mx.eval(wq, scales, biases, x)
    ext = mlx_qmm._loader._ext
    before = sum(ext.metal_simulator_launches().values())
    mx.eval(mlx_qmm.quantized_matmul(x, wq, scales, biases, True, GROUP_SIZE, bits))
    if sum(ext.metal_simulator_launches().values()) != before + 1:
        raise RuntimeError(f"no single Metal launch served M={m} {n}x{k}")
    kernel, read, written, run, total = ext.metal_simulator_last_launch()
    return kernel, (read + written) * total / run, run, total


def table(rows: list[int]) -> str:
    itemsize = 2 if DTYPE in ("float16", "bfloat16") else 4
    gpus = list(BANDWIDTH)
    head = ["N x K", "M", "bits", "kernel", "threadgroups simulated"]
    head += ["moved MB", "compulsory MB", "ratio"]
    head += [f"{g} us" for g in gpus]
    lines = [
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for n, k in SHAPES:
        for m in rows:
            for bits in BITS:
                need = compulsory_bytes(m, n, k, bits, itemsize)
                kernel, moved, run, total = measure(m, n, k, bits)
                print(f"{n} x {k} M={m} bits={bits}: {kernel}", file=sys.stderr)
                row = [f"{n} x {k}", str(m), str(bits), f"`{kernel}`"]
                row += [
                    f"{run} of {total}",
                    f"{moved / 1e6:.2f}",
                    f"{need / 1e6:.2f}",
                    f"{moved / need:.3f}",
                ]
                row += [f"{moved / (BANDWIDTH[g] * 1e3):.1f}" for g in gpus]
                lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=ROWS)
    parser.add_argument(
        "--sample", type=int, default=48, help="threadgroups simulated per launch"
    )
    parser.add_argument("--out", default=None, help="write the table here")
    args = parser.parse_args(argv)

    mlx_qmm._loader._ext.load_metal_simulator(str(metal_sim.project_library().path))
    os.environ["MLX_QMM_BACKEND"] = "metal-sim"
    os.environ["METAL_SIM_SAMPLE_THREADGROUPS"] = str(args.sample)
    mx.set_default_device(mx.cpu)
    mx.random.seed(0)
    text = (
        f"Device bytes of our Metal kernels, {DTYPE}, group size {GROUP_SIZE}, "
        "x @ w.T, as counted by the Metal simulator (a sample of each launch's "
        "threadgroups, scaled by the grid: exact here, every threadgroup moves "
        "the same bytes); times are those bytes over each GPU's memory "
        "bandwidth. At M = 1 that is what one pass over the weights takes. "
        "With more rows the tiled kernel reads x once per tile of columns and "
        "w once per tile of rows: the counts include those re-reads, which "
        "the GPU's caches largely serve, and the arithmetic rather than the "
        "memory bounds it, so there the times are a bytes budget, not a "
        "prediction. Generated by "
        f"`python bench/metal_bytes_model.py --rows {' '.join(map(str, args.rows))} "
        f"--sample {args.sample}`."
        "\n\n" + table(args.rows) + "\n"
    )
    print(text)
    if args.out:
        Path(args.out).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
