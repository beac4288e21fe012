"""DepthwiseConv2D (depth multiplier 1): forward with observer, filter/bias gradient and input
gradient, C vs golden bit for bit on random geometries, scales and gradients."""

from __future__ import annotations

import numpy as np
from ckernels import CConvKernels, CConvLayer
from conv_utils import cck, describe, random_conv_layer, random_geometry, random_grad
from kernel_utils import assert_bitexact

from tinysplit.core import golden

__all__ = ["cck"]

N_LAYERS = 220


def test_depthwise_forward_and_observer(cck: CConvKernels) -> None:
    rng = np.random.default_rng(100)
    for i in range(N_LAYERS):
        layer = random_conv_layer(rng, random_geometry(rng, i, depthwise=True), depthwise=True,
                                  well_scaled=bool(i % 2))  # fmt: skip
        cl = CConvLayer(layer)
        assert cck.conv_check(cl) == 0, describe(layer)
        lo_g, hi_g = np.float32(np.inf), np.float32(-np.inf)
        rng_c: tuple[float, float] = (np.inf, -np.inf)
        for n in range(2):
            x = rng.integers(-128, 128, size=layer.in_dims).astype(np.int8)
            y_c, r = cck.conv_forward(cl, x, (float(rng_c[0]), float(rng_c[1])))
            assert r is not None
            rng_c = (float(r[0]), float(r[1]))
            y_g, acc = golden.depthwise_conv2d_forward(layer, x)
            lo_g, hi_g = golden.conv_observe_range(layer, acc, lo_g, hi_g)
            ctx = f"(layer {i} sample {n}: {describe(layer)})"
            assert_bitexact("y", y_c, y_g, ctx)
            assert_bitexact("bmin", r[0], lo_g, ctx)
            assert_bitexact("bmax", r[1], hi_g, ctx)


def test_depthwise_backward_weights(cck: CConvKernels) -> None:
    rng = np.random.default_rng(101)
    for i in range(N_LAYERS):
        layer = random_conv_layer(rng, random_geometry(rng, i, depthwise=True), depthwise=True)
        cl = CConvLayer(layer)
        for b in range(3):
            x = rng.integers(-128, 128, size=layer.in_dims).astype(np.int8)
            g, s_g = random_grad(rng, layer.out_dims)
            cck.conv_backward_weights(cl, x, g, s_g)
            golden.depthwise_conv2d_backward_weights(layer, x, g, s_g)
            ctx = f"(layer {i} sample {b}: {describe(layer)} s_g={s_g!r})"
            assert_bitexact("grad_w", cl.arrays["grad_w"], layer.grad_w, ctx)
            assert_bitexact("grad_b", cl.arrays["grad_b"], layer.grad_b, ctx)


def test_depthwise_backward_input(cck: CConvKernels) -> None:
    rng = np.random.default_rng(102)
    n_nonzero = 0
    for i in range(N_LAYERS):
        layer = random_conv_layer(rng, random_geometry(rng, i, depthwise=True), depthwise=True)
        if i % 5 == 0:
            layer.w_scale[:] = layer.w_scale[0]
        cl = CConvLayer(layer)
        for b in range(2):
            g, s_g = random_grad(rng, layer.out_dims)
            ctx = f"(layer {i} sample {b}: {describe(layer)} s_g={s_g!r})"
            gx_c, s_c = cck.conv_backward_input(cl, g, s_g)
            gx_g, s_gold = golden.depthwise_conv2d_backward_input(layer, g, s_g)
            assert_bitexact("gx", gx_c, gx_g, ctx)
            assert_bitexact("s_gx", s_c, s_gold, ctx)
            n_nonzero += bool(np.any(gx_g))
    assert n_nonzero > N_LAYERS
