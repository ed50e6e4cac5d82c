"""Side-by-side measurement of mlx-qmm against stock MLX in one process.

Used by ``python -m mlx_qmm`` (a quick check) and by ``bench/`` (the full
benchmark). Times are medians over repeats after a warm-up; every timed call
is evaluated, so lazy evaluation cannot hide work.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import mlx.core as mx

from .ops import _STOCK_QUANTIZED_MATMUL, quantized_matmul

DTYPES = {"float32": mx.float32, "float16": mx.float16, "bfloat16": mx.bfloat16}


def median_time(fn: Callable[[], mx.array], repeats: int = 5, warmup: int = 1) -> float:
    """Median wall time of ``mx.eval(fn())`` in seconds."""
    for _ in range(warmup):
        mx.eval(fn())
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        mx.eval(fn())
        mx.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def relative_error(out: mx.array, ref: mx.array) -> float:
    """``||out - ref|| / ||ref||`` computed in float32."""
    out = out.astype(mx.float32)
    ref = ref.astype(mx.float32)
    den = mx.linalg.norm(ref).item()
    return mx.linalg.norm(out - ref).item() / (den if den > 0 else 1.0)


def reference_quantized_matmul(
    x: mx.array,
    w: mx.array,
    scales: mx.array,
    biases: mx.array,
    transpose: bool = True,
    group_size: int = 64,
    bits: int = 4,
) -> mx.array:
    """The float32 reference: stock ``mx.dequantize`` then ``mx.matmul``, on
    the CPU stream (a GPU's float32 matmul may round through tf32)."""
    f32 = mx.float32
    with mx.stream(mx.cpu):
        w_hat = mx.dequantize(
            w, scales.astype(f32), biases.astype(f32), group_size, bits
        )
        out = mx.matmul(
            x.astype(f32), mx.swapaxes(w_hat, -1, -2) if transpose else w_hat
        )
        mx.eval(out)
    return out


@dataclass
class QuantizedCase:
    """One quantized matmul problem: ``[M, K] @ dequantize([N, K]).T``."""

    m: int
    n: int
    k: int
    bits: int = 4
    group_size: int = 64
    dtype: str = "float32"


@dataclass
class CaseResult:
    case: QuantizedCase
    error: float  # ours, relative to the float32 reference
    stock_error: float  # stock, relative to the float32 reference
    ours_s: float
    stock_s: float

    @property
    def speedup(self) -> float:
        return self.stock_s / self.ours_s

    def as_dict(self) -> dict:
        return {
            **asdict(self.case),
            "error": self.error,
            "stock_error": self.stock_error,
            "ours_s": self.ours_s,
            "stock_s": self.stock_s,
            "speedup": self.speedup,
        }


def run_case(case: QuantizedCase, repeats: int = 5) -> CaseResult:
    """Check ours against stock on one case and time both."""
    dtype = DTYPES[case.dtype]
    w = mx.random.normal((case.n, case.k)).astype(dtype)
    wq, scales, biases = mx.quantize(w, case.group_size, case.bits)
    x = mx.random.normal((case.m, case.k)).astype(dtype)
    mx.eval(x, wq, scales, biases)
    kwargs = {"group_size": case.group_size, "bits": case.bits}

    def ours() -> mx.array:
        return quantized_matmul(x, wq, scales, biases, **kwargs)

    def stock() -> mx.array:
        return _STOCK_QUANTIZED_MATMUL(x, wq, scales, biases, **kwargs)

    ref = reference_quantized_matmul(x, wq, scales, biases, **kwargs)
    return CaseResult(
        case,
        error=relative_error(ours(), ref),
        stock_error=relative_error(stock(), ref),
        ours_s=median_time(ours, repeats),
        stock_s=median_time(stock, repeats),
    )


def format_table(results: list[CaseResult]) -> str:
    """A plain-text table of results."""
    header = (
        f"{'M':>5} {'N':>6} {'K':>6} {'bits':>4} {'group':>5} {'dtype':>8} "
        f"{'err ours':>9} {'err stock':>9} {'ours ms':>9} {'stock ms':>9} "
        f"{'speedup':>8}"
    )
    lines = [header, "-" * len(header)]
    for r in results:
        c = r.case
        lines.append(
            f"{c.m:>5} {c.n:>6} {c.k:>6} {c.bits:>4} {c.group_size:>5} "
            f"{c.dtype:>8} {r.error:>9.2e} {r.stock_error:>9.2e} "
            f"{r.ours_s * 1e3:>9.3f} "
            f"{r.stock_s * 1e3:>9.3f} {r.speedup:>7.2f}x"
        )
    return "\n".join(lines)
