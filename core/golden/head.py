"""The client's head of a U-shaped export (--labels client): the numpy twin of
firmware/client/head.c, operation for operation.

The head is the model's last Dense layer, kept on the board with its loss so that labels and
logits never leave it. Its input comes from the server (int8, zero point 0, one scale per
sample); its logits are float32; softmax cross-entropy runs in float32 with exp and log made of
+, -, *, / only, so that this model and the C agree bit for bit on every target.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from .fully_connected import fc_backward_input, fc_backward_weights
from .gradient import quantize_gradient
from .layer import FCLayer
from .params import requantize, sgd_step
from .quant import ts_round

F32 = npt.NDArray[np.float32]
I8 = npt.NDArray[np.int8]

# The C's constants, from the same digits (head.c).
_LOG2E = np.float32("1.442695022e+00")
_LN2_HI = np.float32("6.931457520e-01")
_LN2_LO = np.float32("1.428606765e-06")
_EXP_MIN = np.float32("-8.6e+01")
_SQRT2 = np.float32("1.414213538e+00")
_EXP_POLY = [np.float32(c) for c in (
    "1.388888923e-03", "8.333333768e-03", "4.166666791e-02", "1.666666716e-01",
    "5.000000000e-01", "1.0", "1.0",
)]  # fmt: skip
_LOG_POLY = [np.float32(c) for c in (
    "2.222222239e-01", "2.857142985e-01", "4.000000060e-01", "6.666666865e-01", "2.0",
)]  # fmt: skip


def head_exp(x: npt.ArrayLike) -> F32:
    """ts_head_exp, elementwise: exp(x) for x <= 0 (x > 0 is taken as 0), 0 below -86."""
    x32 = np.minimum(np.asarray(x, dtype=np.float32), np.float32(0.0))
    k = ts_round(x32 * _LOG2E)
    kf = k.astype(np.float32)
    r = (x32 - kf * _LN2_HI).astype(np.float32)
    r = (r - kf * _LN2_LO).astype(np.float32)
    p = np.full_like(r, _EXP_POLY[0])
    for c in _EXP_POLY[1:]:
        p = (p * r + c).astype(np.float32)
    two_k = ((k.astype(np.int64) + 127) << 23).astype(np.uint32).view(np.float32)
    out = (p * two_k).astype(np.float32)
    return np.where(x32 > _EXP_MIN, out, np.float32(0.0)).astype(np.float32)


def head_log(x: npt.ArrayLike) -> F32:
    """ts_head_log, elementwise, for x >= 1."""
    bits = np.asarray(x, dtype=np.float32).view(np.uint32)
    e = ((bits >> 23) & 0xFF).astype(np.int32) - 127
    m = ((bits & 0x007FFFFF) | 0x3F800000).astype(np.uint32).view(np.float32)
    big = m > _SQRT2
    m = np.where(big, m * np.float32(0.5), m).astype(np.float32)
    e = e + big.astype(np.int32)
    f = (m - np.float32(1.0)).astype(np.float32)
    s = (f / (np.float32(2.0) + f)).astype(np.float32)
    s2 = (s * s).astype(np.float32)
    p = np.full_like(s, _LOG_POLY[0])
    for c in _LOG_POLY[1:]:
        p = (p * s2 + c).astype(np.float32)
    ef = e.astype(np.float32)
    return (ef * _LN2_HI + (s * p + ef * _LN2_LO)).astype(np.float32)


def make_head(kernel: npt.ArrayLike, bias: npt.ArrayLike) -> FCLayer:
    """The head as export writes it, from a Dense layer's float kernel [K, C] and bias [C]:
    float32 master copy, int8 weights per output channel. Input quantization (1, 0) is a
    placeholder (each sample brings its own scale); the logits are float, no output range."""
    w = np.asarray(kernel, dtype=np.float32).T.copy()
    c, k = w.shape
    head = FCLayer(
        in_features=k, out_features=c, relu=False, in_scale=np.float32(1.0), in_zp=0,
        out_scale=np.float32(1.0), out_zp=0, w=np.zeros((c, k), np.int8),
        bias=np.zeros(c, np.int32), w_scale=np.ones(c, np.float32),
        out_mult=np.zeros(c, np.int32), out_shift=np.zeros(c, np.int32), master_w=w,
        master_b=np.asarray(bias, dtype=np.float32),
    )  # fmt: skip
    requantize(head)
    return head


def head_logits(head: FCLayer, h: npt.ArrayLike, s_h: npt.ArrayLike) -> F32:
    """Logits [B, C] of int8 activations h [B, K] with per-sample scales s_h [B]."""
    h8 = np.asarray(h, dtype=np.int8).astype(np.int64)
    acc = (h8 @ head.w.astype(np.int64).T).astype(np.int32)  # |.| < 2^31 for any K < 2^16
    sh = np.asarray(s_h, dtype=np.float32).reshape(-1, 1)
    return (acc.astype(np.float32) * (sh * head.w_scale[None, :]) + head.master_b).astype(
        np.float32
    )


def head_predict(head: FCLayer, h: npt.ArrayLike, s_h: npt.ArrayLike) -> npt.NDArray[np.int64]:
    """The board's predictions: the first largest logit."""
    return np.asarray(np.argmax(head_logits(head, h, s_h), axis=1), dtype=np.int64)


