"""Swap mlx-qmm's kernels into an existing model: :func:`patch`."""

from __future__ import annotations

from typing import TypeVar

import mlx.nn as stock_nn

from . import nn

_REPLACEMENTS = {
    stock_nn.Linear: nn.Linear,
    stock_nn.QuantizedLinear: nn.QuantizedLinear,
    stock_nn.Embedding: nn.Embedding,
    stock_nn.QuantizedEmbedding: nn.QuantizedEmbedding,
}

ModuleT = TypeVar("ModuleT", bound=stock_nn.Module)


def patch(model: ModuleT) -> ModuleT:
    """Make a model's matrix multiplies run on mlx-qmm's kernels, in place.

    Every module whose type is exactly :class:`mlx.nn.Linear`,
    :class:`mlx.nn.QuantizedLinear`, :class:`mlx.nn.Embedding` or
    :class:`mlx.nn.QuantizedEmbedding` becomes the :mod:`mlx_qmm.nn` class of
    the same name (for the embeddings this changes ``as_linear``, the output
    projection of models with tied embeddings; the lookup stays stock's). The
    layers keep their identity and
    their arrays (nothing is copied or re-initialised), their frozen state and
    their place in the model, so references held elsewhere (optimizer state,
    tied weights) stay valid. Subclasses of the stock layers are left alone:
    they may override the forward pass.

    Args:
        model (mlx.nn.Module): The model, or a single layer.

    Returns:
        mlx.nn.Module: ``model`` itself.
    """
    for module in model.modules():
        replacement = _REPLACEMENTS.get(type(module))
        if replacement is not None:
            # Our layers subclass the stock ones and add no state, so the
            # instance can change class and keep everything it holds.
            module.__class__ = replacement
    return model


__all__ = ["patch"]
