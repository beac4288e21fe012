"""Conv2D forward and backward, int8 (docs/int8-conv.md), mirroring firmware/kernels/conv2d*.c.

Integer sums run in int64 numpy (exact, so their order does not matter) and are then wrapped
to int32 the way the device's 32-bit accumulators wrap; every float operation is elementwise
float32 in the spec's order.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from .conv_layer import (
    ConvLayer,
    grad_requantize,
    input_grad_shift,
    observe,
    requant_output,
    weight_ratios,
)
from .quant import wrap_int32

I8 = npt.NDArray[np.int8]
I32 = npt.NDArray[np.int32]
I64 = npt.NDArray[np.int64]


def padded(layer: ConvLayer, a: npt.NDArray[np.int64]) -> I64:
    """a [H, W, C] placed in a zero array big enough for every window (top/left pads first)."""
    (h, w, c), (oh, ow, _) = layer.in_dims, layer.out_dims
    pt, pl = layer.pads
    hp = max(pt + h, (oh - 1) * layer.stride_h + layer.kh)
    wp = max(pl + w, (ow - 1) * layer.stride_w + layer.kw)
    out = np.zeros((hp, wp, c), dtype=np.int64)
    out[pt : pt + h, pl : pl + w] = a
    return out


def taps(layer: ConvLayer, ky: int, kx: int) -> tuple[slice, slice]:
    """The padded-input rows and columns filter tap (ky, kx) sees, one per output position."""
    oh, ow = layer.out_dims[0], layer.out_dims[1]
    return (
        slice(ky, ky + (oh - 1) * layer.stride_h + 1, layer.stride_h),
        slice(kx, kx + (ow - 1) * layer.stride_w + 1, layer.stride_w),
    )


def centered_input(layer: ConvLayer, x: npt.ArrayLike) -> I64:
    """(x - zp_x) zero-padded: a padded tap is a real 0, so it adds nothing (TFLM skips it)."""
    xi = np.asarray(x, dtype=np.int8).astype(np.int64).reshape(layer.in_dims)
    return padded(layer, xi - layer.in_zp)


def conv2d_forward(layer: ConvLayer, x: npt.ArrayLike) -> tuple[I8, I32]:
    """x [H, W, Cin] -> (y int8 [OH, OW, Cout], acc int32 [OH, OW, Cout] before requant)."""
    xp = centered_input(layer, x)
    w = layer.w.astype(np.int64)
    acc = np.zeros(layer.out_dims, dtype=np.int64)
    for ky in range(layer.kh):
        for kx in range(layer.kw):
            rows, cols = taps(layer, ky, kx)
            acc += xp[rows, cols, :] @ w[:, ky, kx, :].T
    acc32 = wrap_int32(acc + layer.bias.astype(np.int64))
    return requant_output(layer, acc32), acc32


def conv_observe_range(
    layer: ConvLayer, acc: npt.ArrayLike, bmin: float | np.float32, bmax: float | np.float32
) -> tuple[np.float32, np.float32]:
    """The range observation the forward kernels fold in: v = acc * (s_x * s_w[c]), act, min/max.

    Works for both filter layouts (acc [..., C])."""
    a = np.asarray(acc, dtype=np.int32)
    v = (a.astype(np.float32) * (layer.in_scale * layer.w_scale)).astype(np.float32)
    return observe(layer.act, v, np.float32(bmin), np.float32(bmax))


def conv2d_backward_weights(
    layer: ConvLayer, x: npt.ArrayLike, g: npt.ArrayLike, s_g: float | np.float32
) -> None:
    """Adds one sample's filter and bias gradient to layer.grad_w / grad_b, in place.

    g int8 [OH, OW, Cout] (masked), real = s_g * g. Per filter element an int32 sum over the
    output positions, then grad_w += (float)sum * (s_g * s_x).
    """
    sg = np.float32(s_g)
    coef = sg * layer.in_scale
    gi = np.asarray(g, dtype=np.int8).astype(np.int64).reshape(layer.out_dims)
    xp = centered_input(layer, x)
    acc = np.zeros(layer.w_shape, dtype=np.int64)
    for ky in range(layer.kh):
        for kx in range(layer.kw):
            rows, cols = taps(layer, ky, kx)
            acc[:, ky, kx, :] = np.einsum("abo,abi->oi", gi, xp[rows, cols, :])
    acc32 = wrap_int32(acc)
    np.add(layer.grad_w, acc32.astype(np.float32) * coef, out=layer.grad_w)
    sb = wrap_int32(gi.sum(axis=(0, 1)))
    np.add(layer.grad_b, sb.astype(np.float32) * sg, out=layer.grad_b)


def scaled_grad(g: npt.ArrayLike, r: I64, e: int) -> I64:
    """t = (g * r[c] + 2^(6+e)) >> (7+e): the gradient with the weight-scale ratio folded in."""
    gi = np.asarray(g, dtype=np.int8).astype(np.int64)
    return (gi * r + (1 << (6 + e))) >> (7 + e)  # arithmetic shift floors, as the C's


def input_grad_scale(s_g: float | np.float32, s_wmax: np.float32, e: int, m: int) -> np.float32:
    """s_gx = ((s_g * s_wmax) * 2^(e-8)) * ((float)m / 127)."""
    p = np.float32(2.0 ** (e - 8))  # exact: a power of two
    return np.float32(((np.float32(s_g) * s_wmax) * p) * (np.float32(m) / np.float32(127.0)))


def conv2d_n_terms(layer: ConvLayer) -> int:
    """Most products one input-gradient element sums: Cout * ceil(KH/sh) * ceil(KW/sw)."""
    ny = -(-layer.kh // layer.stride_h)
    nx = -(-layer.kw // layer.stride_w)
    return layer.out_dims[2] * ny * nx


def conv2d_backward_input(
    layer: ConvLayer, g: npt.ArrayLike, s_g: float | np.float32
) -> tuple[I8, np.float32]:
    """Input gradient of one sample: (gx int8 [H, W, Cin] in [-127, 127], s_gx)."""
    s_wmax, r = weight_ratios(layer.w_scale)
    e = input_grad_shift(conv2d_n_terms(layer))
    t = scaled_grad(np.asarray(g, np.int8).reshape(layer.out_dims), r, e)
    w = layer.w.astype(np.int64)
    accp = padded(layer, np.zeros(layer.in_dims, dtype=np.int64))
    for ky in range(layer.kh):
        for kx in range(layer.kw):
            rows, cols = taps(layer, ky, kx)
            accp[rows, cols, :] += t @ w[:, ky, kx, :]
    pt, pl = layer.pads
    h, wd = layer.in_dims[0], layer.in_dims[1]
    acc = wrap_int32(accp[pt : pt + h, pl : pl + wd])
    gx, m = grad_requantize(acc)
    if m == 0:
        return gx, np.float32(0.0)
    return gx, input_grad_scale(s_g, s_wmax, e, m)
