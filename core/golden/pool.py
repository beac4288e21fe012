"""MaxPool2D and AveragePool2D forward and backward, int8 (docs/int8-conv.md), mirroring
firmware/kernels/max_pool2d*.c and avg_pool2d*.c. Windows are clipped to the image (TFLite
never pads a pool); input and output share one quantization."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from .conv_layer import PoolParams, grad_requantize
from .quant import wrap_int32

I8 = npt.NDArray[np.int8]
I64 = npt.NDArray[np.int64]

#: 2^-15, the scale of the avg-pool tap weights round(2^15 / count).
AVG_TAP_SCALE = np.float32(3.0517578125e-05)


def _windows(p: PoolParams) -> list[tuple[int, int, int, int, int, int]]:
    """(oy, ox, y0, y1, x0, x1) of every output, row-major."""
    return [
        (oy, ox, *p.window(oy, ox)) for oy in range(p.out_dims[0]) for ox in range(p.out_dims[1])
    ]


def max_pool2d_forward(p: PoolParams, x: npt.ArrayLike) -> I8:
    """x [H, W, C] -> y [OH, OW, C]: the maximum of each clipped window."""
    xi = np.asarray(x, dtype=np.int8).reshape(p.in_dims)
    y = np.zeros(p.out_dims, dtype=np.int8)
    for oy, ox, y0, y1, x0, x1 in _windows(p):
        y[oy, ox] = xi[y0:y1, x0:x1].reshape(-1, p.in_dims[2]).max(axis=0)
    return y


def max_pool2d_backward(
    p: PoolParams, x: npt.ArrayLike, g: npt.ArrayLike, s_g: float | np.float32
) -> tuple[I8, np.float32]:
    """Each output's gradient to the first maximum (row-major) of its window in the kept x.

    Sums that fit int8 are kept exactly (s_gx = s_g); otherwise re-quantized to [-127, 127]
    with s_gx = s_g * (m / 127).
    """
    xi = np.asarray(x, dtype=np.int8).reshape(p.in_dims)
    gi = np.asarray(g, dtype=np.int8).astype(np.int64).reshape(p.out_dims)
    c = p.in_dims[2]
    acc = np.zeros(p.in_dims, dtype=np.int64)
    ch = np.arange(c)
    for oy, ox, y0, y1, x0, x1 in _windows(p):
        win = xi[y0:y1, x0:x1].reshape(-1, c)
        first = np.argmax(win, axis=0)  # first occurrence of the maximum, row-major
        ww = x1 - x0
        np.add.at(acc, (y0 + first // ww, x0 + first % ww, ch), gi[oy, ox])
    if acc.size == 0 or (acc.min() >= -128 and acc.max() <= 127):
        return acc.astype(np.int8), np.float32(s_g)
    gx, m = grad_requantize(acc)
    return gx, np.float32(np.float32(s_g) * (np.float32(m) / np.float32(127.0)))


def _avg_round(acc: I64, count: int) -> I64:
    """TFLM: acc > 0 ? (acc + count/2) / count : (acc - count/2) / count, C division."""
    half = count // 2
    pos = (acc + half) // count
    neg = -((half - acc) // count)  # C truncation of a non-positive numerator
    return np.where(acc > 0, pos, neg)


def avg_pool2d_forward(p: PoolParams, x: npt.ArrayLike) -> I8:
    """x [H, W, C] -> y [OH, OW, C]: the rounded mean of each window's in-image taps."""
    xi = np.asarray(x, dtype=np.int8).astype(np.int64).reshape(p.in_dims)
    y = np.zeros(p.out_dims, dtype=np.int8)
    for oy, ox, y0, y1, x0, x1 in _windows(p):
        count = (y1 - y0) * (x1 - x0)
        s = xi[y0:y1, x0:x1].sum(axis=(0, 1))
        y[oy, ox] = np.clip(_avg_round(s, count), -128, 127).astype(np.int8)
    return y


def avg_tap_weight(count: int) -> int:
    """round(2^15 / count) in integers: (32768 + count / 2) / count."""
    return (32768 + count // 2) // count


def avg_pool2d_backward(
    p: PoolParams, g: npt.ArrayLike, s_g: float | np.float32
) -> tuple[I8, np.float32]:
    """Each output's gradient shared by its window's in-image taps, then re-quantized."""
    gi = np.asarray(g, dtype=np.int8).astype(np.int64).reshape(p.out_dims)
    acc = np.zeros(p.in_dims, dtype=np.int64)
    for oy, ox, y0, y1, x0, x1 in _windows(p):
        r = avg_tap_weight((y1 - y0) * (x1 - x0))
        acc[y0:y1, x0:x1] += gi[oy, ox] * r
    gx, m = grad_requantize(wrap_int32(acc))  # never wraps within ts_pool_check's limits
    if m == 0:
        return gx, np.float32(0.0)
    s = (np.float32(s_g) * AVG_TAP_SCALE) * (np.float32(m) / np.float32(127.0))
    return gx, np.float32(s)
