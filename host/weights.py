"""The client's weight blob (GET_WEIGHTS) parsed into arrays, layer by layer (docs/protocol.md)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from tinysplit.host.errors import ProtocolError


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
