"""Time mlx_qmm.quantized_matmul against stock mx.quantized_matmul, side by
side in one process, on the default device (or --device).

    python bench/bench_qmm.py --shape 4096x4096 --m 1 16 --bits 4 8 \\
        --dtype float32 bfloat16 --json results.json

Each row: median time of ours and of stock after a warm-up, the speedup, and
both errors relative to the float32 reference (stock mx.dequantize +
mx.matmul in float32).
"""

from __future__ import annotations

import argparse
import json
import sys

import mlx.core as mx
from mlx_qmm.compare import DTYPES, QuantizedCase, format_table, run_case

DEFAULT_SHAPES = ["4096x4096", "14336x4096", "4096x14336"]


def parse_shape(text: str) -> tuple[int, int]:
    n, k = text.lower().split("x")
    return int(n), int(k)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--shape",
        nargs="+",
        default=DEFAULT_SHAPES[:1],
        help="N x K of the weight, e.g. 4096x4096",
    )
    parser.add_argument("--m", nargs="+", type=int, default=[1, 16])
    parser.add_argument("--bits", nargs="+", type=int, default=[4])
    parser.add_argument("--group-size", type=int, default=64)
    parser.add_argument("--dtype", nargs="+", default=["float32"], choices=list(DTYPES))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", choices=["cpu", "gpu"], default=None)
    parser.add_argument("--json", default=None, help="write the rows to this file")
    args = parser.parse_args(argv)

    if args.device:
        mx.set_default_device(mx.cpu if args.device == "cpu" else mx.gpu)
    cases = [
        QuantizedCase(m, *parse_shape(shape), bits, args.group_size, dtype)
        for shape in args.shape
        for m in args.m
        for bits in args.bits
        for dtype in args.dtype
    ]
    print(f"mlx {mx.__version__} on {mx.default_device()}", file=sys.stderr)
    results = []
    for i, case in enumerate(cases, 1):
        print(f"[{i}/{len(cases)}] {case}", file=sys.stderr, flush=True)
        results.append(run_case(case, args.repeats))
    print(format_table(results))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(
                {
                    "device": str(mx.default_device()),
                    "mlx_version": mx.__version__,
                    "rows": [r.as_dict() for r in results],
                },
                f,
                indent=2,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
