"""``python -m mlx_qmm.bench``: a small run end to end (table, JSON, plot)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest


def test_bench_runs_and_reports(tmp_path):
    out = tmp_path / "bench.json"
    env = dict(os.environ)
    env.pop("MLX_QMM_BACKEND", None)  # the CPU kernels, not the simulator
    args = [
        sys.executable, "-m", "mlx_qmm.bench", "--device", "cpu",
        "--shape", "96x128", "--m", "1", "5", "--bits", "3", "4",
        "--dtype", "float32", "bfloat16", "--repeats", "2",
        "--probe-mb", "64", "--json", str(out),
    ]  # fmt: skip
    result = subprocess.run(args, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "[12/12" in result.stderr  # progress
    lines = result.stdout.splitlines()
    assert any(line.split()[:4] == ["q4", "96x128", "5", "bfloat16"] for line in lines)
    report = json.loads(out.read_text())
    rows = report["rows"]
    # 2 quantized widths and dense, 2 M, 2 dtypes.
    assert len(rows) == 12
    assert {r["kind"] for r in rows} == {"q3", "q4", "dense"}
    bandwidth = report["bandwidth_bytes_per_s"]
    assert bandwidth["best"] == max(bandwidth["read"], bandwidth["copy"]) > 0
    for r in rows:
        assert r["ours"]["seconds"] > 0 and r["stock"]["seconds"] > 0
        assert r["speedup"] == pytest.approx(
            r["stock"]["seconds"] / r["ours"]["seconds"]
        )
        assert 0 < r["floor_percent"] and r["bound"] in ("memory", "compute")
        # Rows memory-bound at the run's bandwidth take the bandwidth
        # measured beside them; the others the run's.
        ceiling = report["compute_ceiling_flop_per_s"][r["dtype"]]
        compute_floor = 2 * r["m"] * r["n"] * r["k"] / ceiling
        if r["bytes_moved"] / bandwidth["best"] < compute_floor:
            assert r["bandwidth_bytes_per_s"] == bandwidth["best"]
        assert r["bandwidth_bytes_per_s"] > 0
        floor = max(r["bytes_moved"] / r["bandwidth_bytes_per_s"], compute_floor)
        assert r["floor_s"] == pytest.approx(floor)
        assert r["error"] < (1e-5 if r["dtype"] == "float32" else 1e-2)
    # M = 1 at 96 x 128 is memory-bound: measured beside its row.
    assert any(r["bandwidth_bytes_per_s"] != bandwidth["best"] for r in rows)
    # The saved run prints the same table again.
    again = subprocess.run(
        [sys.executable, "-m", "mlx_qmm.bench", "--from-json", str(out)],
        env=env,
        capture_output=True,
        text=True,
    )
    assert again.returncode == 0, again.stderr
    table = [line for line in lines if line.split()[:1] in (["q3"], ["q4"], ["dense"])]
    assert all(line in again.stdout for line in table)


def test_bench_plot(tmp_path):
    # matplotlib is in the test extra: under CI its absence must fail.
    if not os.environ.get("CI"):
        pytest.importorskip("matplotlib", reason="the plot extra is not installed")
    png = tmp_path / "bench.png"
    env = dict(os.environ)
    env.pop("MLX_QMM_BACKEND", None)
    args = [
        sys.executable, "-m", "mlx_qmm.bench", "--device", "cpu",
        "--shape", "64x64", "--m", "1", "2", "--bits", "4",
        "--dtype", "float32", "--no-dense", "--repeats", "1",
        "--probe-mb", "16", "--plot", str(png),
    ]  # fmt: skip
    result = subprocess.run(args, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _ladder_run(per_call, **kwargs):
    """ladder_timing over a synthetic ``per_call(calls)`` cost; returns the
    timing and the call counts it evaluated, the cold first one dropped."""
    from mlx_qmm import bench

    seen = []

    def sample(calls):
        seen.append(calls)
        # The cold first call (JIT compilation) must not steer the ladder.
        return 10.0 if len(seen) == 1 else per_call(calls)

    timing = bench.ladder_timing(sample, **kwargs)
    return timing, seen[1:]


def test_ladder_timing_takes_the_fastest_rung():
    from mlx_qmm import bench

    # MLX's GPU backend in miniature: a fixed cost an evaluation (the first
    # graph's wait, the synchronisation) and a penalty past 256 calls (tasks
    # in flight), so the fastest count lies inside the ladder.
    def per_call(calls):
        return 15e-6 + 200e-6 / calls + (5e-6 if calls > 256 else 0.0)

    timing, seen = _ladder_run(per_call, repeats=3)
    first = 1
    while per_call(first) * first < bench.GPU_LADDER_START_SECONDS:
        first *= 2
    rungs = sorted(set(c for c in seen if c >= first))
    assert rungs == [first * 2**i for i in range(len(rungs))]
    assert rungs[-1] == bench.MAX_CALLS
    assert 256 in rungs and rungs[0] < 256
    assert timing.calls_per_sample == 256
    assert timing.seconds == pytest.approx(per_call(256))
    assert timing.samples >= 3
    assert [c for c, _ in timing.rungs] == rungs
    assert [t for _, t in timing.rungs] == pytest.approx([per_call(c) for c in rungs])


def test_ladder_timing_stops_at_the_sample_time_and_budget():
    from mlx_qmm import bench

    slow = 4e-3  # seconds a call: a rung of 8 calls takes GPU_SAMPLE_SECONDS

    timing, seen = _ladder_run(lambda calls: slow, repeats=2)
    last = 1
    while last * slow < bench.GPU_SAMPLE_SECONDS:
        last *= 2
    assert max(seen) == last
    assert timing.seconds == pytest.approx(slow)

    # A budget of a few samples ends the ladder at its first rung.
    timing, seen = _ladder_run(lambda calls: slow, repeats=50, budget_s=3 * slow)
    assert max(seen) == 1 and timing.calls_per_sample == 1
    assert 1 <= timing.samples <= 3
