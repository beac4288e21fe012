"""The int8 conv / depthwise / pool backward kernels vs TensorFlow's GradientTape on the
dequantized layers: the filter, bias and input gradients must point the same way (cosine >= 0.99).

Float reference: the same layer dequantized (w * s_w, bias * s_x * s_w, x real) with the same
activation, tf.nn.conv2d / depthwise_conv2d / max_pool2d / avg_pool2d with TF's padding (the
same geometry as TFLite's). The upstream gradient is quantized per sample as the host does it.
Outputs within one output step of a ReLU/ReLU6 kink get no upstream gradient in either path:
there the int8 forward itself rounds to the other side (a forward quantization effect), as in
test_kernel_gradient_tape.py.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pytest
from ckernels import CConvKernels, CConvLayer
from conv_utils import cck, describe, random_geometry, random_pool

from tinysplit.core import golden
from tinysplit.core.golden import ConvLayer

__all__ = ["cck"]

N_LAYERS = 40
BATCH = 4
MIN_COSINE = 0.99

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


@pytest.fixture(scope="module")
def tf() -> Any:
    import tensorflow

    return tensorflow


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    a64, b64 = a.astype(np.float64).ravel(), b.astype(np.float64).ravel()
    return float(a64 @ b64 / (np.linalg.norm(a64) * np.linalg.norm(b64)))


def exported_conv(rng: np.random.Generator, geo: dict[str, Any], depthwise: bool, act: int
                  ) -> ConvLayer:  # fmt: skip
    """A conv layer quantized from float weights as the converter does (per-channel max-abs
    weights, int32 bias, output range calibrated on random inputs; ReLU6 capped at 6)."""
    (h, w, c_in), c_out = geo["in_dims"], geo["c_out"]
    kh, kw = geo["kernel"]
    w_shape = (1, kh, kw, c_out) if depthwise else (c_out, kh, kw, c_in)
    fan_in = kh * kw * (1 if depthwise else c_in)
    s_x = np.float32(10.0 ** rng.uniform(-2.5, -1))
    zp_x = int(rng.integers(-128, 128))
    ch = 10.0 ** rng.uniform(-1, 0, size=c_out)
    ch = ch if depthwise else ch[:, None, None, None]
    # Inputs spread ~74 * s_x: pre-activations of a few units, ~10 for ReLU6 so it caps many.
    spread = 12.0 if act == golden.ACT_RELU6 else 3.0
    w_f = rng.normal(size=w_shape) * ch * (spread / (np.sqrt(fan_in) * 80.0 * float(s_x)))
    w_f = w_f.astype(np.float32)
    b_f = (rng.normal(size=c_out) * 0.5).astype(np.float32)
    rows = w_f.reshape(-1, c_out).T if depthwise else w_f.reshape(c_out, -1)
    a = np.abs(rows).max(axis=1)
    w_scale = np.where(a > 0, a / np.float32(127.0), np.float32(1.0)).astype(np.float32)
    ws_b = w_scale if depthwise else w_scale[:, None, None, None]
    wq = np.clip(np.round(w_f / ws_b), -127, 127).astype(np.int8)
    bias = np.round(b_f / (s_x * w_scale)).astype(np.int32)
    layer = ConvLayer.from_quantized(
        in_dims=(h, w, c_in), kernel=(kh, kw), stride=geo["stride"], padding=geo["padding"],
        act=act, depthwise=depthwise, w=wq, bias=bias, w_scale=w_scale, in_scale=s_x,
        in_zp=zp_x, out_scale=np.float32(1.0), out_zp=0, master_w=w_f, master_b=b_f,
    )  # fmt: skip
    fwd = golden.depthwise_conv2d_forward if depthwise else golden.conv2d_forward
    xs = rng.integers(-128, 128, size=(16, h, w, c_in)).astype(np.int8)
    z = np.stack([fwd(layer, x)[1] for x in xs]) * (float(s_x) * w_scale.astype(np.float64))
    if act != golden.ACT_NONE:
        z = np.maximum(z, 0.0)
    if act == golden.ACT_RELU6:
        z = np.minimum(z, 6.0)
    lo, hi = min(float(z.min()), 0.0), max(float(z.max()), 1e-6)
    s_y = np.float32((hi - lo) / 255.0)
    zp_y = int(np.clip(-128 - round(lo / float(s_y)), -128, 127))
    return ConvLayer.from_quantized(
        in_dims=(h, w, c_in), kernel=(kh, kw), stride=geo["stride"], padding=geo["padding"],
        act=act, depthwise=depthwise, w=wq, bias=bias, w_scale=w_scale, in_scale=s_x,
        in_zp=zp_x, out_scale=s_y, out_zp=zp_y, master_w=w_f, master_b=b_f,
    )  # fmt: skip


def float_conv_grads(tf: Any, layer: ConvLayer, xs: np.ndarray, dy: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """dL/dW (our filter layout), dL/db, dL/dx of L = sum(act(conv(x) + b) * dy), float64."""
    s_x = np.float64(layer.in_scale)
    ws = layer.w_scale.astype(np.float64)
    w = tf.Variable(
        np.transpose(
            layer.w.astype(np.float64) * (ws if layer.depthwise else ws[:, None, None, None]),
            (1, 2, 3, 0),
        )
    )
    b = tf.Variable(layer.bias.astype(np.float64) * (s_x * ws))
    x = tf.Variable(s_x * (xs.astype(np.float64) - layer.in_zp))
    strides = (1, layer.stride_h, layer.stride_w, 1)
    pad = "SAME" if layer.padding == golden.PADDING_SAME else "VALID"
    with tf.GradientTape() as tape:
        if layer.depthwise:  # tf's depthwise op wants equal strides: a diagonal conv2d instead
            diag = w[:, :, :, 0:1] * np.eye(layer.in_dims[2])  # [KH, KW, C, C]
            z = tf.nn.conv2d(x, diag, strides, pad) + b
        else:
            z = tf.nn.conv2d(x, w, strides, pad) + b
        y = z if layer.act == golden.ACT_NONE else tf.nn.relu(z)
        if layer.act == golden.ACT_RELU6:
            y = tf.minimum(y, 6.0)
        loss = tf.reduce_sum(y * dy.astype(np.float64))
    gw, gb, gx = tape.gradient(loss, [w, b, x])
    return np.transpose(gw.numpy(), (3, 0, 1, 2)), gb.numpy(), gx.numpy()


def _check(
    name: str, got: np.ndarray, want: np.ndarray, ctx: str, worst: list[tuple[float, str]]
) -> None:
    cos = cosine(got, want)
    worst.append((cos, f"{name} of {ctx}"))
    assert cos >= MIN_COSINE, f"{name}: cosine {cos:.5f} < {MIN_COSINE} ({ctx})"


@pytest.mark.parametrize("depthwise", [False, True], ids=["conv2d", "depthwise"])
def test_conv_backward_matches_gradient_tape(tf: Any, cck: CConvKernels, depthwise: bool) -> None:
    rng = np.random.default_rng(130 + depthwise)
    worst: list[tuple[float, str]] = []
    checked = n_kink = n_capped = 0
    for i in range(N_LAYERS):
        geo = random_geometry(rng, i + 7, depthwise=depthwise)
        layer = exported_conv(rng, geo, depthwise, act=i % 3)
        cl = CConvLayer(layer)
        xs = rng.integers(-128, 128, size=(BATCH, *layer.in_dims)).astype(np.int8)
        dy = (rng.normal(size=(BATCH, *layer.out_dims)) * 10.0 ** rng.uniform(-6, -1)).astype(
            np.float32
        )
        fwd = golden.depthwise_conv2d_forward if depthwise else golden.conv2d_forward
        z = np.stack([fwd(layer, x)[1] for x in xs]) * (
            np.float64(layer.in_scale) * layer.w_scale.astype(np.float64)
        )
        step = np.float64(layer.out_scale)
        kink = np.zeros(z.shape, bool)
        if layer.act != golden.ACT_NONE:
            kink |= np.abs(z) < step
        if layer.act == golden.ACT_RELU6:
            kink |= np.abs(z - 6.0) < step
            n_capped += int((z >= 6.0 + step).sum())
        dy[kink] = 0.0
        n_kink += int(kink.sum())
        want_w, want_b, want_x = float_conv_grads(tf, layer, xs, dy)

        got_x = np.zeros(xs.shape, np.float64)
        for n, x in enumerate(xs):
            y8, _ = cck.conv_forward(cl, x)
            q, s_g = golden.quantize_gradient(dy[n])
            q = cck.act_backward(layer.act, layer.out_scale, layer.out_zp, q, y8)
            cck.conv_backward_weights(cl, x, q, s_g)
            gx, s_gx = cck.conv_backward_input(cl, q, s_g)
            got_x[n] = np.float64(s_gx) * gx
        ctx = f"layer {i}: {describe(layer)}"
        if not np.any(want_w):  # the activation closed every output
            assert not np.any(cl.arrays["grad_w"]) and not np.any(got_x), ctx
            continue
        _check("grad_w", cl.arrays["grad_w"], want_w, ctx, worst)
        _check("grad_b", cl.arrays["grad_b"], want_b, ctx, worst)
        _check("grad_x", got_x, want_x, ctx, worst)
        checked += 1
    cos, where = min(worst)
    print(f"\nworst cosine vs GradientTape: {cos:.5f} ({where}); {checked} layers, ", end="")
    print(f"{n_kink} outputs at a kink left out, {n_capped} above the ReLU6 cap")
    assert checked >= N_LAYERS * 3 // 4 and n_capped >= 50


@pytest.mark.parametrize("kind", ["max", "avg"])
def test_pool_backward_matches_gradient_tape(tf: Any, cck: CConvKernels, kind: str) -> None:
    rng = np.random.default_rng(140 + (kind == "max"))
    worst: list[tuple[float, str]] = []
    for i in range(N_LAYERS):
        p = random_pool(rng, i, overlap=None if i < 6 else bool(i % 2))
        s, zp = np.float32(10.0 ** rng.uniform(-3, -1)), int(rng.integers(-128, 128))
        xs = rng.integers(-128, 128, size=(BATCH, *p.in_dims)).astype(np.int8)
        dy = (rng.normal(size=(BATCH, *p.out_dims)) * 10.0 ** rng.uniform(-6, -1)).astype(
            np.float32
        )
        x = tf.Variable(np.float64(s) * (xs.astype(np.float64) - zp))
        ksize, strides = (1, p.kh, p.kw, 1), (1, p.stride_h, p.stride_w, 1)
        pad = "SAME" if p.padding == golden.PADDING_SAME else "VALID"
        with tf.GradientTape() as tape:
            pool = tf.nn.max_pool2d if kind == "max" else tf.nn.avg_pool2d
            loss = tf.reduce_sum(pool(x, ksize, strides, pad) * dy.astype(np.float64))
        want_x = tape.gradient(loss, x).numpy()
        got_x = np.zeros(xs.shape, np.float64)
        for n, x8 in enumerate(xs):
            q, s_g = golden.quantize_gradient(dy[n])
            if kind == "max":
                gx, s_gx = cck.max_pool_backward(p, x8, q, s_g)
            else:
                gx, s_gx = cck.avg_pool_backward(p, q, s_g)
            got_x[n] = np.float64(s_gx) * gx
        _check("grad_x", got_x, want_x, f"pool {i}: {kind} {p}", worst)
    cos, where = min(worst)
    print(f"\nworst cosine vs GradientTape: {cos:.5f} ({where}); {N_LAYERS} pools")
