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
