"""SGD step and re-quantization of an FC layer (docs/int8-training.md, "Optimizer step").

Mirrors firmware/kernels/sgd.c and fully_connected_requantize.c.
"""

from __future__ import annotations

import numpy as np

from .layer import FCLayer
from .quant import INT32_FLOAT_LIMIT, quantize_multiplier, ts_round


def sgd_step_fc(layer: FCLayer, lr: float) -> None:
    """master -= lr * grad (float32), then zero the gradients. No division by the batch size:
    the host's mean loss already carries 1/B."""
    lr32 = np.float32(lr)
    layer.master_w = (layer.master_w - lr32 * layer.grad_w).astype(np.float32)
    layer.master_b = (layer.master_b - lr32 * layer.grad_b).astype(np.float32)
    layer.grad_w = np.zeros_like(layer.grad_w)
    layer.grad_b = np.zeros_like(layer.grad_b)


def fc_requantize(layer: FCLayer) -> None:
    """w, w_scale, bias and the multipliers from the master copy and the current out_q."""
    c = layer.out_features
    a = np.max(np.abs(layer.master_w), axis=1) if layer.in_features > 0 else np.zeros(c)
    a = a.astype(np.float32)
    s_w = np.where(a > 0, a / np.float32(127.0), np.float32(1.0)).astype(np.float32)
    q = ts_round(layer.master_w / s_w[:, None])
    layer.w = np.clip(q, -127, 127).astype(np.int8)
    layer.w_scale = s_w
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        b = layer.master_b / (layer.in_scale * s_w)
    # 0/0 (both scales underflowed, zero bias) has no int32 value: the C maps it to 0 too.
    b = np.where(np.isnan(b), np.float32(0.0), b).astype(np.float32)
    b = np.clip(b, -INT32_FLOAT_LIMIT, INT32_FLOAT_LIMIT).astype(np.float32)
    layer.bias = ts_round(b)
    mult = np.zeros(c, dtype=np.int32)
    shift = np.zeros(c, dtype=np.int32)
    for i in range(c):
        mult[i], shift[i] = quantize_multiplier(
            float(layer.in_scale) * float(s_w[i]) / float(layer.out_scale)
        )
    layer.out_mult, layer.out_shift = mult, shift
