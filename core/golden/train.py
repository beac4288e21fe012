"""One client training step for a single FC layer, in the firmware's call order.

forward of every sample (with range observation) -> per sample: ReLU mask + weight gradient
-> SGD -> range update -> re-quantization. The firmware main loop calls the C kernels in
exactly this order, so this is what a device step must reproduce bit for bit.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from .backward import fc_backward_weights
from .fully_connected import fc_forward
from .layer import FCLayer, act_min
from .optimizer import fc_requantize, sgd_step_fc
from .output_range import fc_observe_range, range_update
from .relu import relu_backward

I8 = npt.NDArray[np.int8]


def client_forward(layer: FCLayer, xs: npt.ArrayLike) -> I8:
    """Inference on a batch: xs int8 [B, K] -> ys int8 [B, C]."""
    y, _ = fc_forward(layer, np.asarray(xs, dtype=np.int8).reshape(-1, layer.in_features))
    return y


def client_train_step(
    layer: FCLayer,
    xs: npt.ArrayLike,
    grads: npt.ArrayLike,
    grad_scales: npt.ArrayLike,
    lr: float,
    *,
    update_range: bool = True,
) -> I8:
    """One minibatch step on the layer, in place. Returns the forward outputs ys [B, C].

    xs int8 [B, K]; grads int8 [B, C] with per-sample scales grad_scales float32 [B] (the
    gradient of the host's mean loss w.r.t. the outputs ys, so it already carries 1/B).
    """
    x8 = np.asarray(xs, dtype=np.int8).reshape(-1, layer.in_features)
    g8 = np.asarray(grads, dtype=np.int8).reshape(x8.shape[0], layer.out_features)
    sg = np.asarray(grad_scales, dtype=np.float32).reshape(x8.shape[0])

    bmin, bmax = np.float32(np.inf), np.float32(-np.inf)
    ys = np.zeros((x8.shape[0], layer.out_features), dtype=np.int8)
    for b in range(x8.shape[0]):
        ys[b], acc = fc_forward(layer, x8[b])
        bmin, bmax = fc_observe_range(layer, acc, bmin, bmax)
    for b in range(x8.shape[0]):
        g = relu_backward(g8[b], ys[b], act_min(layer)) if layer.relu else g8[b]
        fc_backward_weights(layer, x8[b], g, float(sg[b]))
    sgd_step_fc(layer, lr)
    if update_range:  # False only to measure what frozen export-time ranges would cost
        range_update(layer, bmin, bmax)
    fc_requantize(layer)
    return ys
