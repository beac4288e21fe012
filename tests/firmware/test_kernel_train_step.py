"""A whole client training step of an FC layer (several in a row): the C kernels in
train.c's order vs the golden step model (core/golden/step.py), in every field."""

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
from tinysplit.core.golden.step import ops_forward, ops_train_step


def test_client_train_steps(ck: CKernels) -> None:
    rng = np.random.default_rng(40)
    moved = 0
    for i in range(24):
        k, c = random_shape(rng, i)
        k, c = min(k, 128), min(c, 64)  # B x steps x layers forward passes: keep it quick
        layer = random_layer(rng, k, c, well_scaled=bool(i % 3))
        cl = CLayer(layer)
        lr = np.float32(log_uniform(rng, -3, 0))
        g_scale = float(log_uniform(rng, -3, -1))
        start_scale = layer.out_scale
        for step in range(5):
            batch = int(rng.choice([1, 2, 7, 32])) if step else 32
            xs = random_inputs(rng, batch, k)
            gf = rng.normal(size=(batch, c)).astype(np.float32) * np.float32(g_scale)
            g_scale *= 0.3  # the cut gradient's range collapses as training converges
            q = np.zeros((batch, c), np.int8)
            s = np.zeros(batch, np.float32)
            for b in range(batch):
                q[b], s[b] = golden.quantize_gradient(gf[b])
            ctx = f"(layer {i}: K={k} C={c} relu={layer.relu} step {step} B={batch})"
            ys_c = ck.client_train_step(cl, xs, q, s, lr)
            ys_g = ops_train_step([layer], xs, q, s, lr)
            assert_bitexact("forward outputs", ys_c, ys_g, ctx)
            assert_layers_equal(cl.to_golden(), layer, ctx)
            assert_bitexact(
                "ops_forward",
                ops_forward([layer], xs),
                np.stack([ck.fc_forward(cl, x)[0] for x in xs]),
                ctx,
            )
        moved += int(layer.out_scale != start_scale)
    assert moved > 12  # the running range really moved the output quantization
