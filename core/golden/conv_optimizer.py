"""SGD, running range and re-quantization of a conv layer (docs/int8-conv.md, "Training state"),
mirroring firmware/kernels/conv_sgd.c, conv_range_update.c and conv_requantize.c.

The arithmetic is that of the FC layer (docs/int8-training.md) with one difference: a depthwise
filter [1, KH, KW, C] keeps its output channel on the last axis.
"""

from __future__ import annotations

import numpy as np

from .conv_layer import ConvLayer, multipliers
from .output_range import running_range_update
from .quant import INT32_FLOAT_LIMIT, ts_round


def conv_sgd_step(layer: ConvLayer, lr: float | np.float32) -> None:
    """master -= lr * grad (float32), then zero the gradients (no division by the batch)."""
    lr32 = np.float32(lr)
    layer.master_w = (layer.master_w - lr32 * layer.grad_w).astype(np.float32)
    layer.master_b = (layer.master_b - lr32 * layer.grad_b).astype(np.float32)
    layer.grad_w = np.zeros_like(layer.grad_w)
    layer.grad_b = np.zeros_like(layer.grad_b)


def conv_range_update(layer: ConvLayer, bmin: float | np.float32, bmax: float | np.float32) -> None:
    """running_range_update on a conv layer, in place."""
    new = running_range_update(layer.range_min, layer.range_max, bmin, bmax)
    if new is not None:
        layer.range_min, layer.range_max, layer.out_scale, layer.out_zp = new


def conv_requantize(layer: ConvLayer) -> None:
    """Filter, w_scale, bias and multipliers from the master copy and the current out_q."""
    c = layer.out_dims[2]
    # Rows = output channels: [C, K] for a conv, the transposed [K, C] view for a depthwise.
    mw = layer.master_w.reshape(-1, c).T if layer.depthwise else layer.master_w.reshape(c, -1)
    a = np.max(np.abs(mw), axis=1) if mw.shape[1] > 0 else np.zeros(c, np.float32)
    a = a.astype(np.float32)
    s_w = np.where(a > 0, a / np.float32(127.0), np.float32(1.0)).astype(np.float32)
    q = np.clip(ts_round(mw / s_w[:, None]), -127, 127).astype(np.int8)
    layer.w = np.ascontiguousarray(q.T if layer.depthwise else q).reshape(layer.w_shape)
    layer.w_scale = s_w
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        b = layer.master_b / (layer.in_scale * s_w)
    b = np.where(np.isnan(b), np.float32(0.0), b).astype(np.float32)
    b = np.clip(b, -INT32_FLOAT_LIMIT, INT32_FLOAT_LIMIT).astype(np.float32)
    layer.bias = ts_round(b)
    layer.out_mult, layer.out_shift = multipliers(layer.in_scale, s_w, layer.out_scale)
