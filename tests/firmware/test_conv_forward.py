"""Conv2D forward with the fused range observer, the activation helpers, the gradient
re-quantization helper and the set-up checks: C vs golden, bit for bit.

Random layers here reach what converted models rarely do: multipliers > 1, saturated outputs,
extreme zero points, the ReLU6 cap inside int8, 1-D layers, windows larger than the image.
"""

from __future__ import annotations

import numpy as np
from ckernels import CConvKernels, CConvLayer
from conv_utils import cck, describe, random_conv_layer, random_geometry
from kernel_utils import assert_bitexact, log_uniform

from tinysplit.core import golden

__all__ = ["cck"]

N_LAYERS = 250


def test_conv2d_forward_and_observer(cck: CConvKernels) -> None:
    rng = np.random.default_rng(80)
    n_capped = 0
    for i in range(N_LAYERS):
        geo = random_geometry(rng, i)
        layer = random_conv_layer(rng, geo, depthwise=False, well_scaled=bool(i % 2))
        cl = CConvLayer(layer)
        assert cck.conv_check(cl) == 0, describe(layer)
        lo_c = lo_g = np.float32(np.inf)
        hi_c = hi_g = np.float32(-np.inf)
        for n in range(2):
            x = rng.integers(-128, 128, size=layer.in_dims).astype(np.int8)
            if n == 1 and i % 3 == 0:
                x[...] = rng.choice(np.array([-128, 127], np.int8), size=x.shape)
            y_c, rng_c = cck.conv_forward(cl, x, (float(lo_c), float(hi_c)))
            y_g, acc = golden.conv2d_forward(layer, x)
            lo_g, hi_g = golden.conv_observe_range(layer, acc, lo_g, hi_g)
            assert rng_c is not None
            lo_c, hi_c = rng_c
            ctx = f"(layer {i} sample {n}: {describe(layer)})"
            assert_bitexact("y", y_c, y_g, ctx)
            assert_bitexact("bmin", lo_c, lo_g, ctx)
            assert_bitexact("bmax", hi_c, hi_g, ctx)
            y_n, none = cck.conv_forward(cl, x)  # without the observer: the same output
            assert none is None
            assert_bitexact("y (no observer)", y_n, y_g, ctx)
            lo, hi = golden.act_range(layer.act, layer.out_scale, layer.out_zp)
            assert y_g.min() >= lo and y_g.max() <= hi
            n_capped += int(layer.act == golden.ACT_RELU6 and hi < 127 and np.any(y_g == hi))
        if layer.act != golden.ACT_NONE:
            assert lo_g >= 0.0
        if layer.act == golden.ACT_RELU6:
            assert hi_g <= 6.0
    assert n_capped >= 10  # the RELU6 cap inside int8 is exercised


def test_act_range_matches_golden(cck: CConvKernels) -> None:
    rng = np.random.default_rng(81)
    for i in range(400):
        act = i % 3
        scale = np.float32(log_uniform(rng, -12, 2)) if i % 50 else np.float32(1e-38)
        zp = int(rng.integers(-128, 128))
        ctx = f"(act={act} scale={scale!r} zp={zp})"
        assert cck.act_range(act, scale, zp) == golden.act_range(act, scale, zp), ctx
    # TFLM's Quantize(6): zp + round(6 / s), half away from zero.
    assert golden.act_range(golden.ACT_RELU6, np.float32(6.0 / 100.5), -128) == (-128, -27)
    assert golden.act_range(golden.ACT_RELU6, np.float32(0.001), -128) == (-128, 127)
    assert golden.act_range(golden.ACT_RELU, np.float32(0.1), -5) == (-5, 127)


def test_act_backward_masks_both_ends(cck: CConvKernels) -> None:
    rng = np.random.default_rng(82)
    for i in range(300):
        act = i % 3
        scale = np.float32(6.0 / float(rng.integers(1, 300))) * np.float32(rng.uniform(0.9, 1.1))
        zp = int(rng.integers(-128, 128))
        lo, hi = golden.act_range(act, scale, zp)
        n = int(rng.integers(1, 300))
        g = rng.integers(-128, 128, n).astype(np.int8)
        y = rng.integers(lo, hi + 1, n).astype(np.int8)
        y[: n // 4] = lo
        y[n // 4 : n // 2] = hi
        ctx = f"(act={act} scale={scale!r} zp={zp} range=[{lo}, {hi}])"
        c = cck.act_backward(act, scale, zp, g, y)
        assert_bitexact("act_backward", c, golden.act_backward(act, scale, zp, g, y), ctx)
        y32 = y.astype(np.int32)
        if act == golden.ACT_NONE:
            assert np.array_equal(c, g), ctx
            continue
        assert not np.any(c[y32 <= lo]), ctx
        if act == golden.ACT_RELU6 and hi < 127:  # the 6 cap is inside int8: masked
            assert not np.any(c[y32 >= hi]), ctx
        if act == golden.ACT_RELU or zp + 6.0 / float(scale) > 128.0:  # cap beyond int8
            sat = (y32 == 127) & (y32 > lo)  # int8 saturation only: straight through
            assert np.array_equal(c[sat], g[sat]), ctx
        inside = (y32 > lo) & (y32 < hi)
        assert np.array_equal(c[inside], g[inside]), ctx


def test_grad_requantize(cck: CConvKernels) -> None:
    rng = np.random.default_rng(83)
    for i in range(300):
        n = int(rng.integers(1, 200))
        mag = int(rng.choice([0, 1, 127, 128, 1 << 20, 2**31 - 1]))
        acc = rng.integers(-mag, mag + 1, n).astype(np.int32)
        if i % 7 == 0:
            acc[0] = np.int32(-(2**31))
        gx_c, m_c = cck.grad_requantize(acc)
        gx_g, m_g = golden.grad_requantize(acc)
        assert m_c == m_g, f"m: C={m_c} golden={m_g} (#{i})"
        assert_bitexact("gx", gx_c, gx_g, f"(#{i} n={n} mag={mag})")
        assert int(np.abs(gx_g.astype(np.int32)).max()) == (127 if m_g else 0)


def test_checks_refuse_bad_geometry(cck: CConvKernels) -> None:
    rng = np.random.default_rng(84)
    good = random_conv_layer(rng, random_geometry(rng, 5), depthwise=False)
    assert cck.conv_check(CConvLayer(good)) == 0
    for field, value in (("out_dims", (9, 9, good.out_dims[2])), ("stride_h", 0), ("act", 3),
                         ("padding", 2)):  # fmt: skip
        bad = good.copy()
        setattr(bad, field, value)
        assert cck.conv_check(CConvLayer(bad)) == -1, field
    dw = random_conv_layer(rng, random_geometry(rng, 5, depthwise=True), depthwise=True)
    assert cck.conv_check(CConvLayer(dw)) == 0
    p = golden.PoolParams.make((6, 6, 2), (2, 2), (2, 2), golden.PADDING_VALID)
    assert cck.pool_check(p) == 0
    assert cck.pool_check(golden.PoolParams((6, 6, 2), (4, 3, 2), 2, 2, 2, 2, 0)) == -1
    assert cck.pool_check(golden.PoolParams((6, 6, 2), (3, 3, 3), 2, 2, 2, 2, 0)) == -1
