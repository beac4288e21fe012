"""The client's op table as the golden model sees it: one value per op from the model input to
the cut (FC and conv layers carry their own quantization and training state; pools and reshapes
carry the quantization they pass through). Codegen builds these from a Keras model; the golden
step (step.py) and the firmware (firmware/client/train.c) walk the same list.

`OPS` is the op registry, the twin of the firmware's (firmware/client/ops.c): per kind, its
name in the firmware's op table and its forward and backward on one sample. A new op adds its
golden kernels (a module of its own), a row here and the firmware's row.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from tinysplit.core.errors import UnsupportedLayer

from .conv import conv2d_backward_input, conv2d_backward_weights, conv2d_forward, conv_observe_range
from .conv_layer import ConvLayer, PoolParams, act_backward
from .depthwise import (
    depthwise_conv2d_backward_input,
    depthwise_conv2d_backward_weights,
    depthwise_conv2d_forward,
)
from .fully_connected import fc_backward_input, fc_backward_weights, fc_forward, fc_observe_range
from .layer import FCLayer
from .pool import avg_pool2d_backward, avg_pool2d_forward, max_pool2d_backward, max_pool2d_forward

I8 = npt.NDArray[np.int8]
Range = tuple[np.float32, np.float32]


@dataclass(frozen=True)
class PoolOp:
    """MAX_POOL_2D / AVERAGE_POOL_2D: input and output share (scale, zp)."""

    kind: str  # "max" | "avg"
    params: PoolParams
    scale: np.float32
    zp: int


@dataclass(frozen=True)
class ReshapeOp:
    """RESHAPE / EXPAND_DIMS / SQUEEZE: the int8 bytes stay as they are."""

    op: str
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    scale: np.float32
    zp: int


ClientOp = FCLayer | ConvLayer | PoolOp | ReshapeOp


def op_kind(op: ClientOp) -> str:
    """fc | conv | depthwise | max_pool | avg_pool | reshape."""
    if isinstance(op, FCLayer):
        return "fc"
    if isinstance(op, ConvLayer):
        return "depthwise" if op.depthwise else "conv"
    if isinstance(op, PoolOp):
        return f"{op.kind}_pool"
    return "reshape"


def _hwc(shape: Sequence[int]) -> tuple[int, int, int]:
    """A sample shape as (h, w, c): rank 1 -> (1, 1, n), rank 2 (W, C) -> (1, W, C)."""
    s = [int(d) for d in shape]
    while len(s) < 3:
        s.insert(0, 1)
    if len(s) > 3:
        raise UnsupportedLayer(f"a client tensor of rank {len(s)} ({s}); the client runs NHWC")
    return s[0], s[1], s[2]


def op_dims(op: ClientOp) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    """(input dims, output dims) as (h, w, c); an FC layer is (1, 1, K) -> (1, 1, C)."""
    if isinstance(op, FCLayer):
        return (1, 1, op.in_features), (1, 1, op.out_features)
    if isinstance(op, ConvLayer):
        return op.in_dims, op.out_dims
    if isinstance(op, PoolOp):
        return op.params.in_dims, op.params.out_dims
    return _hwc(op.in_shape), _hwc(op.out_shape)


def size(dims: tuple[int, int, int]) -> int:
    return dims[0] * dims[1] * dims[2]


def trainable(op: ClientOp) -> bool:
    return isinstance(op, FCLayer | ConvLayer)


def in_quant(op: ClientOp) -> tuple[np.float32, int]:
    if isinstance(op, FCLayer | ConvLayer):
        return np.float32(op.in_scale), int(op.in_zp)
    return np.float32(op.scale), int(op.zp)


def out_quant(op: ClientOp) -> tuple[np.float32, int]:
    if isinstance(op, FCLayer | ConvLayer):
        return np.float32(op.out_scale), int(op.out_zp)
    return np.float32(op.scale), int(op.zp)


# ---- the op registry --------------------------------------------------------------------------

#: forward(op, x, rng) -> (y, rng): one sample, x and y flat int8; rng is the minibatch's
#: observed output range (bmin, bmax) to fold this sample into, or None (not observed).
Forward = Callable[[Any, I8, Range | None], tuple[I8, Range | None]]
#: backward(op, x, y, g, s_g, need_gx) -> (gx, s_gx): one sample from its output gradient g
#: (scale s_g), kept input x and output y, all flat; adds the weight gradient of a trainable
#: op; gx is None when need_gx is False.
Backward = Callable[[Any, I8, I8, I8, np.float32, bool], tuple[I8 | None, np.float32]]


@dataclass(frozen=True)
class OpDef:
    """One row of the registry."""

    c_kind: str  # the firmware's ts_op_kind_t
    forward: Forward
    backward: Backward


def _fc_forward(op: FCLayer, x: I8, rng: Range | None) -> tuple[I8, Range | None]:
    y, acc = fc_forward(op, x)
    return y, None if rng is None else fc_observe_range(op, acc, *rng)


def _fc_backward(
    op: FCLayer, x: I8, y: I8, g: I8, s: np.float32, need_gx: bool
) -> tuple[I8 | None, np.float32]:
    g = act_backward(1 if op.relu else 0, op.out_scale, op.out_zp, g, y)
    fc_backward_weights(op, x, g, float(s))
    return fc_backward_input(op, g, s) if need_gx else (None, s)


def _conv_forward(op: ConvLayer, x: I8, rng: Range | None) -> tuple[I8, Range | None]:
    fwd = depthwise_conv2d_forward if op.depthwise else conv2d_forward
    y, acc = fwd(op, x.reshape(op.in_dims))
    return y.reshape(-1), None if rng is None else conv_observe_range(op, acc, *rng)


def _conv_backward(
    op: ConvLayer, x: I8, y: I8, g: I8, s: np.float32, need_gx: bool
) -> tuple[I8 | None, np.float32]:
    g = act_backward(op.act, op.out_scale, op.out_zp, g, y).reshape(op.out_dims)
    if op.depthwise:
        depthwise_conv2d_backward_weights(op, x.reshape(op.in_dims), g, s)
        return depthwise_conv2d_backward_input(op, g, s) if need_gx else (None, s)
    conv2d_backward_weights(op, x.reshape(op.in_dims), g, s)
    return conv2d_backward_input(op, g, s) if need_gx else (None, s)


def _pool_forward(op: PoolOp, x: I8, rng: Range | None) -> tuple[I8, Range | None]:
    pool = max_pool2d_forward if op.kind == "max" else avg_pool2d_forward
    return pool(op.params, x.reshape(op.params.in_dims)).reshape(-1), rng


def _pool_backward(
    op: PoolOp, x: I8, y: I8, g: I8, s: np.float32, need_gx: bool
) -> tuple[I8 | None, np.float32]:
    g3 = g.reshape(op.params.out_dims)
    if op.kind == "max":
        return max_pool2d_backward(op.params, x.reshape(op.params.in_dims), g3, s)
    return avg_pool2d_backward(op.params, g3, s)


def _reshape_forward(op: ReshapeOp, x: I8, rng: Range | None) -> tuple[I8, Range | None]:
    return x, rng


def _reshape_backward(
    op: ReshapeOp, x: I8, y: I8, g: I8, s: np.float32, need_gx: bool
) -> tuple[I8 | None, np.float32]:
    return g, s


OPS: dict[str, OpDef] = {
    "fc": OpDef("TS_OP_FC", _fc_forward, _fc_backward),
    "conv": OpDef("TS_OP_CONV", _conv_forward, _conv_backward),
    "depthwise": OpDef("TS_OP_DEPTHWISE", _conv_forward, _conv_backward),
    "max_pool": OpDef("TS_OP_MAX_POOL", _pool_forward, _pool_backward),
    "avg_pool": OpDef("TS_OP_AVG_POOL", _pool_forward, _pool_backward),
    "reshape": OpDef("TS_OP_RESHAPE", _reshape_forward, _reshape_backward),
}


def op_def(op: ClientOp) -> OpDef:
    """The registry row of op."""
    return OPS[op_kind(op)]
