"""The int8 fully connected op, forward and backward, one sample at a time: the numpy twin of
firmware/kernels/fully_connected*.c (docs/int8-training.md, "Forward", "Activation range",
"Backward").

Forward is TFLite Micro's reference FullyConnectedPerChannel: int32 accumulator, gemmlowp
requantization per output channel, zero point, activation clamp. Float work in backward is
elementwise float32 only (each op rounded once, in the spec's order), so it equals the C
kernels bit for bit.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from .layer import FCLayer, act_min
from .quant import multiply_by_quantized_multiplier, ts_round, wrap_int32

I8 = npt.NDArray[np.int8]
I32 = npt.NDArray[np.int32]


def fc_forward(layer: FCLayer, x: npt.ArrayLike) -> tuple[I8, I32]:
    """y = act(requant(bias + w (x - zp_x))) for x [K] (or a batch [B, K]).

    Returns (y int8 [..., C], acc int32 [..., C]), acc before requantization.
    """
    xi = np.asarray(x, dtype=np.int8).astype(np.int64) - layer.in_zp
    # Integer matmul: exact, so its summation order does not matter. The int32 wrap is what
    # the device's 32-bit accumulator does (it never triggers for valid shapes).
    acc = wrap_int32(xi @ layer.w.astype(np.int64).T + layer.bias.astype(np.int64))
    out = multiply_by_quantized_multiplier(acc, layer.out_mult, layer.out_shift).astype(np.int64)
    out = out + layer.out_zp
    y = np.clip(out, act_min(layer), 127).astype(np.int8)
    return y, acc


def fc_observe_range(
    layer: FCLayer, acc: npt.ArrayLike, bmin: float | np.float32, bmax: float | np.float32
) -> tuple[np.float32, np.float32]:
    """Folds one sample's accumulators (int32 [C]) into the batch range (bmin, bmax).

    v = float(acc) * (s_x * s_w[c]) in float32, then ReLU when the layer has one.
    """
    lo, hi = np.float32(bmin), np.float32(bmax)
    a = np.asarray(acc, dtype=np.int32)
    if a.size == 0:
        return lo, hi
    v = a.astype(np.float32) * (layer.in_scale * layer.w_scale)
    if layer.relu:
        v = np.where(v > 0, v, np.float32(0.0)).astype(np.float32)
    # min/max do no arithmetic, so numpy's reduction order cannot change them.
    return np.float32(min(lo, v.min())), np.float32(max(hi, v.max()))


def fc_backward_weights(
    layer: FCLayer, x: npt.ArrayLike, g: npt.ArrayLike, s_g: float | np.float32
) -> None:
    """Adds one sample's gradient to layer.grad_w [C, K] and layer.grad_b [C], in place.

    x: int8 [K] the layer input; g: int8 [C] the masked output gradient, real = s_g * g.
    """
    sg = np.float32(s_g)
    coef = sg * layer.in_scale  # float32
    gi = np.asarray(g, dtype=np.int8).astype(np.int32)
    xi = np.asarray(x, dtype=np.int8).astype(np.int32) - np.int32(layer.in_zp)
    prod = gi[:, None] * xi[None, :]  # exact int32, |.| <= 128 * 255
    np.add(layer.grad_w, prod.astype(np.float32) * coef, out=layer.grad_w)
    np.add(layer.grad_b, gi.astype(np.float32) * sg, out=layer.grad_b)


def fc_backward_input(
    layer: FCLayer, g: npt.ArrayLike, s_g: float | np.float32
) -> tuple[I8, np.float32]:
    """Input gradient of one sample: (gx int8 [K] in [-127, 127], its scale s_gx)."""
    k = layer.in_features
    gi = np.asarray(g, dtype=np.int8).astype(np.int64)
    s_wmax = np.float32(0.0)
    if layer.out_features > 0:
        s_wmax = max(s_wmax, np.float32(np.max(layer.w_scale)))
    if s_wmax > 0:
        r = ts_round((layer.w_scale / s_wmax) * np.float32(32768.0)).astype(np.int64)
        t = (gi * r + 64) >> 7  # arithmetic shift (numpy, like the C, floors)
        acc = wrap_int32(t @ layer.w.astype(np.int64)).astype(np.int64)
    else:
        acc = np.zeros(k, dtype=np.int64)
    mag = np.abs(acc)
    m = int(mag.max()) if k > 0 else 0
    if m == 0:
        return np.zeros(k, dtype=np.int8), np.float32(0.0)
    q = (mag * 127 + m // 2) // m  # non-negative operands: floor == C's truncation
    gx = np.where(acc < 0, -q, q).astype(np.int8)
    s_gx = ((np.float32(s_g) * s_wmax) * np.float32(0.00390625)) * (
        np.float32(m) / np.float32(127.0)
    )
    return gx, np.float32(s_gx)
