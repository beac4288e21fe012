"""Scalar quantization helpers, mirroring firmware/kernels/quant.c (docs/int8-training.md).

Written from the spec, not from the C: ``quantize_multiplier`` uses Python's exact
``math.frexp`` where the C reads IEEE bits, and the gemmlowp arithmetic runs vectorized in
int64 numpy with an explicit two's-complement wrap where the C wraps in uint32.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1
#: Largest float32 below 2**31; the clamp applied before every float -> int32 rounding.
INT32_FLOAT_LIMIT = np.float32(2147483520.0)

I32 = npt.NDArray[np.int32]
I64 = npt.NDArray[np.int64]


def wrap_int32(v: npt.ArrayLike) -> I32:
    """Two's-complement wrap of integers into int32 (what a 32-bit C accumulator does)."""
    a = np.asarray(v, dtype=np.int64)
    return (((a + 2**31) & 0xFFFFFFFF) - 2**31).astype(np.int32)


def ts_round(f: npt.ArrayLike) -> I32:
    """float32 -> int32, half away from zero: truncate, then look at the exact fraction.

    The caller keeps |f| <= 2147483520 (as the C does); NaN has no defined result.
    """
    x = np.asarray(f, dtype=np.float32)
    i = x.astype(np.int32)  # C-style truncation toward zero
    frac = x - i.astype(np.float32)  # exact: i is x without its fraction
    up = (frac >= np.float32(0.5)).astype(np.int32)
    down = (frac <= np.float32(-0.5)).astype(np.int32)
    return (i + up - down).astype(np.int32)


def quantize_multiplier(m: float) -> tuple[int, int]:
    """TFLite's QuantizeMultiplier: m == mult * 2**(shift - 31), mult in [2**30, 2**31).

    NaN gives (0, 0); an infinite m saturates like a huge finite one (2**31 - 1, 30).
    """
    m = float(m)
    if m == 0.0 or math.isnan(m):
        return 0, 0
    if math.isinf(m):
        return INT32_MAX, 30
    q, shift = math.frexp(m)  # exact: m == q * 2**shift, 0.5 <= |q| < 1
    scaled = q * 2.0**31  # exact power-of-two scaling; |scaled| in [2**30, 2**31)
    # Round half away from zero. |scaled| + 0.5 is exact: scaled's ulp is at most 2**-22.
    q_fixed = math.floor(abs(scaled) + 0.5)
    if scaled < 0:
        q_fixed = -q_fixed
    if q_fixed == 2**31:
        q_fixed //= 2
        shift += 1
    if shift < -31:
        shift = 0
        q_fixed = 0
    if shift > 30:
        shift = 30
        q_fixed = INT32_MAX
    return q_fixed, shift


def _trunc_div_pow2(v: I64, n: int) -> I64:
    """v / 2**n rounded toward zero (C integer division), for int64 v."""
    return np.where(v >= 0, v >> n, -((-v) >> n))


def multiply_by_quantized_multiplier(
    acc: npt.ArrayLike, mult: npt.ArrayLike, shift: npt.ArrayLike
) -> I32:
    """gemmlowp's double rounding of acc * mult * 2**(shift - 31), elementwise (broadcasts).

    SaturatingRoundingDoublingHighMul(acc * 2**left, mult) then RoundingDivideByPOT(right),
    left/right from the TFLite sign convention (shift > 0 shifts left). The left shift wraps
    in 32 bits as an int32 multiply does on the device. shift is clamped to [-31, 31].
    """
    x = np.asarray(acc, dtype=np.int64)
    mm = np.asarray(mult, dtype=np.int64)
    s = np.clip(np.asarray(shift, dtype=np.int64), -31, 31)
    left = np.maximum(s, 0)
    right = np.maximum(-s, 0)

    xs = wrap_int32(x * (np.int64(1) << left)).astype(np.int64)
    # SaturatingRoundingDoublingHighMul
    ab = xs * mm  # |ab| <= 2**62
    nudge = np.where(ab >= 0, np.int64(1 << 30), np.int64(1 - (1 << 30)))
    high = _trunc_div_pow2(ab + nudge, 31)
    high = np.where((xs == INT32_MIN) & (mm == INT32_MIN), np.int64(INT32_MAX), high)
    # RoundingDivideByPOT
    mask = (np.int64(1) << right) - 1
    remainder = high & mask  # low bits; same as the int32 two's-complement view
    threshold = (mask >> 1) + (high < 0).astype(np.int64)
    out = (high >> right) + (remainder > threshold).astype(np.int64)
    return out.astype(np.int32)
