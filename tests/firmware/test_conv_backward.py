"""ts_conv2d_backward_weights and ts_conv2d_backward_input: C vs golden, bit for bit.

Random geometries (1-D and 2-D, strides 1-3, same/valid, windows larger than the image), random
scales over decades, masked and extreme int8 gradients (including -128), several samples summed
into the same float buffers as in a minibatch. Wide layers push the input gradient's extra
shift e above 0, and an all-extreme case checks that the int32 sum cannot wrap.
"""

from __future__ import annotations

import numpy as np
from ckernels import CConvKernels, CConvLayer
from conv_utils import cck, describe, random_conv_layer, random_geometry, random_grad
from kernel_utils import assert_bitexact

from tinysplit.core import golden
from tinysplit.core.golden.conv import conv2d_n_terms
from tinysplit.core.golden.conv_layer import input_grad_shift

__all__ = ["cck"]

N_LAYERS = 220


def test_conv2d_backward_weights(cck: CConvKernels) -> None:
    rng = np.random.default_rng(90)
    for i in range(N_LAYERS):
        layer = random_conv_layer(rng, random_geometry(rng, i), depthwise=False)
        cl = CConvLayer(layer)
        for b in range(3):
            x = rng.integers(-128, 128, size=layer.in_dims).astype(np.int8)
            g, s_g = random_grad(rng, layer.out_dims)
            g = golden.act_backward(layer.act, layer.out_scale, layer.out_zp, g,
                                    golden.conv2d_forward(layer, x)[0])  # fmt: skip
            cck.conv_backward_weights(cl, x, g, s_g)
            golden.conv2d_backward_weights(layer, x, g, s_g)
            ctx = f"(layer {i} sample {b}: {describe(layer)} s_g={s_g!r})"
            assert_bitexact("grad_w", cl.arrays["grad_w"], layer.grad_w, ctx)
            assert_bitexact("grad_b", cl.arrays["grad_b"], layer.grad_b, ctx)


def test_conv2d_backward_input(cck: CConvKernels) -> None:
    rng = np.random.default_rng(91)
    n_nonzero = n_shifted = 0
    for i in range(N_LAYERS):
        if i % 10 == 9:  # wide: more than 516 products per input element, so e > 0
            k = (int(rng.integers(3, 5)), int(rng.integers(3, 5)))
            geo = dict(in_dims=(int(rng.integers(k[0], 7)), int(rng.integers(k[1], 7)),
                                int(rng.integers(1, 9))), c_out=int(rng.integers(58, 120)),
                       kernel=k, stride=(1, 1), padding=int(rng.integers(0, 2)))  # fmt: skip
        else:
            geo = random_geometry(rng, i)
        layer = random_conv_layer(rng, geo, depthwise=False)
        if i % 5 == 0:
            layer.w_scale[:] = layer.w_scale[0]  # equal scales, common after training
        cl = CConvLayer(layer)
        e = input_grad_shift(conv2d_n_terms(layer))
        n_shifted += e > 0
        for b in range(2):
            g, s_g = random_grad(rng, layer.out_dims)
            ctx = f"(layer {i} sample {b}: {describe(layer)} e={e} s_g={s_g!r})"
            gx_c, s_c = cck.conv_backward_input(cl, g, s_g)
            gx_g, s_gold = golden.conv2d_backward_input(layer, g, s_g)
            assert_bitexact("gx", gx_c, gx_g, ctx)
            assert_bitexact("s_gx", s_c, s_gold, ctx)
            if np.any(gx_g):
                n_nonzero += 1
                assert int(np.abs(gx_g.astype(np.int32)).max()) == 127, ctx
            else:
                assert s_gold == 0.0, ctx
    assert n_nonzero > N_LAYERS and n_shifted >= 10


def test_conv2d_backward_input_cannot_wrap(cck: CConvKernels) -> None:
    """Every product at its extreme and of one sign: without the shift e the sum would leave
    int32 (64 channels x 9 taps x 127 x 32767); with it every input gradient stays positive."""
    rng = np.random.default_rng(92)
    geo = dict(in_dims=(5, 5, 3), c_out=64, kernel=(3, 3), stride=(1, 1),
               padding=golden.PADDING_SAME)  # fmt: skip
    layer = random_conv_layer(rng, geo, depthwise=False)
    layer.w[...] = 127
    layer.w_scale[:] = np.float32(0.01)
    g = np.full(layer.out_dims, 127, np.int8)
    e = input_grad_shift(conv2d_n_terms(layer))
    assert e == 1 and 64 * 9 * 127 * 32767 > 2**31
    gx_c, s_c = cck.conv_backward_input(CConvLayer(layer), g, np.float32(1e-3))
    gx_g, s_gold = golden.conv2d_backward_input(layer, g, np.float32(1e-3))
    assert_bitexact("gx", gx_c, gx_g)
    assert_bitexact("s_gx", s_c, s_gold)
    assert gx_g.min() > 0 and gx_g[2, 2].max() == 127  # the centre sums the most products
