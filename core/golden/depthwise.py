"""DepthwiseConv2D (depth multiplier 1) forward and backward, int8 (docs/int8-conv.md),
mirroring firmware/kernels/depthwise_conv2d*.c. Filter [1, KH, KW, C]; channel c of the
output sees only channel c of the input."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from .conv import centered_input, input_grad_scale, padded, scaled_grad, taps
from .conv_layer import ConvLayer, grad_requantize, input_grad_shift, requant_output, weight_ratios
from .quant import wrap_int32

I8 = npt.NDArray[np.int8]
I32 = npt.NDArray[np.int32]


def depthwise_conv2d_forward(layer: ConvLayer, x: npt.ArrayLike) -> tuple[I8, I32]:
    """x [H, W, C] -> (y int8 [OH, OW, C], acc int32 [OH, OW, C] before requantization)."""
    xp = centered_input(layer, x)
    w = layer.w.astype(np.int64)[0]
    acc = np.zeros(layer.out_dims, dtype=np.int64)
    for ky in range(layer.kh):
        for kx in range(layer.kw):
            rows, cols = taps(layer, ky, kx)
            acc += xp[rows, cols, :] * w[ky, kx, :]
    acc32 = wrap_int32(acc + layer.bias.astype(np.int64))
    return requant_output(layer, acc32), acc32


def depthwise_conv2d_backward_weights(
    layer: ConvLayer, x: npt.ArrayLike, g: npt.ArrayLike, s_g: float | np.float32
) -> None:
    """Adds one sample's filter [1, KH, KW, C] and bias gradient, in place (as conv2d's)."""
    sg = np.float32(s_g)
    coef = sg * layer.in_scale
    gi = np.asarray(g, dtype=np.int8).astype(np.int64).reshape(layer.out_dims)
    xp = centered_input(layer, x)
    acc = np.zeros(layer.w_shape, dtype=np.int64)
    for ky in range(layer.kh):
        for kx in range(layer.kw):
            rows, cols = taps(layer, ky, kx)
            acc[0, ky, kx, :] = (gi * xp[rows, cols, :]).sum(axis=(0, 1))
    np.add(layer.grad_w, wrap_int32(acc).astype(np.float32) * coef, out=layer.grad_w)
    sb = wrap_int32(gi.sum(axis=(0, 1)))
    np.add(layer.grad_b, sb.astype(np.float32) * sg, out=layer.grad_b)


def depthwise_n_terms(layer: ConvLayer) -> int:
    """Most products one input-gradient element sums: ceil(KH/sh) * ceil(KW/sw)."""
    return (-(-layer.kh // layer.stride_h)) * (-(-layer.kw // layer.stride_w))


def depthwise_conv2d_backward_input(
    layer: ConvLayer, g: npt.ArrayLike, s_g: float | np.float32
) -> tuple[I8, np.float32]:
    """Input gradient of one sample: (gx int8 [H, W, C] in [-127, 127], s_gx)."""
    s_wmax, r = weight_ratios(layer.w_scale)
    e = input_grad_shift(depthwise_n_terms(layer))
    t = scaled_grad(np.asarray(g, np.int8).reshape(layer.out_dims), r, e)
    w = layer.w.astype(np.int64)[0]
    accp = padded(layer, np.zeros(layer.in_dims, dtype=np.int64))
    for ky in range(layer.kh):
        for kx in range(layer.kw):
            rows, cols = taps(layer, ky, kx)
            accp[rows, cols, :] += t * w[ky, kx, :]
    pt, pl = layer.pads
    h, wd = layer.in_dims[0], layer.in_dims[1]
    gx, m = grad_requantize(wrap_int32(accp[pt : pt + h, pl : pl + wd]))
    if m == 0:
        return gx, np.float32(0.0)
    return gx, input_grad_scale(s_g, s_wmax, e, m)