@dataclass
class HeadAnswer:
    """What HEAD_OUT carries back for a batch of samples, and the head's own view."""

    dh: I8  # [B, K] gradient of the mean loss with respect to h
    s_dh: F32  # [B]
    loss_sum: np.float32  # summed in sample order
    correct: int


def head_train(
    head: FCLayer,
    h: npt.ArrayLike,
    s_h: npt.ArrayLike,
    labels: npt.ArrayLike,
    batch: int,
    *,
    stage: bool = True,
) -> HeadAnswer:
    """ts_head_sample over samples in order: forward, loss, gradient of the mean loss of a
    `batch`-sample minibatch; stage: add the head's weight gradient (in place)."""
    h8 = np.asarray(h, dtype=np.int8)
    sh = np.asarray(s_h, dtype=np.float32).reshape(-1)
    y = np.asarray(labels, dtype=np.int64).reshape(-1)
    z = head_logits(head, h8, sh)
    n, c = z.shape
    best = np.argmax(z, axis=1)
    zmax = z[np.arange(n), best]
    e = head_exp((z - zmax[:, None]).astype(np.float32))
    total = np.zeros(n, np.float32)
    for j in range(c):  # the C's order: a running sum over classes
        total = (total + e[:, j]).astype(np.float32)
    loss = (head_log(total) - (z[np.arange(n), y] - zmax)).astype(np.float32)
    onehot = (np.arange(c)[None, :] == y[:, None]).astype(np.float32)
    dz = (((e / total[:, None]).astype(np.float32) - onehot) / np.float32(batch)).astype(np.float32)
    dh = np.zeros(h8.shape, np.int8)
    s_dh = np.zeros(n, np.float32)
    loss_sum = np.float32(0.0)
    for i in range(n):
        g, s_g = quantize_gradient(dz[i])
        dh[i], s_dh[i] = fc_backward_input(head, g, s_g)
        if stage:
            at = copy.copy(head)  # shares the gradient sums, as the C's struct copy does
            at.in_scale, at.in_zp = sh[i], 0
            fc_backward_weights(at, h8[i], g, s_g)
        loss_sum = np.float32(loss_sum + loss[i])
    return HeadAnswer(dh, s_dh, loss_sum, int(np.sum(best == y)))


def head_commit(head: FCLayer, lr: float | np.float32) -> None:
    """The head's part of COMMIT: SGD, then the int8 weights from the master copy."""
    sgd_step(head, lr)
    requantize(head)
