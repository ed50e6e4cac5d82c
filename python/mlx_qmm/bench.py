"""Benchmark mlx-qmm against stock MLX, side by side in one process.

    python -m mlx_qmm.bench                       # the default grid (see --help)
    python -m mlx_qmm.bench --device cpu --shape 4096x4096 --m 1 16 \\
        --bits 4 --dtype float32 bfloat16 --json out.json --plot out.png

Every row times ours and stock on the same operands: quantized rows
(``q2`` ... ``q8``) put :func:`mlx_qmm.quantized_matmul` beside stock
``mx.quantized_matmul``; ``dense`` rows put :func:`mlx_qmm.matmul` beside
stock ``mx.matmul``. Times are medians of repeats (more of them for fast
calls) after a warm-up that lasts until the time is steady; each
repeat evaluates many calls on a GPU (so that launch overhead and
synchronisation do not dominate) and one on the CPU, and the calls rotate
through enough copies of the weights that no cache holds them.

In the same run the benchmark measures the device's memory bandwidth (the
better of a read pass and a copy pass, read plus written bytes, over a
buffer far larger than any cache: on the CPU with mlx-qmm's own threads,
since MLX's single-threaded CPU copy would understate it; on a GPU with MLX
ops) and its compute ceiling (on the CPU the rate of register FMAs on all
threads; on a GPU the best dense matmul, ours or stock, on a large square
product). A row's floor is the larger of its bytes (weights, scales,
biases, x and the output) over that bandwidth and its FLOPs over that
ceiling; ``floor%`` is the floor over our time (100% = as fast as the
machine allows), and ``bound`` says which one set it. On the CPU the
bandwidth of a memory-bound row is measured again right before and right
after our timing, and the row's floor takes the mean of the two (column
``mem GB/s``): a shared machine's bandwidth moves by a third from one
minute to the next, and a row timed in a slow minute against the first
probe's fast one would read as a slow kernel.

Stock CPU kernels can take seconds to minutes per call (float16 accumulates
through scalar conversions), so stock repeats stop after ``--budget``
seconds, and a stock call predicted (from the same row at a smaller M) to
exceed ``--max-call`` seconds is skipped and shown as ``-``.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import mlx.core as mx

from ._loader import _ext
from .backend import backend_info
from .ops import _STOCK_QUANTIZED_MATMUL, matmul, quantized_matmul

DTYPES = {"float32": mx.float32, "float16": mx.float16, "bfloat16": mx.bfloat16}
MODEL_SHAPES = ["4096x4096", "14336x4096", "4096x14336"]
ALL_M = [1, 4, 16, 64, 256, 1024]
ALL_BITS = [2, 3, 4, 5, 6, 8]

# The CPU default is smaller: stock takes minutes per call there at large M.
CPU_DEFAULTS = {"shape": ["4096x4096"], "m": [1, 16, 256], "bits": [4]}

# Weight copies to rotate through: at least this many bytes of them, more
# than the largest last-level caches (CPU L3, Apple SLC, GPU L2) hold.
ROTATION_BYTES = 512 << 20
MAX_COPIES = 64
# Buffer of the bandwidth probes.
PROBE_BYTES = 1 << 30
# On a GPU the calls of one timed evaluation climb a ladder of powers of
# two: from the first count whose evaluation takes GPU_LADDER_START_SECONDS
# until one takes GPU_SAMPLE_SECONDS or holds MAX_CALLS calls, and a call's
# time is the lowest median of the rungs. Why a ladder: with MLX's CUDA
# graphs the time of a call depends on the calls evaluated together, and
# not monotonically (bench/cuda_kernels.md, measured on an H100: 14.1 us a
# call at 256 calls, 19.9 at 32, 19.3 at 512). A small evaluation carries
# the wait for its first graph and the final synchronisation; a large one
# can outrun MLX's bound on tasks in flight, which then commits and waits
# for graphs one by one. Neither is the kernels' cost, so no one count
# times every row fairly; the best rung is the rate the GPU sustains while
# the host keeps it fed, for ours and stock alike. (Before, the count came
# from the first call of a row, which holds JIT compilation and page
# faults: 1 to 120 calls by chance, and stock's slow first calls had their
# rows timed at a few calls an evaluation.)
GPU_LADDER_START_SECONDS = 0.001
GPU_SAMPLE_SECONDS = 0.02
MAX_CALLS = 512
# Warm-up: samples until two in a row agree within WARMUP_AGREE (the first
# calls of a case after a large allocation, the bandwidth probe's or the
# weight copies', can take several times longer: page faults, caches, the
# kernels' threads waking), at most WARMUP_SECONDS of them.
WARMUP_AGREE = 0.10
WARMUP_SECONDS = 1.0
# Fast calls get more timed samples than --repeats, up to this many seconds
# of them (a median of 7 millisecond samples on a shared machine is noisy).
MIN_TIMED_SECONDS = 0.25
MAX_REPEATS = 101


@dataclass
class Case:
    """One row: ``x [M, K] @ W.T`` with ``W [N, K]`` quantized (``bits``) or
    dense (``bits=None``)."""

    m: int
    n: int
    k: int
    dtype: str
    bits: int | None = 4
    group_size: int = 64

    @property
    def kind(self) -> str:
        return "dense" if self.bits is None else f"q{self.bits}"

    @property
    def shape(self) -> str:
        return f"{self.n}x{self.k}"

    @property
    def flops(self) -> float:
        return 2.0 * self.m * self.n * self.k


@dataclass
class Timing:
    """Median seconds per call of ``samples`` timed evaluations of
    ``calls_per_sample`` calls; on a GPU, ``rungs`` holds every rung of the
    ladder as ``[calls, median seconds per call]``."""

    seconds: float
    samples: int
    calls_per_sample: int
    rungs: list[list[float]] = field(default_factory=list)


@dataclass
class Row:
    case: Case
    bytes_moved: int
    ours: Timing
    stock: Timing | None
    skipped_stock: str | None
    error: float  # ours against the float32 reference, first rows of x
    floor_s: float
    bound: str  # "memory" or "compute"
    bandwidth: float  # bytes/s the memory floor was taken with
    notes: list[str] = field(default_factory=list)

    @property
    def speedup(self) -> float | None:
        return self.stock.seconds / self.ours.seconds if self.stock else None

    def as_dict(self) -> dict[str, Any]:
        ours_s = self.ours.seconds
        return {
            **asdict(self.case),
            "kind": self.case.kind,
            "bytes_moved": self.bytes_moved,
            "ours": asdict(self.ours),
            "stock": asdict(self.stock) if self.stock else None,
            "skipped_stock": self.skipped_stock,
            "speedup": self.speedup,
            "ours_gb_per_s": self.bytes_moved / ours_s / 1e9,
            "ours_gflop_per_s": self.case.flops / ours_s / 1e9,
            "floor_s": self.floor_s,
            "floor_percent": 100 * self.floor_s / ours_s,
            "bound": self.bound,
            "bandwidth_bytes_per_s": self.bandwidth,
            "error": self.error,
        }


# ----------------------------- timing -----------------------------


def _synchronize() -> None:
    mx.synchronize()


def time_calls(
    make_call: Callable[[int], mx.array],
    *,
    repeats: int,
    on_gpu: bool,
    budget_s: float = math.inf,
) -> Timing:
    """Median seconds per call of ``make_call(i)`` (``i`` picks the weight
    copy; it keeps counting so that consecutive calls rotate through them).

    On a GPU, :func:`ladder_timing` over evaluations of many calls. On the
    CPU one call an evaluation: untimed warm-up first, until two samples in
    a row agree within ``WARMUP_AGREE`` (at most ``WARMUP_SECONDS`` of them;
    never more than one sample when a call takes over a tenth of
    ``budget_s``), then ``repeats`` samples, more for calls faster than
    ``MIN_TIMED_SECONDS / repeats`` (up to ``MIN_TIMED_SECONDS`` of them, at
    most ``MAX_REPEATS``). Repeats stop once ``budget_s`` is spent (at least
    one is timed); a first call slower than the whole budget is itself the
    one sample (no warm-up is worth another).
    """
    counter = 0

    def sample(calls: int) -> float:
        nonlocal counter
        outs = [make_call(counter + i) for i in range(calls)]
        counter += calls
        start = time.perf_counter()
        mx.eval(outs)
        _synchronize()
        return (time.perf_counter() - start) / calls

    if on_gpu:
        return ladder_timing(sample, repeats=repeats, budget_s=budget_s)
    first = sample(1)
    if first > budget_s:
        return Timing(first, 1, 1)
    previous = _warm_up(sample, 1, first, math.inf, budget_s)
    times = _timed_samples(sample, 1, previous, repeats, budget_s)
    return Timing(statistics.median(times), len(times), 1)


def ladder_timing(
    sample: Callable[[int], float],
    *,
    repeats: int,
    budget_s: float = math.inf,
) -> Timing:
    """The GPU timing policy (``GPU_SAMPLE_SECONDS``) over ``sample(calls)``,
    the seconds per call of one evaluation of ``calls`` calls.

    The first call (JIT compilation, first use of the weights) is dropped;
    untimed evaluations double the calls until one takes
    ``GPU_LADDER_START_SECONDS``. From there each rung warms up as the CPU
    path does (at most ``WARMUP_SECONDS`` a rung, and less up the ladder:
    each rung's last warm-up evaluation comes off one ``WARMUP_SECONDS``
    allowance for the whole ladder), takes its timed
    samples, and doubles the calls, until a rung's evaluation takes
    ``GPU_SAMPLE_SECONDS``, holds ``MAX_CALLS`` calls or ``budget_s`` is
    spent. Returns the rung with the lowest median.
    """
    sample(1)
    calls = 1
    t = sample(calls)
    while calls < MAX_CALLS and t * calls < GPU_LADDER_START_SECONDS:
        calls *= 2
        t = sample(calls)
    warm_left = WARMUP_SECONDS
    spent = 0.0
    best: Timing | None = None
    rungs: list[list[float]] = []
    while True:
        previous = _warm_up(sample, calls, t, warm_left, budget_s - spent)
        warm_left -= previous * calls
        times = _timed_samples(sample, calls, previous, repeats, budget_s - spent)
        spent += sum(times) * calls
        rung = Timing(statistics.median(times), len(times), calls)
        rungs.append([calls, rung.seconds])
        if best is None or rung.seconds < best.seconds:
            best = rung
        if (
            calls >= MAX_CALLS
            or rung.seconds * calls >= GPU_SAMPLE_SECONDS
            or spent >= budget_s
        ):
            return replace(best, rungs=rungs)
        calls *= 2
        t = sample(calls)


def _warm_up(
    sample: Callable[[int], float],
    calls: int,
    first: float,
    warm_s: float,
    budget_s: float,
) -> float:
    """Untimed samples after ``first`` until two in a row agree within
    ``WARMUP_AGREE``, within ``warm_s`` (and ``WARMUP_SECONDS``) of them and
    none when a sample takes over a tenth of ``budget_s``. Returns the last
    sample's seconds per call."""
    previous, warm_spent = first, first * calls
    limit = min(warm_s, WARMUP_SECONDS)
    while first * calls <= budget_s / 10 and warm_spent < limit:
        t = sample(calls)
        warm_spent += t * calls
        steady = abs(t - previous) <= WARMUP_AGREE * previous
        previous = t
        if steady:
            break
    return previous


