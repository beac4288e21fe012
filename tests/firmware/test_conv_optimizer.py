"""Training state (ts_params_t) of conv layers, both channel layouts: SGD, running range,
re-quantization, C vs golden bit for bit; then several minibatch steps of a small conv client
(conv -> maxpool -> depthwise -> avgpool -> conv1x1) run the way firmware will call the kernels,
C vs golden."""

from __future__ import annotations

from typing import Any

import numpy as np
from ckernels import CConvKernels, CConvLayer
from conv_utils import (
    assert_conv_layers_equal,
    cck,
    describe,
    random_conv_layer,
    random_geometry,
    random_grad,
)
from kernel_utils import assert_bitexact, log_uniform

from tinysplit.core import golden
from tinysplit.core.golden.conv_layer import multipliers

__all__ = ["cck"]

N_LAYERS = 220


def test_sgd_range_and_requantize(cck: CConvKernels) -> None:
    rng = np.random.default_rng(120)
    for i in range(N_LAYERS):
        dw = bool(i % 2)
        layer = random_conv_layer(rng, random_geometry(rng, i, depthwise=dw), depthwise=dw)
        layer.grad_w = (rng.normal(size=layer.w_shape) * log_uniform(rng, -6, 1)).astype(np.float32)
        layer.grad_b = (rng.normal(size=layer.out_dims[2]) * log_uniform(rng, -6, 1)).astype(
            np.float32
        )
        c = layer.out_dims[2]
        if c > 2:  # an all-zero channel (w_scale falls back to 1.0), biases beyond int32
            if dw:
                layer.master_w[..., 0] = layer.grad_w[..., 0] = 0.0
            else:
                layer.master_w[0] = layer.grad_w[0] = 0.0
            layer.master_b[1], layer.master_b[2] = np.float32(1e30), np.float32(-1e30)
        lr = np.float32(log_uniform(rng, -4, 0))
        cl = CConvLayer(layer)
        ctx = f"(layer {i}: {describe(layer)} lr={lr!r})"
        cck.sgd_step(cl, lr)
        golden.sgd_step(layer, lr)
        assert_conv_layers_equal(cl.to_golden(), layer, "after sgd " + ctx)
        assert not np.any(layer.grad_w) and not np.any(layer.grad_b)

        span = np.float32(log_uniform(rng, -4, 2))
        bmin = np.float32(rng.uniform(-1.5, 0.5)) * span
        bmax = bmin + np.float32(rng.uniform(0.0, 2.0)) * span
        if i % 10 == 0:
            bmin, bmax = np.float32(np.inf), np.float32(-np.inf)  # nothing observed: no-op
        cck.range_update(cl, bmin, bmax)
        golden.range_update(layer, bmin, bmax)
        assert_conv_layers_equal(cl.to_golden(), layer, "after range update " + ctx)

        cck.requantize(cl)
        golden.requantize(layer)
        assert_conv_layers_equal(cl.to_golden(), layer, "after requantize " + ctx)
        assert int(np.abs(layer.w.astype(np.int32)).max()) <= 127
        if c > 2:
            first = layer.w[..., 0] if dw else layer.w[0]
            assert layer.w_scale[0] == 1.0 and not np.any(first), ctx
            assert layer.bias[1] == 2147483520 and layer.bias[2] == -2147483520, ctx


# ---- a small conv client, trained for a few minibatches, C vs golden -------------------------


def _client(rng: np.random.Generator) -> list[Any]:
    """conv 3x3/1 same relu -> maxpool 2x2 -> depthwise 3x3/2 same relu6 -> avgpool 2x2/1 ->
    conv 1x1 (no act), on 10x9x2 inputs."""
    g1 = dict(in_dims=(10, 9, 2), c_out=6, kernel=(3, 3), stride=(1, 1), padding=1)
    c1 = random_conv_layer(rng, g1, False, golden.ACT_RELU, well_scaled=True)
    mp = golden.PoolParams.make(c1.out_dims, (2, 2), (2, 2), golden.PADDING_VALID)
    d = dict(in_dims=mp.out_dims, c_out=6, kernel=(3, 3), stride=(2, 2), padding=1)
    dw = random_conv_layer(rng, d, True, golden.ACT_RELU6, well_scaled=True)
    ap = golden.PoolParams.make(dw.out_dims, (2, 2), (1, 1), golden.PADDING_SAME)
    g2 = dict(in_dims=ap.out_dims, c_out=4, kernel=(1, 1), stride=(1, 1), padding=0)
    c2 = random_conv_layer(rng, g2, False, golden.ACT_NONE, well_scaled=True)
    # Chain the quantization: a pool keeps its input's; each conv reads its predecessor's.
    dw.in_scale, dw.in_zp = c1.out_scale, c1.out_zp
    c2.in_scale, c2.in_zp = dw.out_scale, dw.out_zp
    for layer in (dw, c2):
        layer.out_mult, layer.out_shift = multipliers(
            layer.in_scale, layer.w_scale, layer.out_scale
        )
    return [c1, mp, dw, ap, c2]


