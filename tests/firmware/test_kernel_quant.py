"""ts_round, ts_quantize_multiplier and ts_multiply_by_quantized_multiplier: C vs golden.

MBQM is also checked against a third, big-integer transcription of gemmlowp, so a shared
misreading of the spec by the C and the golden model would still show.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from ckernels import CKernels
from hypothesis import given, settings
from hypothesis import strategies as st
from kernel_utils import assert_bitexact

from tinysplit.core import golden
from tinysplit.core.errors import NonFiniteGradient

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


def gemmlowp_mbqm(x: int, mult: int, shift: int) -> int:
    """TFLite's MultiplyByQuantizedMultiplier with Python ints (the int32 wrap made explicit)."""
    left, right = max(shift, 0), max(-shift, 0)
    xs = ((x * (1 << left) + 2**31) % 2**32) - 2**31
    if xs == INT32_MIN and mult == INT32_MIN:
        high = INT32_MAX
    else:
        ab = xs * mult
        nudge = (1 << 30) if ab >= 0 else 1 - (1 << 30)
        num = ab + nudge
        high = abs(num) // (1 << 31) * (1 if num >= 0 else -1)  # C truncating division
    mask = (1 << right) - 1
    remainder = high & mask
    threshold = (mask >> 1) + (1 if high < 0 else 0)
    return (high >> right) + (1 if remainder > threshold else 0)


def test_ts_round_random_and_ties(ck: CKernels) -> None:
    rng = np.random.default_rng(1)
    vals = np.concatenate(
        [
            rng.uniform(-300, 300, 2000),
            np.arange(-10.5, 10.6, 0.5),  # exact ties round away from zero
            np.array([0.49999997, -0.49999997, 8388607.5, -8388607.5, 8388608.0, 2147483520.0]),
            -np.array([2147483520.0, 0.0, 1.5, 2.5]),
            (10.0 ** rng.uniform(-8, 9, 2000)) * rng.choice([-1, 1], 2000),
        ]
    ).astype(np.float32)
    c = np.array([ck.ts_round(v) for v in vals], dtype=np.int32)
    assert_bitexact("ts_round", c, golden.ts_round(vals))
    assert ck.ts_round(2.5) == 3 and ck.ts_round(-2.5) == -3 and ck.ts_round(-0.5) == -1
    assert ck.ts_round(2147483520.0) == 2147483520


@settings(max_examples=300, deadline=None)
@given(st.floats(min_value=-2147483520.0, max_value=2147483520.0, width=32))
def test_ts_round_hypothesis(ck: CKernels, f: float) -> None:
    assert ck.ts_round(f) == int(golden.ts_round(np.float32(f)))
    # Independent definition: nearest integer, ties away from zero (exact in float64).
    r = math.floor(abs(f) + 0.5) if abs(f) < 2**52 else abs(f)
    assert ck.ts_round(f) == int(math.copysign(r, f))


QM_EDGES = [
    0.0, -0.0, 1.0, 0.5, 0.25, 2.0, 0.75, 1.0 - 2.0**-40, 1.0 - 2.0**-33, 0.5 - 2.0**-34,
    2.0**-31, 2.0**-32, 2.0**-32 * (1 - 2.0**-33), 2.0**-33, 1e-10, 1e-300, 5e-324, 2.2e-308,
    2.0**30, 2.0**30 * (1 - 2.0**-40), 2.0**31, 1e10, 1e300, 1.7976931348623157e308,
    math.inf, -math.inf, math.nan, -0.3, -1.0, -(2.0**31), 0.1, 1.0 / 3.0, 123.456,
]  # fmt: skip


def test_quantize_multiplier_edges_and_random(ck: CKernels) -> None:
    rng = np.random.default_rng(2)
    ms = QM_EDGES + list(10.0 ** rng.uniform(-12, 12, 3000))
    for m in ms:
        c = ck.quantize_multiplier(m)
        g = golden.quantize_multiplier(m)
        assert c == g, f"quantize_multiplier({m!r}): C={c} golden={g}"
        mult, shift = c
        assert -31 <= shift <= 30
        if 2.0**-31 <= m <= 2.0**29:
            # m == mult * 2**(shift-31) to within half a unit of the 31-bit mantissa.
            assert 2**30 <= mult < 2**31
            assert abs(mult * 2.0 ** (shift - 31) - m) <= 2.0 ** (shift - 32)
    assert ck.quantize_multiplier(0.0) == (0, 0)
    assert ck.quantize_multiplier(1.0) == (2**30, 1)
    assert ck.quantize_multiplier(1.0 - 2.0**-40) == (2**30, 1)  # rounding carries to 2**31
    assert ck.quantize_multiplier(2.0**-33) == (0, 0)  # shift < -31 flushes to zero
    assert ck.quantize_multiplier(2.0**-32) == (2**30, -31)
    assert ck.quantize_multiplier(1e300) == (INT32_MAX, 30)
    assert ck.quantize_multiplier(math.inf) == (INT32_MAX, 30)
    assert ck.quantize_multiplier(math.nan) == (0, 0)


MBQM_X = [INT32_MIN, INT32_MIN + 1, -(2**30), -12345, -2, -1, 0, 1, 2, 3, 12345, 2**30, INT32_MAX]
MBQM_MULT = [0, 1, 2**30, 2**30 + 1, 1518500250, INT32_MAX, INT32_MIN, -(2**30)]
MBQM_SHIFT = [-31, -30, -17, -2, -1, 0, 1, 2, 15, 30, 31]


