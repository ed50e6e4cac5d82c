"""Loads the C++ extension, refusing an MLX other than the one it was built for.

A C++ extension of MLX must run against the very libmlx it was compiled with:
primitives, arrays and streams cross the boundary by C++ ABI. A mismatch would
crash or corrupt memory at the first call, so it is caught here, at import.
"""

from __future__ import annotations

import mlx.core as mx

from ._build_info import MLX_VERSION as BUILT_AGAINST_MLX

REBUILD_COMMAND = "pip install --force-reinstall --no-deps --no-cache-dir ."


def _mismatch_message(installed: str) -> str:
    return (
        f"mlx_qmm was built against MLX {BUILT_AGAINST_MLX} but MLX {installed} "
        "is installed; a C++ extension must run against the MLX it was built "
        f"with. Rebuild mlx_qmm from its source checkout: {REBUILD_COMMAND}"
    )


def check_mlx_version(installed: str) -> None:
    """Raise ``ImportError`` if ``installed`` is not the MLX we were built for."""
    if installed != BUILT_AGAINST_MLX:
        raise ImportError(_mismatch_message(installed))


check_mlx_version(mx.__version__)

try:
    from . import _ext  # noqa: E402
except ImportError as e:  # pragma: no cover - only with a broken install
    raise ImportError(
        f"{e}\nmlx_qmm's extension could not be loaded against MLX "
        f"{mx.__version__}. {_mismatch_message(mx.__version__)}"
    ) from e

__all__ = ["BUILT_AGAINST_MLX", "REBUILD_COMMAND", "check_mlx_version", "_ext"]
