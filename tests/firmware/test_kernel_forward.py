"""ts_fc_forward and ts_relu_forward: C vs golden, bit for bit, on random layers."""

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


def test_relu_forward(ck: CKernels) -> None:
    rng = np.random.default_rng(12)
    for i in range(200):
        n = int(rng.integers(1, 301))
        zp = int(rng.integers(-128, 128))
        x = rng.integers(-128, 128, n).astype(np.int8)
        assert_bitexact(
            "relu", ck.relu_forward(x, zp), golden.relu_forward(x, zp), f"(n={n} zp={zp} #{i})"
        )
    x = np.arange(-128, 128, dtype=np.int8)
    assert_bitexact("relu", ck.relu_forward(x, -128), x)
    assert_bitexact("relu", ck.relu_forward(x, 127), np.full(256, 127, np.int8))