def test_mbqm_edges(ck: CKernels) -> None:
    xs, ms, ss = np.meshgrid(MBQM_X, MBQM_MULT, MBQM_SHIFT, indexing="ij")
    xs, ms, ss = xs.ravel(), ms.ravel(), ss.ravel()
    c = np.array(
        [ck.mbqm(int(a), int(b), int(s)) for a, b, s in zip(xs, ms, ss, strict=True)], np.int32
    )
    ref = np.array(
        [gemmlowp_mbqm(int(a), int(b), int(s)) for a, b, s in zip(xs, ms, ss, strict=True)]
    )
    g = golden.multiply_by_quantized_multiplier(xs, ms, ss)
    assert_bitexact("MBQM C vs golden", c, g)
    assert_bitexact("MBQM C vs big-int gemmlowp", c, ref.astype(np.int32))
    # The saturating case and a few hand-checked values.
    assert ck.mbqm(INT32_MIN, INT32_MIN, 0) == INT32_MAX
    assert ck.mbqm(100, 2**30, 0) == 50  # * 0.5
    # gemmlowp's nudge (1 - 2**30) makes a negative tie in the high-mul round toward zero.
    assert ck.mbqm(-3, 2**30, 0) == -1
    assert ck.mbqm(3, 2**30, 0) == 2


def test_mbqm_double_rounding_example(ck: CKernels) -> None:
    # 5 * 0.5 * 0.5 = 1.25, but gemmlowp rounds twice: the high-mul gives round(2.5) = 3,
    # then RoundingDivideByPOT(3, 1) = round(1.5) = 2. TFLM's reference build does the same.
    assert ck.mbqm(5, 2**30, -1) == 2
    assert gemmlowp_mbqm(5, 2**30, -1) == 2


@settings(max_examples=500, deadline=None)
@given(
    st.integers(INT32_MIN, INT32_MAX),
    st.integers(2**30, INT32_MAX) | st.just(0),
    st.integers(-31, 30),
)
def test_mbqm_hypothesis(ck: CKernels, x: int, mult: int, shift: int) -> None:
    c = ck.mbqm(x, mult, shift)
    assert c == gemmlowp_mbqm(x, mult, shift)
    assert c == int(golden.multiply_by_quantized_multiplier(x, mult, shift))


def test_mbqm_random_bulk(ck: CKernels) -> None:
    rng = np.random.default_rng(3)
    n = 5000
    x = rng.integers(INT32_MIN, INT32_MAX, n, endpoint=True)
    m = rng.integers(2**30, INT32_MAX, n, endpoint=True)
    s = rng.integers(-31, 31, n)
    c = np.array(
        [ck.mbqm(int(a), int(b), int(e)) for a, b, e in zip(x, m, s, strict=True)], np.int32
    )
    assert_bitexact("MBQM", c, golden.multiply_by_quantized_multiplier(x, m, s))


def test_quantize_gradient() -> None:
    """The host's per-sample max-abs int8 cut gradient (golden only: it runs on the host)."""
    g = np.array([0.5, -1.0, 0.25, 1e-9, -0.0039], np.float32)
    q, s = golden.quantize_gradient(g)
    assert s == np.float32(1.0) / np.float32(127.0)
    assert q.dtype == np.int8 and q.tolist() == [64, -127, 32, 0, 0]
    q, s = golden.quantize_gradient(np.zeros(7, np.float32))
    assert s == 0.0 and not np.any(q)
    q, s = golden.quantize_gradient(np.full(3, 1e-45, np.float32))  # m / 127 underflows
    assert s == 0.0 and not np.any(q)
    rng = np.random.default_rng(4)
    for _ in range(200):
        g = (rng.normal(size=int(rng.integers(1, 300))) * 10.0 ** rng.uniform(-9, 3)).astype(
            np.float32
        )
        q, s = golden.quantize_gradient(g)
        assert int(np.abs(q.astype(np.int32)).max()) == 127
        err = np.abs(q.astype(np.float64) * float(s) - g.astype(np.float64))
        assert float(err.max()) <= 0.5001 * float(s)
    for bad in (np.nan, np.inf, -np.inf):
        with pytest.raises(NonFiniteGradient):
            golden.quantize_gradient(np.array([1.0, bad], np.float32))


def test_fclayer_from_quantized_and_copy() -> None:
    w = np.array([[1, -127], [0, 0]], np.int8)
    layer = golden.FCLayer.from_quantized(
        w=w, bias=[3, -4], w_scale=[0.01, 0.02], in_scale=0.5, in_zp=-3, out_scale=0.25,
        out_zp=10, relu=True, master_w=w * 0.01, master_b=[0.0, 0.0],
    )  # fmt: skip
    assert layer.range_min == np.float32(0.25) * np.float32(-138)
    assert layer.range_max == np.float32(0.25) * np.float32(117)
    m = float(np.float32(0.5)) * float(np.float32(0.01)) / float(np.float32(0.25))  # TFLM's order
    assert (layer.out_mult[0], layer.out_shift[0]) == golden.quantize_multiplier(m)
    assert layer.grad_w.shape == (2, 2) and not np.any(layer.grad_w)
    assert golden.act_min(layer) == 10
    other = layer.copy()
    other.w[0, 0] = 5
    other.grad_b[0] = 1.0
    assert layer.w[0, 0] == 1 and layer.grad_b[0] == 0.0
