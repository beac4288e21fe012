"""Range observer, range EMA, SGD and re-quantization: C vs golden, bit for bit."""

from __future__ import annotations

import numpy as np
from ckernels import CKernels, CLayer
from kernel_utils import (
    assert_bitexact,
    assert_layers_equal,
    log_uniform,
    random_inputs,
    random_layer,
    random_shape,
)

from tinysplit.core import golden

N_LAYERS = 220


def test_fc_observe_range(ck: CKernels) -> None:
    rng = np.random.default_rng(30)
    for i in range(N_LAYERS):
        k, c = random_shape(rng, i)
        layer = random_layer(rng, k, c)
        cl = CLayer(layer)
        lo_c = lo_g = np.float32(np.inf)
        hi_c = hi_g = np.float32(-np.inf)
        _, accs = golden.fc_forward(layer, random_inputs(rng, 4, k))
        accs[0, 0] = np.int32(-(2**31)) if i % 3 == 0 else accs[0, 0]  # int32 extremes
        accs[-1, -1] = np.int32(2**31 - 1) if i % 3 == 1 else accs[-1, -1]
        for b, acc in enumerate(accs):
            lo_c, hi_c = ck.fc_observe_range(cl, acc, lo_c, hi_c)
            lo_g, hi_g = golden.fc_observe_range(layer, acc, lo_g, hi_g)
            ctx = f"(layer {i}: K={k} C={c} relu={layer.relu} sample {b})"
            assert_bitexact("bmin", lo_c, lo_g, ctx)
            assert_bitexact("bmax", hi_c, hi_g, ctx)
        if layer.relu:
            assert lo_c >= 0.0


def test_range_update(ck: CKernels) -> None:
    rng = np.random.default_rng(31)
    for i in range(300):
        layer = random_layer(rng, 3, 5)
        span = np.float32(log_uniform(rng, -6, 3))
        bmin = np.float32(rng.uniform(-1.5, 1.0)) * span
        bmax = bmin + np.float32(rng.uniform(0.0, 2.0)) * span
        if i % 10 == 0:  # a degenerate range: the 1e-6 floor applies
            layer.range_min = layer.range_max = np.float32(0.0)
            bmin = bmax = np.float32(0.0)
        if i % 10 == 1:  # everything positive / negative: the range must still hold 0
            bmin, bmax = abs(bmin) + span, abs(bmax) + 2 * span
        cl = CLayer(layer)
        ck.range_update(cl, bmin, bmax)
        golden.range_update(layer, bmin, bmax)
        ctx = f"(#{i} bmin={bmin!r} bmax={bmax!r})"
        assert_layers_equal(cl.to_golden(), layer, ctx)
        assert layer.range_min <= 0.0 <= layer.range_max
        assert layer.range_max - layer.range_min >= np.float32(1e-6) * np.float32(0.999)
        assert -128 <= layer.out_zp <= 127


def test_range_update_empty_batch_is_a_no_op(ck: CKernels) -> None:
    layer = random_layer(np.random.default_rng(32), 4, 4)
    cl = CLayer(layer)
    ck.range_update(cl, np.float32(np.inf), np.float32(-np.inf))
    golden.range_update(layer, np.float32(np.inf), np.float32(-np.inf))
    assert_layers_equal(cl.to_golden(), layer)
    assert_layers_equal(layer, CLayer(layer).to_golden())


def test_sgd_and_requantize(ck: CKernels) -> None:
    rng = np.random.default_rng(33)
    for i in range(N_LAYERS):
        k, c = random_shape(rng, i)
        layer = random_layer(rng, k, c)
        layer.grad_w = (rng.normal(size=(c, k)) * log_uniform(rng, -6, 1)).astype(np.float32)
        layer.grad_b = (rng.normal(size=c) * log_uniform(rng, -6, 1)).astype(np.float32)
        if c > 2:
            layer.master_w[0] = 0.0  # an all-zero row: w_scale falls back to 1.0
            layer.grad_w[0] = 0.0
            layer.master_b[1] = np.float32(1e30)  # a bias beyond int32: clamped
            layer.master_b[2] = np.float32(-1e30)
        lr = np.float32(log_uniform(rng, -4, 0))
        cl = CLayer(layer)
        ctx = f"(layer {i}: K={k} C={c} lr={lr!r})"
        ck.sgd_step(cl, lr)
        golden.sgd_step(layer, lr)
        assert_layers_equal(cl.to_golden(), layer, "after sgd " + ctx)
        assert not np.any(layer.grad_w) and not np.any(layer.grad_b)
        ck.requantize(cl)
        golden.requantize(layer)
        assert_layers_equal(cl.to_golden(), layer, "after requantize " + ctx)
        assert int(np.abs(layer.w.astype(np.int32)).max()) <= 127
        if c > 2:
            assert layer.w_scale[0] == 1.0 and not np.any(layer.w[0])
            assert layer.bias[1] == 2147483520 and layer.bias[2] == -2147483520
