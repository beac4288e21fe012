"""Random layers and a bit-exact comparison that names the first mismatch."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from tinysplit.core.golden import FCLayer


def _bits(a: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """Floats as their bit patterns (so -0.0 != 0.0 and NaN == NaN of the same bits)."""
    if a.dtype == np.float32:
        return a.view(np.uint32)
    if a.dtype == np.float64:
        return a.view(np.uint64)
    return a


def assert_bitexact(what: str, c: Any, golden: Any, ctx: str = "") -> None:
    """Fails with the first differing index, the C value and the golden value."""
    ca = np.atleast_1d(np.asarray(c))
    ga = np.atleast_1d(np.asarray(golden))
    assert ca.shape == ga.shape, f"{what}: C shape {ca.shape} != golden shape {ga.shape} {ctx}"
    assert ca.dtype == ga.dtype, f"{what}: C dtype {ca.dtype} != golden dtype {ga.dtype} {ctx}"
    diff = _bits(ca) != _bits(ga)
    if np.any(diff):
        idx = tuple(int(i) for i in np.argwhere(diff)[0])
        raise AssertionError(
            f"{what}: {int(diff.sum())} mismatches; first at index {idx}: "
            f"C={ca[idx]!r} golden={ga[idx]!r} (shape {ca.shape}) {ctx}"
        )


LAYER_FIELDS = (
    "in_features", "out_features", "relu", "in_scale", "in_zp", "out_scale", "out_zp", "w",
    "bias", "w_scale", "out_mult", "out_shift", "master_w", "master_b", "grad_w", "grad_b",
    "range_min", "range_max",
)  # fmt: skip


def assert_layers_equal(c: FCLayer, g: FCLayer, ctx: str = "") -> None:
    """Every field of two layers, bit for bit."""
    for name in LAYER_FIELDS:
        cv, gv = getattr(c, name), getattr(g, name)
        if isinstance(gv, np.ndarray | np.floating):
            assert_bitexact(name, np.asarray(cv), np.asarray(gv), ctx)
        else:
            assert cv == gv, f"{name}: C={cv!r} golden={gv!r} {ctx}"


def log_uniform(rng: np.random.Generator, lo: float, hi: float, size: Any = None) -> Any:
    """10**uniform(lo, hi) as float32: scales spread over several decades."""
    return np.float32(10.0) ** np.asarray(rng.uniform(lo, hi, size), dtype=np.float32)


def random_shape(rng: np.random.Generator, i: int) -> tuple[int, int]:
    """(K, C) in 1..300, with the corner shapes first and many odd sizes."""
    corners = [(1, 1), (1, 300), (300, 1), (300, 300), (3, 7), (255, 129)]
    if i < len(corners):
        return corners[i]
    return int(rng.integers(1, 301)), int(rng.integers(1, 301))


def random_layer(
    rng: np.random.Generator, k: int, c: int, relu: bool | None = None, well_scaled: bool = False
) -> FCLayer:
    """An exported-looking layer with random scales over decades and random zero points.

    well_scaled picks the output scale from the accumulators' spread (few saturated outputs);
    otherwise it is random too, so saturation, multipliers > 1 and tiny ones all occur.
    """
    if relu is None:
        relu = bool(rng.integers(0, 2))
    s_x = np.float32(log_uniform(rng, -4, 0))
    zp_x = int(rng.integers(-128, 128))
    w_scale = np.asarray(log_uniform(rng, -4, -1, c), dtype=np.float32)
    w = rng.integers(-127, 128, size=(c, k)).astype(np.int8)
    # Some rows at the extremes: all +-127, one +127 and the rest 0.
    for row in rng.choice(c, size=min(c, 3), replace=False):
        kind = int(rng.integers(0, 3))
        if kind == 0:
            w[row] = rng.choice(np.array([-127, 127], dtype=np.int8), size=k)
        elif kind == 1:
            w[row] = 127
        else:
            w[row] = 0
            w[row, int(rng.integers(0, k))] = -127
    bias_mag = int(rng.choice([0, 1 << 8, 1 << 16, 1 << 24]))
    bias = rng.integers(-bias_mag, bias_mag + 1, size=c).astype(np.int32)
    if well_scaled:
        xs = rng.integers(-128, 128, size=(8, k)).astype(np.int64) - zp_x
        acc = xs @ w.astype(np.int64).T + bias
        spread = float(np.std(acc.astype(np.float64) * (float(s_x) * w_scale)))
        s_y = np.float32(max(spread, 1e-12) / 40.0)
        zp_y = int(rng.integers(-40, 40)) if not relu else -128
    else:
        s_y = np.float32(log_uniform(rng, -5, 1))
        zp_y = int(rng.integers(-128, 128))
    noise = rng.uniform(-0.5, 0.5, size=(c, k)).astype(np.float32)
    master_w = (w.astype(np.float32) + noise) * w_scale[:, None]
    master_b = bias.astype(np.float32) * (s_x * w_scale)
    return FCLayer.from_quantized(
        w=w,
        bias=bias,
        w_scale=w_scale,
        in_scale=s_x,
        in_zp=zp_x,
        out_scale=s_y,
        out_zp=zp_y,
        relu=relu,
        master_w=master_w,
        master_b=master_b,
    )


def random_inputs(rng: np.random.Generator, n: int, k: int) -> npt.NDArray[np.int8]:
    """n int8 inputs of size k over the full range, with all -128 / all 127 rows mixed in."""
    x = rng.integers(-128, 128, size=(n, k)).astype(np.int8)
    if n >= 3:
        x[0] = -128
        x[1] = 127
    return x


def exported_layer(
    rng: np.random.Generator, k: int, c: int, relu: bool, channel_decades: float = 0.0
) -> FCLayer:
    """A layer quantized from float weights the way the TFLite converter does it.

    Per-channel max-abs weights, a small float bias, and an output range calibrated on random
    inputs (so the int8 layer is a faithful copy of a float one, as after export).
    channel_decades spreads the rows' magnitudes (so the per-channel scales) over that many
    decades.
    """
    s_x = np.float32(log_uniform(rng, -3, -1))
    zp_x = int(rng.integers(-128, 128))
    w_f = rng.normal(size=(c, k)) * 10.0 ** rng.uniform(-2, 0)
    w_f = (w_f * 10.0 ** rng.uniform(-channel_decades, 0, size=(c, 1))).astype(np.float32)
    b_f = (rng.normal(size=c) * 10.0 ** rng.uniform(-3, -1)).astype(np.float32)
    a = np.abs(w_f).max(axis=1)
    w_scale = np.where(a > 0, a / np.float32(127.0), np.float32(1.0)).astype(np.float32)
    w = np.clip(np.round(w_f / w_scale[:, None]), -127, 127).astype(np.int8)
    bias = np.round(b_f / (s_x * w_scale)).astype(np.int32)
    xs = rng.integers(-128, 128, size=(64, k)).astype(np.float64) - zp_x
    z = (xs * float(s_x)) @ w_f.T.astype(np.float64) + b_f
    if relu:
        z = np.maximum(z, 0.0)
    lo, hi = min(float(z.min()), 0.0), max(float(z.max()), 1e-6)
    s_y = np.float32((hi - lo) / 255.0)
    zp_y = int(np.clip(-128 - round(lo / float(s_y)), -128, 127))
    return FCLayer.from_quantized(
        w=w, bias=bias, w_scale=w_scale, in_scale=s_x, in_zp=zp_x, out_scale=s_y, out_zp=zp_y,
        relu=relu, master_w=w_f, master_b=b_f,
    )  # fmt: skip
