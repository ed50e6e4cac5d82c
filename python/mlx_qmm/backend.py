"""What serves which device: :func:`backend_info`."""

from __future__ import annotations

from typing import Any

import mlx.core as mx

from ._loader import BUILT_AGAINST_MLX, _ext


def _gpu_backend() -> str | None:
    if mx.metal.is_available():
        return "metal"
    if hasattr(mx, "cuda") and mx.cuda.is_available():
        return "cuda"
    return None


def backend_info() -> dict[str, Any]:
    """Describe which kernels serve which device right now.

    Returns:
        dict: ``mlx_version`` and ``built_against_mlx``; ``default_device``;
        ``gpu_backend`` (``"metal"``, ``"cuda"`` or ``None``); ``cpu_threads``;
        ``cpu_isa``, the instruction-set level of the CPU kernels now
        (``"avx512"``, ``"avx2"``, ``"neon"`` or ``"scalar"``;
        ``MLX_QMM_CPU_ISA`` picks one of ``cpu_isas``, those this build and
        CPU can run, fastest first);
        and ``kernels``, mapping ``"cpu"`` and ``"gpu"`` to a dict from op name
        (``"quantized_matmul"``, ``"matmul"``) to who does the work.
    """
    kernels: dict[str, dict[str, str]] = {}
    for device, op, provider in _ext.kernel_providers():
        kernels.setdefault(device, {})[op] = provider
    gpu = _gpu_backend()
    if gpu is None:
        kernels["gpu"] = {op: "no GPU backend in this MLX" for op in kernels["gpu"]}
    return {
        "mlx_version": mx.__version__,
        "built_against_mlx": BUILT_AGAINST_MLX,
        "default_device": str(mx.default_device()),
        "gpu_backend": gpu,
        "cpu_threads": _ext.cpu_threads(),
        "cpu_isa": _ext.cpu_isa(),
        "cpu_isas": _ext.cpu_isas(),
        "kernels": kernels,
    }
