"""mlx-qmm: hand-written dense and affine-quantized matmul kernels for MLX.

``import mlx_qmm`` and call :func:`quantized_matmul` / :func:`matmul`, build
models from :mod:`mlx_qmm.nn`, swap our kernels into an existing model with
:func:`patch`, or load an mlx-lm model directory onto them with :func:`load`.
"""

from __future__ import annotations

from . import nn
from ._loader import BUILT_AGAINST_MLX
from .backend import backend_info
from .models import load
from .ops import matmul, quantized_matmul
from .patch import patch

__version__ = "0.1.0"

__all__ = [
    "BUILT_AGAINST_MLX",
    "backend_info",
    "load",
    "matmul",
    "nn",
    "patch",
    "quantized_matmul",
]
