"""Running output range of an FC layer (docs/int8-training.md, "Activation range").

Mirrors firmware/kernels/fully_connected_observe_range.c and range_update.c.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from .layer import FCLayer
from .quant import ts_round


def fc_observe_range(
    layer: FCLayer, acc: npt.ArrayLike, bmin: float | np.float32, bmax: float | np.float32
) -> tuple[np.float32, np.float32]:
    """Folds one sample's accumulators (int32 [C]) into the batch range (bmin, bmax).

    v = float(acc) * (s_x * s_w[c]) in float32, then ReLU when the layer has one.
    """
    lo, hi = np.float32(bmin), np.float32(bmax)
    a = np.asarray(acc, dtype=np.int32)
    if a.size == 0:
        return lo, hi
    v = a.astype(np.float32) * (layer.in_scale * layer.w_scale)
    if layer.relu:
        v = np.where(v > 0, v, np.float32(0.0)).astype(np.float32)
    # min/max do no arithmetic, so numpy's reduction order cannot change them.
    return np.float32(min(lo, v.min())), np.float32(max(hi, v.max()))


def running_range_update(
    range_min: np.float32, range_max: np.float32, bmin: float | np.float32, bmax: float | np.float32
) -> tuple[np.float32, np.float32, np.float32, int] | None:
    """EMA (0.99) of the range and the output quantization that follows:
    (range_min, range_max, out_scale, out_zp), or None when the batch observed nothing
    (bmin > bmax, e.g. still +inf/-inf). Shared by every layer kind."""
    lo, hi = np.float32(bmin), np.float32(bmax)
    if not lo <= hi:
        return None
    rmin = range_min * np.float32(0.99) + lo * np.float32(0.01)
    rmax = range_max * np.float32(0.99) + hi * np.float32(0.01)
    rmin = min(rmin, np.float32(0.0))
    rmax = max(rmax, np.float32(0.0))
    if rmax - rmin < np.float32(1e-6):
        rmax = rmin + np.float32(1e-6)
    s_y = (rmax - rmin) / np.float32(255.0)
    zp = -128 - int(ts_round(rmin / s_y))
    return np.float32(rmin), np.float32(rmax), np.float32(s_y), min(max(zp, -128), 127)


def range_update(layer: FCLayer, bmin: float | np.float32, bmax: float | np.float32) -> None:
    """running_range_update on an FC layer, in place."""
    new = running_range_update(layer.range_min, layer.range_max, bmin, bmax)
    if new is not None:
        layer.range_min, layer.range_max, layer.out_scale, layer.out_zp = new
