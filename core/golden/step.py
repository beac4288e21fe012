"""The golden model of a whole client training step over the op table (FC, conv, depthwise
conv, pools, reshapes): the numpy twin of firmware/client/train.c, call for call.

Per minibatch: forward of every sample with range observation -> per sample, ops from the cut
back to the first trainable op: activation mask, weight gradient, input gradient (pools route
it) -> per trainable op: SGD, running-range update -> each trainable op's input quantization
becomes the previous trainable op's output quantization -> re-quantization. The firmware keeps
or recomputes each op's output (docs/model-format.md); both give the same bytes, so this model
simply keeps them all.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from .conv_layer import ConvLayer
from .layer import FCLayer
from .ops import ClientOp, Range, op_def, op_dims, size, trainable
from .params import range_update, requantize, sgd_step

I8 = npt.NDArray[np.int8]


def _forward(ops: Sequence[ClientOp], x: npt.ArrayLike, ranges: list[Range] | None) -> list[I8]:
    """Outputs of every op (flat int8) for one sample; folds observed ranges into `ranges`."""
    outs: list[I8] = []
    y = np.asarray(x, dtype=np.int8).reshape(-1)
    for i, op in enumerate(ops):
        y, rng = op_def(op).forward(op, y, None if ranges is None else ranges[i])
        if ranges is not None and rng is not None:
            ranges[i] = rng
        y = np.asarray(y, dtype=np.int8).reshape(-1)
        outs.append(y)
    return outs


def ops_outputs(ops: Sequence[ClientOp], x: npt.ArrayLike) -> list[I8]:
    """Every op's output (flat int8) of one sample's inference."""
    return _forward(ops, x, None)


def ops_forward(ops: Sequence[ClientOp], xs: npt.ArrayLike) -> I8:
    """Inference on a batch: xs int8 [B, input] -> cut outputs int8 [B, cut]."""
    x8 = np.asarray(xs, dtype=np.int8)
    x8 = x8.reshape(x8.shape[0], -1)
    return np.stack([_forward(ops, x, None)[-1] for x in x8]).astype(np.int8)


def _backward(ops: Sequence[ClientOp], x: I8, outs: list[I8], g: I8, s: np.float32) -> None:
    """One sample's backward from its cut gradient (g, s), adding to the weight gradients."""
    first = next(i for i, op in enumerate(ops) if trainable(op))
    for i in range(len(ops) - 1, first - 1, -1):
        op = ops[i]
        x_in = x if i == 0 else outs[i - 1]
        gx, s = op_def(op).backward(op, x_in, outs[i], g, np.float32(s), i > first)
        if gx is None:
            break
        g = np.asarray(gx, dtype=np.int8).reshape(-1)
        s = np.float32(s)


def ops_train_step(
    ops: Sequence[ClientOp],
    xs: npt.ArrayLike,
    grads: npt.ArrayLike,
    grad_scales: npt.ArrayLike,
    lr: float,
    *,
    update_range: bool = True,
) -> I8:
    """One minibatch step on the client ops, in place. Returns the cut outputs [B, cut].

    xs int8 [B, input]; grads int8 [B, cut] with per-sample scales float32 [B] (the gradient of
    the host's mean loss, so it already carries 1/B).
    """
    x8 = np.asarray(xs, dtype=np.int8)
    x8 = x8.reshape(x8.shape[0], -1)
    g8 = np.asarray(grads, dtype=np.int8).reshape(x8.shape[0], -1)
    sg = np.asarray(grad_scales, dtype=np.float32).reshape(x8.shape[0])
    inf = np.float32(np.inf)
    ranges = [(inf, -inf) for _ in ops]
    outs = [_forward(ops, x, ranges) for x in x8]
    for b in range(x8.shape[0]):
        _backward(ops, x8[b], outs[b], g8[b], sg[b])
    layers = [(i, op) for i, op in enumerate(ops) if isinstance(op, FCLayer | ConvLayer)]
    for i, op in layers:
        sgd_step(op, lr)
        if update_range:  # False only to measure what frozen export-time ranges would cost
            range_update(op, *ranges[i])
    for (_, prev), (_, op) in itertools.pairwise(layers):
        op.in_scale, op.in_zp = np.float32(prev.out_scale), int(prev.out_zp)
    for _, op in layers:
        requantize(op)
    return np.stack([o[-1] for o in outs]).astype(np.int8)


def cut_quant(ops: Sequence[ClientOp]) -> tuple[np.float32, int, np.float32, np.float32]:
    """(scale, zero point, range_min, range_max) of the cut: the last trainable op's."""
    op = next(op for op in reversed(ops) if isinstance(op, FCLayer | ConvLayer))
    return (
        np.float32(op.out_scale),
        int(op.out_zp),
        np.float32(op.range_min),
        np.float32(op.range_max),
    )


def forward(ops: Sequence[ClientOp], x: npt.ArrayLike) -> npt.NDArray[np.int8]:
    """One sample through the golden ops (the firmware's forward): int8 in, int8 cut out,
    both flat."""
    y = _forward(ops, x, None)[-1]
    assert y.size == size(op_dims(ops[-1])[1])
    return y
