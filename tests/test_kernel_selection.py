"""The Metal kernel selection table (csrc/metal/kernel_selection.h): the
launch plans follow it at both ends of every rule's range of rows, and the
README shows it as the code has it."""

from __future__ import annotations

from pathlib import Path

import metal_sim
import mlx.core as mx
import mlx_qmm
import pytest
from conftest import assert_close, evaluate_poisoned, random_quantized, reference_qmm
from mlx_qmm.metal_kernels import format_kernel_rules, host_name, kernel_rules

ext = mlx_qmm._loader._ext
README = Path(__file__).resolve().parent.parent / "README.md"


def rows_at_rule_edges() -> list[tuple[bool, bool, int, str]]:
    """(quantized, transpose, rows, rule): the first and the last row count
    of every rule (a rule without an end: its first, and 70, past two
    64-row tiles)."""
    cases = []
    served: dict[tuple[bool, bool], int] = {}
    for rule in kernel_rules():
        key = (rule.quantized, rule.transpose)
        first = served.get(key, 0) + 1
        last = rule.max_rows if rule.max_rows is not None else 70
        for rows in sorted({first, last}):
            cases.append((rule.quantized, rule.transpose, rows, rule))
        if rule.max_rows is not None:
            served[key] = rule.max_rows
    return cases


def test_every_product_has_a_rule_for_every_row_count():
    rules = kernel_rules()
    for quantized in (True, False):
        for transpose in (True, False):
            key = (quantized, transpose)
            mine = [r for r in rules if (r.quantized, r.transpose) == key]
            assert mine, (quantized, transpose)
            assert mine[-1].max_rows is None
            ends = [r.max_rows for r in mine[:-1]]
            assert ends == sorted(ends)


@metal_sim.needs_compiler()
@pytest.mark.parametrize("quantized,transpose,rows,rule", rows_at_rule_edges())
def test_plans_follow_the_table(
    metal_sim_backend, quantized, transpose, rows, rule, seed
):
    # N a multiple of the group size: x @ w packs w along N.
    n, k = 64, 128
    x = mx.random.normal((rows, k))
    if quantized:
        wq, scales, biases, w_hat = random_quantized(
            (n, k) if transpose else (k, n), 64, 4, mx.float32
        )
        out = evaluate_poisoned(
            mlx_qmm.quantized_matmul(x, wq, scales, biases, transpose, 64, 4)
        )
    else:
        w_hat = mx.random.normal((n, k) if transpose else (k, n))
        out = evaluate_poisoned(mlx_qmm.matmul(x, w_hat, transpose))
    launched = ext.metal_simulator_last_launch()[0]
    assert launched == host_name(rule, "float32", 64, 4)
    assert_close(out, reference_qmm(x, w_hat, transpose), mx.float32, seed)


def test_readme_shows_the_table():
    assert format_kernel_rules() in README.read_text(), (
        "README's kernel selection table differs from the code's: paste the "
        "output of `python -m mlx_qmm.metal_kernels`"
    )
