"""The client's op table as the golden model sees it: one value per op from the model input to
the cut (FC and conv layers carry their own quantization and training state; pools and reshapes
carry the quantization they pass through). Codegen builds these from a Keras model; the golden
step (step.py) and the firmware's op table (firmware/client/model_ops.c) walk the same list.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from tinysplit.core.errors import UnsupportedLayer

from .conv_layer import ConvLayer, PoolParams
from .layer import FCLayer


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
