"""Noise the board adds to its smashed data before it leaves (firmware/client/noise.c).

The int8 cut activations already lie clipped to the cut's running range (the quantization
saturates); to each value the board adds an integer drawn from a table of NOISE_TABLE_SIZE
quantiles of a Laplace or Gaussian distribution, in quantization steps, and saturates again:

    q' = clamp(q + table[h(key, step, position, element) >> (32 - NOISE_TABLE_BITS)], -128, 127)

`h` is a counter-based hash of the board's secret key (written into model_data.c at export,
never into a file the server reads), the request's step id, the sample's position in it and the
element: a retransmitted frame carries the same noise, every new step fresh noise, and no float
arithmetic runs on the board — the golden model and the C agree bit for bit by construction.
The scale is the distribution's scale (Laplace b, Gaussian sigma) as a fraction of the cut's
whole int8 range (255 steps).
"""

from __future__ import annotations

import math
import statistics

import numpy as np
import numpy.typing as npt

NOISE_TABLE_BITS = 10
NOISE_TABLE_SIZE = 1 << NOISE_TABLE_BITS
NOISE_KINDS = ("laplace", "gaussian")
STEPS_PER_RANGE = 255.0
MAX_NOISE_SCALE = 10.0


def noise_table(scale: float, kind: str = "laplace") -> npt.NDArray[np.int16]:
    """The NOISE_TABLE_SIZE quantiles (k + 1/2) / N of the distribution, rounded to steps."""
    if kind not in NOISE_KINDS:
        raise ValueError(f"noise kind {kind!r}: choose one of {', '.join(NOISE_KINDS)}")
    if not 0.0 <= scale <= MAX_NOISE_SCALE:
        raise ValueError(f"noise scale {scale} must be in 0..{MAX_NOISE_SCALE}")
    b = scale * STEPS_PER_RANGE
    out = np.zeros(NOISE_TABLE_SIZE, np.int16)
    for k in range(NOISE_TABLE_SIZE):
        p = (k + 0.5) / NOISE_TABLE_SIZE
        if kind == "laplace":
            v = b * math.log(2 * p) if p < 0.5 else -b * math.log(2 * (1 - p))
        else:
            v = b * statistics.NormalDist().inv_cdf(p)
        out[k] = int(np.clip(np.round(v), -32767, 32767))
    return out


def _mix32(x: npt.NDArray[np.uint32]) -> npt.NDArray[np.uint32]:
    """A 32-bit integer finalizer (xorshift-multiply): every input bit reaches every output bit."""
    x = x ^ (x >> np.uint32(16))
    x = x * np.uint32(0x7FEB352D)
    x = x ^ (x >> np.uint32(15))
    x = x * np.uint32(0x846CA68B)
    return x ^ (x >> np.uint32(16))


def noise_index(
    key: int, step: int, position: npt.ArrayLike, element: npt.ArrayLike
) -> npt.NDArray[np.uint32]:
    """Table index of each (position, element): broadcasts like numpy."""
    with np.errstate(over="ignore"):
        h = _mix32(np.asarray([(key ^ step) & 0xFFFFFFFF], dtype=np.uint32))
        h = _mix32(h ^ np.asarray(position, dtype=np.uint32))
        h = _mix32(h ^ np.asarray(element, dtype=np.uint32))
    return h >> np.uint32(32 - NOISE_TABLE_BITS)


def with_noise(
    q: npt.NDArray[np.int8], table: npt.NDArray[np.int16], key: int, step: int, first: int = 0
) -> npt.NDArray[np.int8]:
    """The board's noisy copy of cut activations q [n, cut] sent for `step`, sample i of them at
    position first + i. An all-zero table (scale 0) adds nothing."""
    q = np.asarray(q, dtype=np.int8)
    if not table.any():
        return q.copy()
    n, cut = q.shape
    idx = noise_index(key, step, np.arange(first, first + n)[:, None], np.arange(cut)[None, :])
    v = q.astype(np.int32) + table[idx].astype(np.int32)
    return np.clip(v, -128, 127).astype(np.int8)
