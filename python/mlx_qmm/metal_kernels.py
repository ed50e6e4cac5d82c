"""Which of our Metal kernels serves which matmul.

The table lives in C++ (``csrc/metal/kernel_selection.h``), where the launch
plans choose by it; this module reads it from the extension and writes it as
the README's table::

    python -m mlx_qmm.metal_kernels
"""

from __future__ import annotations

from dataclasses import dataclass

from ._loader import _ext


@dataclass(frozen=True)
class KernelRule:
    """One row of the selection table: the first rule that matches serves.

    Attributes:
        quantized (bool): affine quantized weights (else dense).
        transpose (bool): ``x @ w.T`` (else ``x @ w``).
        max_rows (int | None): the rule serves up to this many rows of x per
            batch (``None``: any number).
        kernel (str): the kernel's name, the prefix of its host names.
        tile (int | None): the output tile's side for the tiled kernels (the
            host name ends in ``_tile_<tile>``), ``None`` for the others.
        threadgroup_work (str): what one threadgroup computes.
    """

    quantized: bool
    transpose: bool
    max_rows: int | None
    kernel: str
    tile: int | None
    threadgroup_work: str


def kernel_rules() -> list[KernelRule]:
    """The Metal kernel selection table, in the order the plans apply it."""
    return [KernelRule(*rule) for rule in _ext.metal_kernel_rules()]


def select_kernel(quantized: bool, transpose: bool, rows: int) -> KernelRule:
    """The rule that serves a matmul with ``rows`` rows of x per batch."""
    for rule in kernel_rules():
        if (rule.quantized, rule.transpose) == (quantized, transpose) and (
            rule.max_rows is None or rows <= rule.max_rows
        ):
            return rule
    raise LookupError("the selection table has no rule for this matmul")


def host_name(
    rule: KernelRule, dtype: str, group_size: int | None = None, bits: int | None = None
) -> str:
    """The host name of ``rule``'s kernel instantiation for ``dtype`` (and,
    quantized, ``group_size`` and ``bits``)."""
    if rule.kernel in ("qmv_affine", "dense_gemv"):
        name = f"{rule.kernel}_{dtype}"
    else:
        name = f"{rule.kernel}_{'t' if rule.transpose else 'n'}_{dtype}"
    if rule.quantized:
        name += f"_gs_{group_size}_b_{bits}"
    if rule.tile is not None:
        name += f"_tile_{rule.tile}"
    return name


def format_kernel_rules() -> str:
    """The selection table as Markdown (the README's copy)."""
    lines = [
        "| weights | product | rows of x (M) | kernel | one threadgroup computes |",
        "|---|---|---|---|---|",
    ]
    served: dict[tuple[bool, bool], int] = {}
    for rule in kernel_rules():
        key = (rule.quantized, rule.transpose)
        low = served.get(key, 0) + 1
        if rule.max_rows is None:
            rows = f"{low} and more" if low > 1 else "any"
        else:
            rows = str(low) if low == rule.max_rows else f"{low} to {rule.max_rows}"
            served[key] = rule.max_rows
        lines.append(
            f"| {'affine quantized' if rule.quantized else 'dense'} "
            f"| {'x @ w.T' if rule.transpose else 'x @ w'} | {rows} "
            f"| `{rule.kernel}`{'' if rule.tile is None else f' ({rule.tile})'} "
            f"| {rule.threadgroup_work} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    print(format_kernel_rules())
