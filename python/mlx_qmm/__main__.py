"""``python -m mlx_qmm``: check our kernels against stock MLX on the default
device and print errors, times and speedups for a few shapes."""

from __future__ import annotations

import argparse
import sys

import mlx.core as mx

from .backend import backend_info
from .compare import QuantizedCase, format_table, run_case

# Largest error relative to the float32 reference (stock mx.dequantize +
# mx.matmul in float32) that each dtype's rounding of the output explains: we
# accumulate in float32, so only the final rounding (half an ulp: 2^-11 for
# float16, 2^-8 for bfloat16) and float32 summation remain.
TOLERANCE = {"float32": 1e-5, "float16": 1e-3, "bfloat16": 1e-2}

CASES = [
    QuantizedCase(1, 4096, 4096, 4, 64, "float32"),
    QuantizedCase(1, 4096, 4096, 8, 64, "float32"),
    QuantizedCase(1, 4096, 4096, 4, 64, "bfloat16"),
    QuantizedCase(16, 2048, 2048, 4, 64, "float32"),
    QuantizedCase(16, 1024, 1024, 4, 64, "float16"),
    QuantizedCase(7, 1000, 384, 3, 128, "bfloat16"),
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mlx_qmm", description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)

    info = backend_info()
    print(f"mlx {info['mlx_version']} on {info['default_device']}")
    device = "gpu" if mx.default_device() == mx.gpu else "cpu"
    for op, provider in info["kernels"][device].items():
        print(f"  {op}: {provider}")
    print()

    mx.random.seed(0)
    results = [run_case(case, args.repeats) for case in CASES]
    print(format_table(results))
    failed = [r for r in results if not r.error <= TOLERANCE[r.case.dtype]]
    print()
    if failed:
        print(f"FAILED: {len(failed)} case(s) beyond the dtype's tolerance")
        return 1
    print(
        f"OK: all {len(results)} cases within the dtype's tolerance of the "
        "float32 reference (errors are relative to it; stock's CPU kernels "
        "accumulate float16/bfloat16 in the input type, hence their larger ones)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
