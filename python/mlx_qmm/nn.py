"""Drop-in replacements for :class:`mlx.nn.Linear`,
:class:`mlx.nn.QuantizedLinear`, :class:`mlx.nn.Embedding` and
:class:`mlx.nn.QuantizedEmbedding` that run on mlx-qmm's kernels.

They subclass the stock layers, so constructor signatures, parameter names,
shapes, dtypes, initialisation, freezing, ``load_weights``/``save_weights`` and
``isinstance`` checks against :mod:`mlx.nn` are exactly the stock ones; only
the matrix multiplies differ: the linear layers' forward pass, with the bias
fused into the kernel, and the embeddings' ``as_linear`` (the output
projection of language models whose input and output embeddings are tied).
"""

from __future__ import annotations

from collections.abc import Callable

import mlx.core as mx
import mlx.nn as stock_nn

from .ops import matmul, quantized_matmul


class Linear(stock_nn.Linear):
    r"""Applies an affine transformation to the input: :math:`y = x W^\top + b`.

    Identical to :class:`mlx.nn.Linear` (same parameters and initialisation
    :math:`\mathcal{U}(-k, k)`, :math:`k = 1/\sqrt{D_i}`), computed by
    :func:`mlx_qmm.matmul`.

    Args:
        input_dims (int): The dimensionality of the input features.
        output_dims (int): The dimensionality of the output features.
        bias (bool, optional): If ``False`` the layer has no bias.
          Default: ``True``.
    """

    def __call__(self, x: mx.array) -> mx.array:
        return matmul(x, self["weight"], bias=self.get("bias"))

    def to_quantized(
        self,
        group_size: int | None = None,
        bits: int | None = None,
        mode: str = "affine",
        quantize_input: bool = False,
    ) -> stock_nn.Module:
        """Return a quantized approximation of this layer.

        Without ``quantize_input`` this is a :class:`mlx_qmm.nn.QuantizedLinear`;
        with it, stock :class:`mlx.nn.QQLinear`, as :class:`mlx.nn.Linear` does.
        """
        if quantize_input:
            return super().to_quantized(group_size, bits, mode, quantize_input)
        return QuantizedLinear.from_linear(self, group_size, bits, mode)


class QuantizedLinear(stock_nn.QuantizedLinear):
    """Applies an affine transformation using a quantized weight matrix.

    Identical to :class:`mlx.nn.QuantizedLinear` (parameters ``weight``,
    ``scales``, ``biases``, ``bias``, frozen at construction; ``from_linear``),
    computed by :func:`mlx_qmm.quantized_matmul` with the bias fused.

    Args:
        input_dims (int): The dimensionality of the input features.
        output_dims (int): The dimensionality of the output features.
        bias (bool, optional): If ``False`` the layer has no bias.
          Default: ``True``.
        group_size (int, optional): The group size of the quantized weight.
          Default: ``None`` (the mode's default, 64 for affine).
        bits (int, optional): The bit width of the quantized weight.
          Default: ``None`` (the mode's default, 4 for affine).
        mode (str, optional): The quantization method. Default: ``"affine"``.
    """

    def __call__(self, x: mx.array) -> mx.array:
        return quantized_matmul(
            x,
            self["weight"],
            scales=self["scales"],
            biases=self.get("biases"),
            transpose=True,
            group_size=self.group_size,
            bits=self.bits,
            mode=self.mode,
            bias=self.get("bias"),
        )


class Embedding(stock_nn.Embedding):
    """A lookup table for fixed-size embeddings.

    Identical to :class:`mlx.nn.Embedding`; :meth:`as_linear` (the output
    projection of a model with tied embeddings) is computed by
    :func:`mlx_qmm.matmul`, and :meth:`to_quantized` returns an
    :class:`mlx_qmm.nn.QuantizedEmbedding`.

    Args:
        num_embeddings (int): How many possible discrete tokens can we embed.
          Usually called the vocabulary size.
        dims (int): The dimensionality of the embeddings.
    """

    def as_linear(self, x: mx.array) -> mx.array:
        """Call the embedding layer as a linear layer: ``x @ weight.T``."""
        return matmul(x, self["weight"])

    def to_quantized(
        self,
        group_size: int | None = None,
        bits: int | None = None,
        mode: str = "affine",
        quantize_input: bool = False,
    ) -> stock_nn.Module:
        """Return a :class:`mlx_qmm.nn.QuantizedEmbedding` approximating this
        layer."""
        if quantize_input:
            raise ValueError("Quantized input is not supported.")
        return QuantizedEmbedding.from_embedding(self, group_size, bits, mode)


class QuantizedEmbedding(stock_nn.QuantizedEmbedding):
    """The same as :class:`Embedding` but with a quantized weight matrix.

    Identical to :class:`mlx.nn.QuantizedEmbedding` (parameters ``weight``,
    ``scales``, ``biases``, frozen at construction; ``from_embedding``); the
    lookup is stock's, :meth:`as_linear` is computed by
    :func:`mlx_qmm.quantized_matmul`.

    Args:
        num_embeddings (int): How many possible discrete tokens can we embed.
          Usually called the vocabulary size.
        dims (int): The dimensionality of the embeddings.
        group_size (int, optional): The group size of the quantized weight.
          Default: ``None`` (the mode's default, 64 for affine).
        bits (int, optional): The bit width of the quantized weight.
          Default: ``None`` (the mode's default, 4 for affine).
        mode (str, optional): The quantization method. Default: ``"affine"``.
    """

    def as_linear(self, x: mx.array) -> mx.array:
        """Call the embedding layer as a quantized linear layer:
        ``x @ dequantize(weight).T``."""
        return quantized_matmul(
            x,
            self["weight"],
            scales=self["scales"],
            biases=self.get("biases"),
            transpose=True,
            group_size=self.group_size,
            bits=self.bits,
            mode=self.mode,
        )


def quantize(
    model: stock_nn.Module,
    group_size: int | None = None,
    bits: int | None = None,
    *,
    mode: str = "affine",
    quantize_input: bool = False,
    class_predicate: Callable[[str, stock_nn.Module], bool | dict] | None = None,
) -> None:
    """Quantize a model's layers in place, onto mlx-qmm's kernels.

    :func:`mlx.nn.quantize` followed by :func:`mlx_qmm.patch`: every layer
    with a ``to_quantized`` method (or those ``class_predicate`` selects) is
    quantized, and the model's linear and embedding layers (quantized or not)
    run on our kernels. ``class_predicate`` may return a dict of parameters for
    ``to_quantized`` per layer (as mlx-lm's loader does for mixed-precision
    checkpoints).

    Args:
        model (mlx.nn.Module): The model to quantize.
        group_size (int, optional): The quantization group size.
          Default: ``None``.
        bits (int, optional): The bits per weight. Default: ``None``.
        mode (str): The quantization method. Default: ``"affine"``.
        quantize_input (bool): Quantize activations too (stock
          :class:`mlx.nn.QQLinear`, ``"nvfp4"``/``"mxfp8"`` only).
          Default: ``False``.
        class_predicate (Callable, optional): As in :func:`mlx.nn.quantize`.
    """
    from .patch import patch

    stock_nn.quantize(
        model,
        group_size,
        bits,
        mode=mode,
        quantize_input=quantize_input,
        class_predicate=class_predicate,
    )
    patch(model)


__all__ = ["Embedding", "Linear", "QuantizedEmbedding", "QuantizedLinear", "quantize"]