def _step_golden(
    net: list[Any], xs: np.ndarray, gs: np.ndarray, sgs: np.ndarray, lr: float
) -> list[np.ndarray]:
    c1, mp, dw, ap, c2 = net
    convs = (c1, dw, c2)
    ranges = {id(c): (np.float32(np.inf), np.float32(-np.inf)) for c in convs}
    kept = []
    for x in xs:
        h1, a = golden.conv2d_forward(c1, x)
        ranges[id(c1)] = golden.conv_observe_range(c1, a, *ranges[id(c1)])
        h2 = golden.max_pool2d_forward(mp, h1)
        h3, a = golden.depthwise_conv2d_forward(dw, h2)
        ranges[id(dw)] = golden.conv_observe_range(dw, a, *ranges[id(dw)])
        h4 = golden.avg_pool2d_forward(ap, h3)
        h5, a = golden.conv2d_forward(c2, h4)
        ranges[id(c2)] = golden.conv_observe_range(c2, a, *ranges[id(c2)])
        kept.append((x, h1, h2, h3, h4, h5))
    for (x, h1, h2, h3, h4, _), g, s in zip(kept, gs, sgs, strict=True):
        golden.conv2d_backward_weights(c2, h4, g, s)
        g, s = golden.conv2d_backward_input(c2, g, s)
        g, s = golden.avg_pool2d_backward(ap, g, s)
        g = golden.act_backward(dw.act, dw.out_scale, dw.out_zp, g, h3)
        golden.depthwise_conv2d_backward_weights(dw, h2, g, s)
        g, s = golden.depthwise_conv2d_backward_input(dw, g, s)
        g, s = golden.max_pool2d_backward(mp, h1, g, s)
        g = golden.act_backward(c1.act, c1.out_scale, c1.out_zp, g, h1)
        golden.conv2d_backward_weights(c1, x, g, s)
    for c in convs:
        golden.sgd_step(c, lr)
        golden.range_update(c, *ranges[id(c)])
    dw.in_scale, dw.in_zp = c1.out_scale, c1.out_zp
    c2.in_scale, c2.in_zp = dw.out_scale, dw.out_zp
    for c in convs:
        golden.requantize(c)
    return [k[-1] for k in kept]


def _step_c(
    cck: CConvKernels, net: list[Any], xs: np.ndarray, gs: np.ndarray, sgs: np.ndarray, lr: float
) -> list[np.ndarray]:
    c1, mp, dw, ap, c2 = net
    convs = (c1, dw, c2)
    ranges = {id(c): (np.inf, -np.inf) for c in convs}
    kept = []

    def fwd(c: CConvLayer, x: np.ndarray) -> np.ndarray:
        y, r = cck.conv_forward(c, x, ranges[id(c)])
        assert r is not None
        ranges[id(c)] = (float(r[0]), float(r[1]))
        return y

    for x in xs:
        h1 = fwd(c1, x)
        h2 = cck.pool_forward("max", mp, h1)
        h3 = fwd(dw, h2)
        h4 = cck.pool_forward("avg", ap, h3)
        kept.append((x, h1, h2, h3, h4, fwd(c2, h4)))
    for (x, h1, h2, h3, h4, _), g, s in zip(kept, gs, sgs, strict=True):
        cck.conv_backward_weights(c2, h4, g, s)
        g, s = cck.conv_backward_input(c2, g, s)
        g, s = cck.avg_pool_backward(ap, g, s)
        g = cck.act_backward(dw.s.act, dw.s.p.out_q.scale, dw.s.p.out_q.zero_point, g, h3)
        cck.conv_backward_weights(dw, h2, g, s)
        g, s = cck.conv_backward_input(dw, g, s)
        g, s = cck.max_pool_backward(mp, h1, g, s)
        g = cck.act_backward(c1.s.act, c1.s.p.out_q.scale, c1.s.p.out_q.zero_point, g, h1)
        cck.conv_backward_weights(c1, x, g, s)
    for c in convs:
        cck.sgd_step(c, lr)
        cck.range_update(c, *ranges[id(c)])
    dw.s.p.in_q, c2.s.p.in_q = c1.s.p.out_q, dw.s.p.out_q
    for c in convs:
        cck.requantize(c)
    return [k[-1] for k in kept]


def test_conv_client_train_steps(cck: CConvKernels) -> None:
    rng = np.random.default_rng(122)
    for trial in range(4):
        net = _client(rng)
        cnet = [CConvLayer(n) if isinstance(n, golden.ConvLayer) else n for n in net]
        start = [net[k].master_w.copy() for k in (0, 2, 4)]
        for step in range(4):
            xs = rng.integers(-128, 128, size=(6, 10, 9, 2)).astype(np.int8)
            gq = [random_grad(rng, net[4].out_dims) for _ in range(6)]
            gs = np.stack([g for g, _ in gq])
            sgs = np.array([s for _, s in gq], np.float32)
            ys_g = _step_golden(net, xs, gs, sgs, 0.05)
            ys_c = _step_c(cck, cnet, xs, gs, sgs, 0.05)
            ctx = f"(trial {trial} step {step})"
            for b, (yc, yg) in enumerate(zip(ys_c, ys_g, strict=True)):
                assert_bitexact(f"output of sample {b}", yc, yg, ctx)
            for k in (0, 2, 4):
                assert_conv_layers_equal(cnet[k].to_golden(), net[k], f"layer {k} {ctx}")
        for k, w0 in zip((0, 2, 4), start, strict=True):  # the gradient reached every layer
            assert np.any(net[k].master_w != w0), f"layer {k} did not learn (trial {trial})"
