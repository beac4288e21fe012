"""The FC layer's backward (activation mask, ts_fully_connected_backward_weights and
_backward_input): C vs golden, bit for bit."""

from __future__ import annotations

import numpy as np
from ckernels import CKernels, CLayer
from kernel_utils import assert_bitexact, log_uniform, random_inputs, random_layer, random_shape

from tinysplit.core import golden

N_LAYERS = 220


def random_grad(rng: np.random.Generator, c: int) -> tuple[np.ndarray, np.float32]:
    """An int8 cut gradient as the host sends it (max-abs quantized), scales over decades."""
    kind = int(rng.integers(0, 6))
    if kind == 0:
        return np.zeros(c, np.int8), np.float32(0.0)
    if kind == 1:  # extremes
        return rng.choice(np.array([-127, 127, -128], np.int8), c), np.float32(
            log_uniform(rng, -7, -1)
        )
    g = rng.normal(size=c).astype(np.float32) * np.float32(log_uniform(rng, -8, 0))
    return golden.quantize_gradient(g)


def test_fc_activation_mask(ck: CKernels) -> None:
    """ts_act_backward with an FC layer's activation (RELU or NONE) and out_q, as train.c
    calls it, against the golden act_backward."""
    rng = np.random.default_rng(20)
    for i in range(250):
        n = int(rng.integers(1, 301))
        layer = random_layer(rng, 3, n, relu=bool(i % 2))
        layer.out_zp = int(rng.integers(-128, 128))
        cl = CLayer(layer)
        am = golden.act_min(layer)
        g = rng.integers(-128, 128, n).astype(np.int8)
        y = rng.integers(-128, 128, n).astype(np.int8)
        y[: n // 4] = am  # many outputs exactly at the clamp
        ctx = f"(n={n} relu={layer.relu} zp={layer.out_zp} #{i})"
        c = ck.fc_act_backward(cl, g, y)
        want = golden.act_backward(int(layer.relu), layer.out_scale, layer.out_zp, g, y)
        assert_bitexact("act_backward", c, want, ctx)
        if layer.relu:
            assert np.all(c[y <= am] == 0) and np.all(c[y > am] == g[y > am]), ctx
        else:
            assert np.array_equal(c, g), ctx


def test_fc_backward_weights(ck: CKernels) -> None:
    rng = np.random.default_rng(21)
    for i in range(N_LAYERS):
        k, c = random_shape(rng, i)
        layer = random_layer(rng, k, c)
        cl = CLayer(layer)
        # A few samples accumulated into the same buffers, as in a minibatch.
        for b, x in enumerate(random_inputs(rng, 3, k)):
            g, s_g = random_grad(rng, c)
            ck.fc_backward_weights(cl, x, g, s_g)
            golden.fc_backward_weights(layer, x, g, s_g)
            ctx = f"(layer {i}: K={k} C={c} zp_x={layer.in_zp} s_g={s_g!r} sample {b})"
            assert_bitexact("grad_w", cl.arrays["grad_w"], layer.grad_w, ctx)
            assert_bitexact("grad_b", cl.arrays["grad_b"], layer.grad_b, ctx)


def test_fc_backward_input(ck: CKernels) -> None:
    rng = np.random.default_rng(22)
    n_nonzero = 0
    for i in range(N_LAYERS):
        k, c = random_shape(rng, i)
        layer = random_layer(rng, k, c)
        if i % 5 == 0:  # equal scales and one dominant scale are both common after training
            layer.w_scale[:] = layer.w_scale[0]
        cl = CLayer(layer)
        for b in range(2):
            g, s_g = random_grad(rng, c)
            ctx = f"(layer {i}: K={k} C={c} s_g={s_g!r} sample {b})"
            gx, s_gx = ck.fc_backward_input(cl, g, s_g)
            ggx, gs_gx = golden.fc_backward_input(layer, g, s_g)
            assert_bitexact("gx", gx, ggx, ctx)
            assert_bitexact("s_gx", s_gx, gs_gx, ctx)
            assert int(np.abs(gx.astype(np.int32)).max()) <= 127
            if np.any(gx != 0):
                n_nonzero += 1
                assert int(np.abs(gx.astype(np.int32)).max()) == 127  # full int8 range used
            else:
                assert s_gx == 0.0
    assert n_nonzero > N_LAYERS
