"""ts_fully_connected_forward: C vs golden, bit for bit, on random layers; the set-up checks."""

from __future__ import annotations

import numpy as np
from ckernels import CKernels, CLayer
from kernel_utils import assert_bitexact, random_inputs, random_layer, random_shape

from tinysplit.core import golden

N_LAYERS = 240


def test_fc_forward_random_layers(ck: CKernels) -> None:
    rng = np.random.default_rng(10)
    n_left_shift = n_saturated = 0
    for i in range(N_LAYERS):
        k, c = random_shape(rng, i)
        layer = random_layer(rng, k, c, well_scaled=bool(i % 2))
        cl = CLayer(layer)
        xs = random_inputs(rng, 4, k)
        gy, gacc = golden.fc_forward(layer, xs)  # the golden model takes a batch too
        for b in range(xs.shape[0]):
            ctx = f"(layer {i}: K={k} C={c} relu={layer.relu} sample {b})"
            y, acc = ck.fc_forward(cl, xs[b])
            assert_bitexact("acc", acc, gacc[b], ctx)
            assert_bitexact("y", y, gy[b], ctx)
            one_y, _ = golden.fc_forward(layer, xs[b])
            assert_bitexact("y (golden batch vs single)", one_y, gy[b], ctx)
            assert_bitexact("y (acc_out NULL)", ck.fc_forward_no_acc(cl, xs[b]), y, ctx)
        n_left_shift += int(np.sum(layer.out_shift > 0))
        n_saturated += int(np.sum((gy == 127) | (gy == golden.act_min(layer))))
    # The random layers really exercise multipliers > 1 and both clamps.
    assert n_left_shift > 0 and n_saturated > 0


def test_fc_forward_relu_act_min(ck: CKernels) -> None:
    """ReLU clamps at max(-128, zp_y); without ReLU only at -128."""
    rng = np.random.default_rng(11)
    for relu in (False, True):
        layer = random_layer(rng, 17, 33, relu=relu)
        layer.out_zp = 5
        xs = random_inputs(rng, 16, 17)
        cl = CLayer(layer)
        for x in xs:
            y, _ = ck.fc_forward(cl, x)
            assert_bitexact("y", y, golden.fc_forward(layer, x)[0])
            assert int(y.min()) >= (5 if relu else -128)


def test_set_up_checks_refuse_inconsistent_layers(ck: CKernels) -> None:
    """ts_fully_connected_check / ts_params_check accept what codegen writes and refuse a
    layer whose training state does not match its geometry (validate once, then trust)."""
    rng = np.random.default_rng(13)
    cl = CLayer(random_layer(rng, 17, 33, relu=True))
    assert ck.fc_check(cl) == 0 and ck.params_check(cl) == 0
    for field, value in (("in_features", 18), ("out_features", 0), ("act", 2)):
        cl2 = CLayer(random_layer(rng, 17, 33, relu=True))
        setattr(cl2.s, field, value)
        assert ck.fc_check(cl2) == -1, field
    for field, value in (("channels", 0), ("per_channel", 0), ("layout", 2)):
        cl2 = CLayer(random_layer(rng, 17, 33, relu=True))
        setattr(cl2.s.p, field, value)
        assert ck.params_check(cl2) == -1 and ck.fc_check(cl2) == -1, field
    cl2 = CLayer(random_layer(rng, 17, 33, relu=True))
    cl2.s.p.grad_w = None
    assert ck.params_check(cl2) == -1
