"""The training state of every trainable op (FC, conv, depthwise): SGD, the running output
range and re-quantization (docs/int8-training.md, "Activation range" and "Optimizer step").

The numpy twin of ts_params_t's three functions, firmware/kernels/sgd.c, range_update.c and
requantize.c: one implementation for every op, as in the firmware. The only thing that depends
on the op is which weights belong to an output channel (`channel_rows`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from .conv_layer import ConvLayer, multipliers
from .layer import FCLayer
from .quant import INT32_FLOAT_LIMIT, ts_round

TrainableLayer = FCLayer | ConvLayer
F32 = npt.NDArray[np.float32]


def channel_rows(layer: TrainableLayer, w: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """w as [C, K], one row per output channel: FC [C][K] and a conv filter [Cout][KH][KW][Cin]
    own contiguous rows (TS_CHANNEL_FIRST); a depthwise filter [1][KH][KW][C] keeps the channel
    on its last axis (TS_CHANNEL_LAST), so its rows are the transposed view."""
    c = int(layer.w_scale.size)
    if isinstance(layer, ConvLayer) and layer.depthwise:
        return w.reshape(-1, c).T
    return w.reshape(c, -1)


def sgd_step(layer: TrainableLayer, lr: float | np.float32) -> None:
    """master -= lr * grad (float32), then zero the gradients (ts_sgd_step). No division by
    the batch size: the host's mean loss already carries 1/B."""
    lr32 = np.float32(lr)
    layer.master_w = (layer.master_w - lr32 * layer.grad_w).astype(np.float32)
    layer.master_b = (layer.master_b - lr32 * layer.grad_b).astype(np.float32)
    layer.grad_w = np.zeros_like(layer.grad_w)
    layer.grad_b = np.zeros_like(layer.grad_b)


def running_range(
    range_min: np.float32, range_max: np.float32, bmin: float | np.float32, bmax: float | np.float32
) -> tuple[np.float32, np.float32, np.float32, int] | None:
    """EMA (0.99) of the range and the output quantization that follows:
    (range_min, range_max, out_scale, out_zp), or None when the batch observed nothing
    (bmin > bmax, e.g. still +inf/-inf)."""
    lo, hi = np.float32(bmin), np.float32(bmax)
    if not lo <= hi:
        return None
    rmin = range_min * np.float32(0.99) + lo * np.float32(0.01)
    rmax = range_max * np.float32(0.99) + hi * np.float32(0.01)
    return range_quant(rmin, rmax)


def range_quant(
    rmin: float | np.float32, rmax: float | np.float32
) -> tuple[np.float32, np.float32, np.float32, int]:
    """(range_min, range_max, out_scale, out_zp) of an output range: the range made to hold 0
    and at least 1e-6 wide, then asymmetric int8 over it (ts_range_update's last part)."""
    rmin, rmax = np.float32(rmin), np.float32(rmax)
    rmin = min(rmin, np.float32(0.0))
    rmax = max(rmax, np.float32(0.0))
    if rmax - rmin < np.float32(1e-6):
        rmax = rmin + np.float32(1e-6)
    s_y = (rmax - rmin) / np.float32(255.0)
    zp = -128 - int(ts_round(rmin / s_y))
    return np.float32(rmin), np.float32(rmax), np.float32(s_y), min(max(zp, -128), 127)


def range_update(layer: TrainableLayer, bmin: float | np.float32, bmax: float | np.float32) -> None:
    """The running range and out_q from one batch's observed range, in place
    (ts_range_update)."""
    new = running_range(layer.range_min, layer.range_max, bmin, bmax)
    if new is not None:
        layer.range_min, layer.range_max, layer.out_scale, layer.out_zp = new


def requantize(layer: TrainableLayer) -> None:
    """w, w_scale, bias and the multipliers from the master copy and the current out_q
    (ts_requantize): per-channel symmetric max-abs, as TFLite's converter."""
    c = int(layer.w_scale.size)
    mw = channel_rows(layer, layer.master_w)
    a = np.max(np.abs(mw), axis=1) if mw.shape[1] > 0 else np.zeros(c, np.float32)
    a = a.astype(np.float32)
    s_w = np.where(a > 0, a / np.float32(127.0), np.float32(1.0)).astype(np.float32)
    q = np.clip(ts_round(mw / s_w[:, None]), -127, 127).astype(np.int8)
    w = np.empty_like(layer.w)
    channel_rows(layer, w)[...] = q
    layer.w = w
    layer.w_scale = s_w
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        b = layer.master_b / (layer.in_scale * s_w)
    # 0/0 (both scales underflowed, zero bias) has no int32 value: the C maps it to 0 too.
    b = np.where(np.isnan(b), np.float32(0.0), b).astype(np.float32)
    b = np.clip(b, -INT32_FLOAT_LIMIT, INT32_FLOAT_LIMIT).astype(np.float32)
    layer.bias = ts_round(b)
    layer.out_mult, layer.out_shift = multipliers(
        np.float32(layer.in_scale), s_w, np.float32(layer.out_scale)
    )
