"""Language models from mlx-lm on mlx-qmm's kernels: :func:`load`.

mlx-lm is optional (``pip install "mlx-qmm[lm]"``); it is imported only when
:func:`load` is called.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mlx.nn as stock_nn

from .patch import patch

_MISSING_MLX_LM = (
    "mlx_qmm.load needs mlx-lm, which is not installed: "
    'pip install "mlx-qmm[lm]" (or the "test" extra)'
)


def load(
    path: str | Path,
    *,
    tokenizer_config: dict[str, Any] | None = None,
    model_config: dict[str, Any] | None = None,
    adapter_path: str | None = None,
    lazy: bool = False,
) -> tuple[stock_nn.Module, Any]:
    """Load an mlx-lm model directory with its layers on mlx-qmm's kernels.

    The directory is one that ``mlx_lm.convert`` writes (``config.json``,
    with a ``quantization`` entry for a quantized model; ``model*.safetensors``;
    the tokenizer's files). :func:`mlx_lm.load` builds the model exactly as
    it would without mlx-qmm (same classes, per-layer quantization, weights
    and tokenizer), then :func:`mlx_qmm.patch` moves its linear and embedding
    layers onto our kernels in place. The weights are not copied or changed:
    saving the model with mlx-lm writes the same checkpoint.

    Args:
        path (str or Path): The model directory. Anything else
          :func:`mlx_lm.load` accepts works too (it downloads a Hugging Face
          repository name that is not a local directory).
        tokenizer_config (dict, optional): Extra arguments for the tokenizer.
          Default: ``None``.
        model_config (dict, optional): Entries that override ``config.json``.
          Default: ``None``.
        adapter_path (str, optional): LoRA adapters to apply, as in
          :func:`mlx_lm.load`. Default: ``None``.
        lazy (bool): If ``True`` the weights are loaded when first used.
          Default: ``False``.

    Returns:
        tuple(mlx.nn.Module, mlx_lm.tokenizer_utils.TokenizerWrapper): The
        patched model (in evaluation mode) and its tokenizer.

    Raises:
        ImportError: mlx-lm is not installed.
    """
    try:
        import mlx_lm
    except ImportError as error:
        raise ImportError(_MISSING_MLX_LM) from error

    model, tokenizer = mlx_lm.load(
        str(path),
        tokenizer_config=tokenizer_config,
        model_config=model_config,
        adapter_path=adapter_path,
        lazy=lazy,
    )
    return patch(model), tokenizer


__all__ = ["load"]
