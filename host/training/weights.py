"""The client's weight blob (GET_WEIGHTS) parsed into arrays, layer by layer (docs/protocol.md)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from tinysplit.core.errors import ProtocolError


@dataclass
class ClientLayerWeights:
    master_w: npt.NDArray[np.float32]  # [C, K]
    master_b: npt.NDArray[np.float32]  # [C]
    w: npt.NDArray[np.int8]  # [C, K]
    bias: npt.NDArray[np.int32]  # [C]
    w_scale: npt.NDArray[np.float32]  # [C]
    range_min: np.float32
    range_max: np.float32


def blob_size(layers: Sequence[dict[str, Any]]) -> int:
    return sum(5 * lay["out"] * lay["in"] + 12 * lay["out"] + 8 for lay in layers)


def parse_blob(blob: bytes, layers: Sequence[dict[str, Any]]) -> list[ClientLayerWeights]:
    """`layers` is the manifest's layer list ({"in": K, "out": C, ...} per layer)."""
    if len(blob) != blob_size(layers):
        raise ProtocolError(
            f"the board's weight blob has {len(blob)} bytes, the export expects "
            f"{blob_size(layers)}: the board runs another model"
        )
    out: list[ClientLayerWeights] = []
    pos = 0

    def take(dtype: type[np.generic], n: int) -> npt.NDArray[Any]:
        nonlocal pos
        arr = np.frombuffer(blob, dtype=np.dtype(dtype).newbyteorder("<"), count=n, offset=pos)
        pos += arr.nbytes
        return arr.astype(dtype)

    for lay in layers:
        c, k = int(lay["out"]), int(lay["in"])
        master_w = take(np.float32, c * k).reshape(c, k)
        master_b = take(np.float32, c)
        w = take(np.int8, c * k).reshape(c, k)
        bias = take(np.int32, c)
        w_scale = take(np.float32, c)
        rmin, rmax = take(np.float32, 2)
        out.append(ClientLayerWeights(master_w, master_b, w, bias, w_scale, rmin, rmax))
    return out


def blob_parts(ops: Sequence[Any]) -> list[tuple[str, npt.NDArray[Any]]]:
    """The weight blob of golden client ops (codegen.client_ops: FCLayer / ConvLayer, others
    skipped), part by part in the board's order: per trainable op master_w, master_b, w, bias,
    w_scale, range_min, range_max (firmware/client/weights_blob.c)."""
    parts: list[tuple[str, npt.NDArray[Any]]] = []
    for i, op in enumerate(ops):
        if not hasattr(op, "master_w"):
            continue
        parts += [
            (f"op{i}.master_w", np.asarray(op.master_w, np.float32).reshape(-1)),
            (f"op{i}.master_b", np.asarray(op.master_b, np.float32).reshape(-1)),
            (f"op{i}.w", np.asarray(op.w, np.int8).reshape(-1)),
            (f"op{i}.bias", np.asarray(op.bias, np.int32).reshape(-1)),
            (f"op{i}.w_scale", np.asarray(op.w_scale, np.float32).reshape(-1)),
            (f"op{i}.range_min", np.asarray([op.range_min], np.float32)),
            (f"op{i}.range_max", np.asarray([op.range_max], np.float32)),
        ]
    return parts


def ops_blob(ops: Sequence[Any]) -> bytes:
    """The bytes GET_WEIGHTS returns for a board holding exactly these golden ops' state."""
    return b"".join(a.astype(a.dtype.newbyteorder("<")).tobytes() for _, a in blob_parts(ops))


def first_blob_difference(blob: bytes, ops: Sequence[Any]) -> str | None:
    """None if `blob` equals ops_blob(ops), else where the first difference is, in words."""
    pos = 0
    for name, a in blob_parts(ops):
        mine = a.astype(a.dtype.newbyteorder("<")).tobytes()
        theirs = blob[pos : pos + len(mine)]
        if theirs != mine:
            got = np.frombuffer(theirs.ljust(len(mine), b"\0"), a.dtype.newbyteorder("<"))
            k = int(np.argmax(got.view(np.uint8 if a.itemsize == 1 else np.uint32)
                              != a.view(np.uint8 if a.itemsize == 1 else np.uint32)))  # fmt: skip
            return f"{name}[{k}]: board {got[k]!r}, golden {a[k]!r}"
        pos += len(mine)
    if pos != len(blob):
        return f"the board's blob has {len(blob)} bytes, the golden ops' {pos}"
    return None


#: The state image's quantization tail, per trainable op after the blob
#: (firmware/client/weights_blob.c): name, dtype, length in channels (0: one value).
_TAIL = (
    ("in_scale", np.float32, 0),
    ("in_zp", np.int32, 0),
    ("out_scale", np.float32, 0),
    ("out_zp", np.int32, 0),
    ("out_mult", np.int32, 1),
    ("out_shift", np.int32, 1),
)


def state_image(ops: Sequence[Any]) -> bytes:
    """The state image (GET_WEIGHTS' bytes: blob, then quantization tail) of a board holding
    exactly these golden ops' state; load_state_image's inverse."""
    tail = []
    for op in ops:
        if not hasattr(op, "master_w"):
            continue
        for name, dtype, per_channel in _TAIL:
            a = np.asarray(getattr(op, name), dtype=dtype).reshape(-1 if per_channel else 1)
            tail.append(a.astype(np.dtype(dtype).newbyteorder("<")).tobytes())
    return ops_blob(ops) + b"".join(tail)


def load_state_image(ops: Sequence[Any], image: bytes) -> None:
    """Sets golden client ops (as the export boots them) to a board's state image: the weight
    blob (ops_blob's order) then the quantization tail, so that the golden forward computes
    what the board computes. ProtocolError if the image is not this model's."""
    layers = [op for op in ops if hasattr(op, "master_w")]
    pos = 0

    def take(dtype: Any, n: int) -> npt.NDArray[Any]:
        nonlocal pos
        le = np.dtype(dtype).newbyteorder("<")
        if pos + n * le.itemsize > len(image):
            raise ProtocolError(
                f"the client state image has {len(image)} bytes, too few for this export's "
                "client: it is another model's"
            )
        arr = np.frombuffer(image, dtype=le, count=n, offset=pos).astype(dtype)
        pos += n * le.itemsize
        return arr

    for op in layers:
        for name, a in blob_parts([op]):
            value = take(a.dtype.type, a.size)
            old = getattr(op, name.split(".", 1)[1])
            if np.ndim(old) == 0:
                setattr(op, name.split(".", 1)[1], np.float32(value[0]))
            else:
                setattr(op, name.split(".", 1)[1], value.reshape(np.shape(old)))
    for op in layers:
        c = int(op.w_scale.size)
        for name, dtype, per_channel in _TAIL:
            value = take(dtype, c if per_channel else 1)
            if per_channel:
                setattr(op, name, value.reshape(np.shape(getattr(op, name))))
            elif dtype is np.float32:
                setattr(op, name, np.float32(value[0]))
            else:
                setattr(op, name, int(value[0]))
    if pos != len(image):
        raise ProtocolError(
            f"the client state image has {len(image)} bytes, this export's client {pos}: it "
            "is another model's"
        )
