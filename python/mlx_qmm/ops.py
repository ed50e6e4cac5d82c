"""The public ops: thin, documented wrappers over the C++ ops in ``_ext``."""

from __future__ import annotations

import mlx.core as mx

from ._loader import _ext

# Taken at import, before anyone (mlx_qmm.patch included) can replace it, so
# that routing non-affine modes to stock MLX can never recurse into us.
_STOCK_QUANTIZED_MATMUL = mx.quantized_matmul

StreamOrDevice = mx.Stream | mx.Device | None


def quantized_matmul(
    x: mx.array,
    w: mx.array,
    /,
    scales: mx.array,
    biases: mx.array | None = None,
    transpose: bool = True,
    group_size: int | None = None,
    bits: int | None = None,
    mode: str = "affine",
    *,
    bias: mx.array | None = None,
    stream: StreamOrDevice = None,
) -> mx.array:
    """Perform the matrix multiplication with the quantized matrix ``w``.

    A drop-in for :func:`mlx.core.quantized_matmul`: the same semantics,
    defaults, shapes, broadcasting and errors, computed by mlx-qmm's own
    kernels for ``mode="affine"``, plus an optional ``bias`` added in the
    kernel's epilogue. Other modes are served by stock MLX.

    Args:
        x (array): Input array.
        w (array): Quantized matrix packed in unsigned integers, as returned by
          :func:`mlx.core.quantize`.
        scales (array): The scales to use per ``group_size`` elements of ``w``.
        biases (array, optional): The biases to use per ``group_size`` elements
          of ``w``. Required for ``mode="affine"``. Default: ``None``.
        transpose (bool, optional): Whether to multiply with the transposed
          ``w`` (``x @ w.T``) or not (``x @ w``). Default: ``True``.
        group_size (int, optional): The size of the group in ``w`` that shares a
          scale and bias: 32, 64 or 128. Default: ``64``.
        bits (int, optional): The number of bits occupied by each element of
          ``w``: 1, 2, 3, 4, 5, 6 or 8. Default: ``4``.
        mode (str, optional): The quantization mode. Default: ``"affine"``.
        bias (array, optional): Added to every row of the result, shape
          ``(N,)``. Default: ``None``.
        stream (Stream or Device, optional): Where to run. Default: ``None``.

    Returns:
        array: ``x @ dequantize(w).T + bias`` (or ``x @ dequantize(w) + bias``).
    """
    if mode != "affine":
        out = _STOCK_QUANTIZED_MATMUL(
            x,
            w,
            scales,
            biases,
            transpose,
            group_size,
            bits,
            mode,
            stream=stream,
        )
        if bias is None:
            return out
        if not isinstance(bias, mx.array) or bias.shape != (out.shape[-1],):
            shape = getattr(bias, "shape", type(bias).__name__)
            raise ValueError(
                f"[quantized_matmul] bias must have shape ({out.shape[-1]},), "
                f"one value per output column, but has shape {shape}."
            )
        return mx.add(out, bias, stream=stream)
    return _ext.quantized_matmul(
        x,
        w,
        scales,
        biases,
        transpose,
        group_size,
        bits,
        mode,
        bias=bias,
        stream=stream,
    )


def matmul(
    x: mx.array,
    w: mx.array,
    /,
    transpose: bool = True,
    *,
    bias: mx.array | None = None,
    stream: StreamOrDevice = None,
) -> mx.array:
    """Dense matrix multiplication with an optional fused bias.

    Computes ``x @ w.T + bias`` (``transpose=True``) or ``x @ w + bias``, in
    float32, float16 or bfloat16 (float64 on the CPU), with the batching and
    type promotion of :func:`mlx.core.matmul`.

    Args:
        x (array): Input array of shape ``(..., M, K)`` or ``(K,)``.
        w (array): Weight of shape ``(..., N, K)`` (``transpose=True``) or
          ``(..., K, N)``.
        transpose (bool, optional): Whether to multiply with ``w.T``.
          Default: ``True``.
        bias (array, optional): Added to every row of the result, shape
          ``(N,)``. Default: ``None``.
        stream (Stream or Device, optional): Where to run. Default: ``None``.

    Returns:
        array: The product, with ``bias`` added.
    """
    return _ext.matmul(x, w, transpose, bias=bias, stream=stream)
