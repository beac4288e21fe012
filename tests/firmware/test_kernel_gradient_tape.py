"""The int8 backward kernels vs TensorFlow's GradientTape on the dequantized layer.

The float reference is the same layer dequantized (w * s_w, bias * s_x * s_w, x real) with the
same activation; the upstream gradient is quantized the way the host does it. The int8 weight,
bias and input gradients must point the same way as the float ones (cosine >= 0.99).

Outputs of a ReLU layer within one output step of the kink get no upstream gradient in either
path: there the int8 forward itself rounds to the other side of 0 (a forward quantization
effect, ~0.3% of outputs, that would otherwise dominate the comparison of the backward pass).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pytest
from ckernels import CKernels, CLayer
from kernel_utils import exported_layer, random_inputs

from tinysplit.core import golden

N_LAYERS = 60
BATCH = 8
MIN_COSINE = 0.99

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


@pytest.fixture(scope="module")
def tf() -> Any:
    import tensorflow

    return tensorflow


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    a64, b64 = a.astype(np.float64).ravel(), b.astype(np.float64).ravel()
    return float(a64 @ b64 / (np.linalg.norm(a64) * np.linalg.norm(b64)))


def float_grads(
    tf: Any, layer: golden.FCLayer, xs: np.ndarray, dy: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """dL/dW [C, K], dL/db [C], dL/dx [B, K] of L = sum(act(x W^T + b) * dy), in float64."""
    s_x = np.float64(layer.in_scale)
    w = tf.Variable(layer.w.astype(np.float64) * layer.w_scale.astype(np.float64)[:, None])
    b = tf.Variable(layer.bias.astype(np.float64) * (s_x * layer.w_scale.astype(np.float64)))
    x = tf.Variable(s_x * (xs.astype(np.float64) - layer.in_zp))
    with tf.GradientTape() as tape:
        z = tf.matmul(x, w, transpose_b=True) + b
        y = tf.nn.relu(z) if layer.relu else z
        loss = tf.reduce_sum(y * dy.astype(np.float64))
    gw, gb, gx = tape.gradient(loss, [w, b, x])
    return gw.numpy(), gb.numpy(), gx.numpy()


def test_backward_matches_gradient_tape(tf: Any, ck: CKernels) -> None:
    rng = np.random.default_rng(60)
    worst: tuple[float, str] = (1.0, "")
    checked = n_kink = 0
    for i in range(N_LAYERS):
        k, c = int(rng.integers(1, 200)), int(rng.integers(1, 120))
        layer = exported_layer(rng, k, c, relu=bool(i % 2), channel_decades=float(i % 4))
        cl = CLayer(layer)
        xs = random_inputs(rng, BATCH, k)
        dy = (rng.normal(size=(BATCH, c)) * 10.0 ** rng.uniform(-6, -1)).astype(np.float32)
        if layer.relu:
            _, acc = golden.fc_forward(layer, xs)
            z = acc * (np.float64(layer.in_scale) * layer.w_scale.astype(np.float64))
            kink = np.abs(z) < np.float64(layer.out_scale)
            dy[kink] = 0.0
            n_kink += int(kink.sum())
        want_w, want_b, want_x = float_grads(tf, layer, xs, dy)

        got_x = np.zeros((BATCH, k), np.float64)
        for n, x in enumerate(xs):
            y8, _ = ck.fc_forward(cl, x)
            q, s_g = golden.quantize_gradient(dy[n])
            q = ck.fc_act_backward(cl, q, y8)
            ck.fc_backward_weights(cl, x, q, s_g)
            gx, s_gx = ck.fc_backward_input(cl, q, s_g)
            got_x[n] = np.float64(s_gx) * gx

        ctx = f"layer {i}: K={k} C={c} relu={layer.relu}"
        if not np.any(want_w):  # ReLU closed every output: nothing to compare in direction
            assert not np.any(cl.arrays["grad_w"]) and not np.any(got_x), ctx
            continue
        for name, got, want in (
            ("grad_w", cl.arrays["grad_w"], want_w),
            ("grad_b", cl.arrays["grad_b"], want_b),
            ("grad_x", got_x, want_x),
        ):
            cos = cosine(got, want)
            if cos < worst[0]:
                worst = (cos, f"{name} of {ctx}")
            assert cos >= MIN_COSINE, f"{name}: cosine {cos:.5f} < {MIN_COSINE} ({ctx})"
        checked += 1
    print(
        f"\nworst cosine vs GradientTape: {worst[0]:.5f} ({worst[1]}); {checked} layers, "
        f"{n_kink} outputs at the ReLU kink left out"
    )
    assert checked >= 40