def _timed_samples(
    sample: Callable[[int], float],
    calls: int,
    per_call: float,
    repeats: int,
    budget_s: float,
) -> list[float]:
    """``repeats`` samples, more when they are short (``MIN_TIMED_SECONDS``,
    ``MAX_REPEATS``), fewer once ``budget_s`` is spent (at least one)."""
    count = max(
        repeats,
        min(MAX_REPEATS, int(MIN_TIMED_SECONDS / max(per_call * calls, 1e-9))),
    )
    times: list[float] = []
    spent = 0.0
    for _ in range(count):
        t = sample(calls)
        times.append(t)
        spent += t * calls
        if spent >= budget_s:
            break
    return times


# ----------------------------- probes -----------------------------


def measure_bandwidth(
    on_gpu: bool,
    probe_bytes: int = PROBE_BYTES,
    cpu_probe: Any = None,
    repeats: int = 5,
) -> dict[str, float]:
    """Memory bandwidth in bytes/s: ``read``, ``copy`` (read + written
    bytes) and ``best``, the larger, which the floors use. On the CPU,
    ``cpu_probe`` (a ``CpuBandwidthProbe``) measures over buffers it already
    holds; without one a probe of ``probe_bytes`` is made for the call."""
    if on_gpu:
        a = mx.random.uniform(shape=(probe_bytes // 4,))
        mx.eval(a)
        read_s = time_calls(lambda i: mx.sum(a), repeats=repeats, on_gpu=True).seconds
        copy_s = time_calls(lambda i: a * 1.0, repeats=repeats, on_gpu=True).seconds
        del a
        result = {"read": probe_bytes / read_s, "copy": 2 * probe_bytes / copy_s}
    else:
        probe = cpu_probe or _ext.CpuBandwidthProbe(probe_bytes)
        result = dict(probe.measure(repeats))
    result["best"] = max(result["read"], result["copy"])
    return result


def measure_compute_rate(dtype: str, on_gpu: bool) -> float:
    """The compute ceiling in FLOP/s. On a GPU the best dense matmul (ours or
    stock) on a large square product in ``dtype``; on the CPU the rate of
    independent register FMAs on all the kernels' threads (mlx-qmm converts
    every dtype to float32, so it is the same for all)."""
    if not on_gpu:
        return _ext.cpu_fma_peak(0.2, 3)
    size = 8192
    a = mx.random.normal((size, size)).astype(DTYPES[dtype])
    b = mx.random.normal((size, size)).astype(DTYPES[dtype])
    mx.eval(a, b)
    ours = time_calls(lambda i: matmul(a, b), repeats=3, on_gpu=True)
    stock = time_calls(lambda i: mx.matmul(a, b.T), repeats=3, on_gpu=True)
    return 2.0 * size**3 / min(ours.seconds, stock.seconds)


# ----------------------------- one row -----------------------------


def _copies(nbytes: int) -> int:
    return max(1, min(MAX_COPIES, math.ceil(ROTATION_BYTES / max(nbytes, 1))))


def _copy(a: mx.array) -> mx.array:
    """A fresh buffer with the contents of ``a``."""
    return mx.array(a) if a.size == 0 else a + mx.zeros((), a.dtype)


def _reference_error(out: mx.array, x: mx.array, w_float: mx.array) -> float:
    rows = min(4, x.shape[0])
    ref = x[:rows].astype(mx.float32) @ w_float.T
    got = out[:rows].astype(mx.float32)
    den = mx.linalg.norm(ref).item()
    return mx.linalg.norm(got - ref).item() / (den if den > 0 else 1.0)


def run_row(
    case: Case,
    *,
    repeats: int,
    on_gpu: bool,
    budget_s: float,
    skip_stock: str | None,
    bandwidth: float,
    matmul_rate: float,
    bandwidth_now: Callable[[], float] | None = None,
) -> Row:
    """Time ours and stock on one case. The floors take ``bandwidth`` and
    ``matmul_rate``; where the row is memory-bound and ``bandwidth_now`` is
    given, the memory floor takes the mean of what it measures right before
    and right after our timing instead."""
    dtype = DTYPES[case.dtype]
    w = mx.random.normal((case.n, case.k)).astype(dtype)
    x = mx.random.normal((case.m, case.k)).astype(dtype)
    if case.bits is None:
        weights = [w]
        w_float = w.astype(mx.float32)
    else:
        wq, scales, biases = mx.quantize(w, case.group_size, case.bits)
        weights = [wq, scales, biases]
        w_float = mx.dequantize(
            wq,
            scales.astype(mx.float32),
            biases.astype(mx.float32),
            case.group_size,
            case.bits,
        )
    mx.eval(x, weights, w_float)
    weight_bytes = sum(a.nbytes for a in weights)
    out_bytes = case.m * case.n * x.itemsize
    bytes_moved = weight_bytes + x.nbytes + out_bytes
    copies = [weights] + [
        [_copy(a) for a in weights] for _ in range(_copies(weight_bytes) - 1)
    ]
    mx.eval(copies)

    if case.bits is None:

        def ours(i: int) -> mx.array:
            return matmul(x, copies[i % len(copies)][0])

        def stock(i: int) -> mx.array:
            return mx.matmul(x, copies[i % len(copies)][0].T)

    else:
        kwargs = {"group_size": case.group_size, "bits": case.bits}

        def ours(i: int) -> mx.array:
            return quantized_matmul(x, *copies[i % len(copies)], **kwargs)

        def stock(i: int) -> mx.array:
            return _STOCK_QUANTIZED_MATMUL(x, *copies[i % len(copies)], **kwargs)

    error = _reference_error(ours(0), x, w_float)
    compute_floor = case.flops / matmul_rate
    local = bandwidth_now is not None and bytes_moved / bandwidth >= compute_floor
    if local:
        before = bandwidth_now()
    ours_t = time_calls(ours, repeats=repeats, on_gpu=on_gpu)
    if local:
        bandwidth = (before + bandwidth_now()) / 2
    stock_t = None
    if skip_stock is None:
        stock_t = time_calls(stock, repeats=repeats, on_gpu=on_gpu, budget_s=budget_s)
    memory_floor = bytes_moved / bandwidth
    return Row(
        case=case,
        bytes_moved=bytes_moved,
        ours=ours_t,
        stock=stock_t,
        skipped_stock=skip_stock,
        error=error,
        floor_s=max(memory_floor, compute_floor),
        bound="memory" if memory_floor >= compute_floor else "compute",
        bandwidth=bandwidth,
    )


# ----------------------------- output -----------------------------


def _ms(t: Timing | None) -> str:
    return "-" if t is None else f"{t.seconds * 1e3:.3f}"


def format_table(rows: Sequence[Row]) -> str:
    """A plain-text table of rows."""
    header = (
        f"{'kind':>5} {'N x K':>11} {'M':>5} {'dtype':>8} {'ours ms':>10} "
        f"{'stock ms':>11} {'speedup':>9} {'GB/s':>7} {'GFLOP/s':>8} "
        f"{'floor%':>6} {'bound':>7} {'mem GB/s':>8} {'err':>8}"
    )
    lines = [header, "-" * len(header)]
    for r in rows:
        c = r.case
        s = r.speedup
        d = r.as_dict()
        lines.append(
            f"{c.kind:>5} {c.shape:>11} {c.m:>5} {c.dtype:>8} {_ms(r.ours):>10} "
            f"{_ms(r.stock):>11} {'-' if s is None else f'{s:.1f}x':>9} "
            f"{d['ours_gb_per_s']:>7.1f} {d['ours_gflop_per_s']:>8.1f} "
            f"{d['floor_percent']:>5.0f}% {r.bound:>7} {r.bandwidth / 1e9:>8.1f} "
            f"{r.error:>8.1e}"
        )
    return "\n".join(lines)


def plot(rows: Sequence[Row], path: str, title: str) -> None:
    """Speedup over stock against M, one panel per shape, one line per kind
    and dtype (needs matplotlib: ``pip install 'mlx-qmm[plot]'``)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        raise SystemExit("--plot needs matplotlib: pip install 'mlx-qmm[plot]'") from e
    shapes = list(dict.fromkeys(r.case.shape for r in rows))
    fig, axes = plt.subplots(
        1, len(shapes), figsize=(5.5 * len(shapes) + 1.8, 4.6), squeeze=False
    )
    kinds = sorted({r.case.kind for r in rows}, key=lambda k: (k == "dense", k))
    colors = plt.get_cmap("tab10")
    styles = {"float32": "-", "float16": "--", "bfloat16": ":"}
    for ax, shape in zip(axes[0], shapes, strict=True):
        lines: dict[tuple[str, str], list[tuple[int, float]]] = {}
        for r in rows:
            if r.case.shape == shape and r.speedup is not None:
                key = (r.case.kind, r.case.dtype)
                lines.setdefault(key, []).append((r.case.m, r.speedup))
        for (kind, dtype), points in sorted(lines.items()):
            points.sort()
            ax.plot(
                [p[0] for p in points],
                [p[1] for p in points],
                marker="o",
                color=colors(kinds.index(kind) % 10),
                linestyle=styles.get(dtype, "-"),
                label=f"{kind} {dtype}",
            )
        ax.set_xscale("log", base=2)
        ms = sorted({r.case.m for r in rows if r.case.shape == shape})
        ax.set_xticks(ms, [str(m) for m in ms])
        ax.set_yscale("log")
        ax.axhline(1.0, color="gray", linewidth=0.8)
        ax.set_xlabel("M (rows of x)")
        ax.set_ylabel("speedup over stock (x)")
        ax.set_title(f"N x K = {shape}")
        ax.grid(True, which="both", alpha=0.3)
    # One legend for all panels, outside them: colour = kind, line = dtype.
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="center right", fontsize=8, ncol=1)
    fig.suptitle(title)
    fig.tight_layout(rect=(0, 0, 0.82, 1))
    fig.savefig(path, dpi=120)


# ----------------------------- command line -----------------------------


def _parse_shape(text: str) -> tuple[int, int]:
    try:
        n, k = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"shape must look like 4096x4096 (N x K), got {text!r}"
        ) from None
    return n, k


def _predicted_stock_skip(
    case: Case, measured: dict[tuple, tuple[int, float]], max_call_s: float
) -> str | None:
    """Why to skip stock for ``case``: its call at a smaller M, scaled
    linearly in M, exceeds ``max_call_s``."""
    key = (case.kind, case.shape, case.dtype)
    if key not in measured:
        return None
    m, seconds = measured[key]
    predicted = seconds * case.m / m
    if predicted > max_call_s:
        return f"predicted {predicted:.0f} s per call (M={m}: {seconds:.1f} s)"
    return None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m mlx_qmm.bench",
        description=__doc__.split("\n\n")[0],
        epilog=(
            "Defaults: on a GPU every model shape, M, bits and dtype; on the "
            f"CPU shape {CPU_DEFAULTS['shape'][0]}, M "
            f"{' '.join(map(str, CPU_DEFAULTS['m']))}, bits "
            f"{' '.join(map(str, CPU_DEFAULTS['bits']))}, every dtype. Dense "
            "rows are included unless --no-dense."
        ),
    )
    parser.add_argument(
        "--device", choices=["cpu", "gpu"], help="default: MLX's default device"
    )
    parser.add_argument(
        "--shape",
        nargs="+",
        type=_parse_shape,
        help=f"N x K of the weights (model shapes: {' '.join(MODEL_SHAPES)})",
    )
    parser.add_argument("--m", nargs="+", type=int, help=f"rows of x ({ALL_M})")
    parser.add_argument(
        "--bits", nargs="+", type=int, choices=ALL_BITS, help="quantized widths"
    )
    parser.add_argument("--dtype", nargs="+", choices=list(DTYPES))
    parser.add_argument("--group-size", type=int, default=64, choices=[32, 64, 128])
    parser.add_argument(
        "--no-dense", action="store_true", help="leave out the dense rows"
    )
    parser.add_argument(
        "--no-quantized", action="store_true", help="leave out the quantized rows"
    )
    parser.add_argument("--repeats", type=int, default=7, help="timed repeats")
    parser.add_argument(
        "--budget",
        type=float,
        default=30.0,
        help="seconds of stock repeats per row before stopping (default 30)",
    )
    parser.add_argument(
        "--max-call",
        type=float,
        default=120.0,
        help="skip a stock call predicted to take longer (default 120 s)",
    )
    parser.add_argument(
        "--probe-mb",
        type=int,
        default=PROBE_BYTES >> 20,
        help="buffer of the bandwidth probes, MiB (default 1024: far above caches)",
    )
    parser.add_argument("--json", help="write the results to this file")
    parser.add_argument(
        "--from-json",
        metavar="FILE",
        help="measure nothing: print the table (and --plot) of a saved run",
    )
    parser.add_argument("--plot", help="write a PNG of speedup against M here")
    return parser


def _rows_from_json(saved: dict[str, Any]) -> list[Row]:
    rows = []
    for d in saved["rows"]:
        fields = {f: d[f] for f in ("m", "n", "k", "dtype", "bits", "group_size")}
        rows.append(
            Row(
                case=Case(**fields),
                bytes_moved=d["bytes_moved"],
                ours=Timing(**d["ours"]),
                stock=Timing(**d["stock"]) if d["stock"] else None,
                skipped_stock=d["skipped_stock"],
                error=d["error"],
                floor_s=d["floor_s"],
                bound=d["bound"],
                bandwidth=d.get(
                    "bandwidth_bytes_per_s", saved["bandwidth_bytes_per_s"]["best"]
                ),
            )
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.from_json:
        with open(args.from_json) as f:
            saved = json.load(f)
        rows = _rows_from_json(saved)
        title = f"mlx-qmm vs stock MLX {saved['mlx_version']}, {saved['device']}"
        print(title)
        print(format_table(rows))
        if args.plot:
            plot(rows, args.plot, title)
        return 0
    if args.device:
        mx.set_default_device(mx.cpu if args.device == "cpu" else mx.gpu)
    on_gpu = mx.default_device() == mx.gpu
    defaults = {} if on_gpu else CPU_DEFAULTS
    shapes = args.shape or [
        _parse_shape(s) for s in defaults.get("shape", MODEL_SHAPES)
    ]
    ms = args.m or defaults.get("m", ALL_M)
    bits_list: list[int | None] = []
    if not args.no_quantized:
        bits_list += args.bits or defaults.get("bits", ALL_BITS)
    if not args.no_dense:
        bits_list.append(None)
    dtypes = args.dtype or list(DTYPES)
    # Grouped so that stock's time at one M predicts the next.
    cases = [
        Case(m, n, k, dtype, bits, args.group_size)
        for n, k in shapes
        for bits in bits_list
        for dtype in dtypes
        for m in sorted(ms)
    ]

    info = backend_info()
    device = (
        f"{info['gpu_backend']} GPU"
        if on_gpu
        else f"CPU ({info['cpu_threads']} threads, kernels: {info['cpu_isa']})"
    )
    log = sys.stderr
    print(f"mlx {mx.__version__}, mlx-qmm on {device}", file=log)
    print("measuring memory bandwidth ...", file=log, flush=True)
    cpu_probe = None if on_gpu else _ext.CpuBandwidthProbe(args.probe_mb << 20)
    bandwidth = measure_bandwidth(on_gpu, args.probe_mb << 20, cpu_probe)
    bandwidth_now = None
    if cpu_probe is not None:

        def bandwidth_now() -> float:
            return measure_bandwidth(False, cpu_probe=cpu_probe, repeats=3)["best"]

    print("measuring the compute ceiling ...", file=log, flush=True)
    if on_gpu:
        rates = {d: measure_compute_rate(d, on_gpu) for d in dtypes}
        ceiling = "best dense matmul " + ", ".join(
            f"{d} {r / 1e9:.0f} GFLOP/s" for d, r in rates.items()
        )
    else:
        peak = measure_compute_rate("float32", on_gpu)
        rates = dict.fromkeys(dtypes, peak)
        ceiling = f"FMA peak {peak / 1e9:.0f} GFLOP/s"
    machine = (
        f"memory bandwidth {bandwidth['best'] / 1e9:.1f} GB/s (read "
        f"{bandwidth['read'] / 1e9:.1f}, copy {bandwidth['copy'] / 1e9:.1f}); "
        f"compute ceiling: {ceiling}"
    )
    print(machine, file=log)

    rows: list[Row] = []
    stock_seen: dict[tuple, tuple[int, float]] = {}
    start = time.perf_counter()
    for i, case in enumerate(cases, 1):
        elapsed = time.perf_counter() - start
        print(
            f"[{i}/{len(cases)} {elapsed:.0f}s] {case.kind} {case.shape} "
            f"M={case.m} {case.dtype}",
            file=log,
            flush=True,
        )
        row = run_row(
            case,
            repeats=args.repeats,
            on_gpu=on_gpu,
            budget_s=args.budget,
            skip_stock=_predicted_stock_skip(case, stock_seen, args.max_call),
            bandwidth=bandwidth["best"],
            matmul_rate=rates[case.dtype],
            bandwidth_now=bandwidth_now,
        )
        if row.stock is not None:
            stock_seen[(case.kind, case.shape, case.dtype)] = (
                case.m,
                row.stock.seconds,
            )
        rows.append(row)

    title = f"mlx-qmm vs stock MLX {mx.__version__}, {device}"
    print(title)
    print(f"{machine}; group size {args.group_size}")
    print(format_table(rows))
    skipped = [r for r in rows if r.skipped_stock]
    for r in skipped:
        print(
            f"stock skipped for {r.case.kind} {r.case.shape} M={r.case.m} "
            f"{r.case.dtype}: {r.skipped_stock}"
        )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(
                {
                    "mlx_version": mx.__version__,
                    "device": device,
                    "backend_info": info,
                    "bandwidth_bytes_per_s": bandwidth,
                    "compute_ceiling_flop_per_s": rates,
                    "rows": [r.as_dict() for r in rows],
                },
                f,
                indent=2,
            )
    if args.plot:
        plot(rows, args.plot, title)
    return 0


if __name__ == "__main__":
    sys.exit(main())
