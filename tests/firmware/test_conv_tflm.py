"""Forward of every client layer (C kernels and golden model) vs the TFLite Micro interpreter.

Random Keras chains of Conv2D / DepthwiseConv2D (strides 1-3, same/valid, ReLU/ReLU6/none,
with and without bias), MaxPooling2D / AveragePooling2D (overlapping or not), their 1-D
versions (which the converter wraps in EXPAND_DIMS ... RESHAPE), Flatten and Dense are
converted to int8, read back with read_layers, and run by TFLM in preserve-all-tensors mode.
Every layer is fed TFLM's own input tensor and must reproduce TFLM's output tensor bit for bit,
so each layer of a chain is one independent configuration. Several layers share one model
because a conversion costs ~0.5 s. Also: read_layers refuses what the client cannot run.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from ckernels import CConvKernels, CConvLayer, CKernels, CLayer
from conv_utils import cck, conv_layer_from_spec, pool_from_spec
from kernel_utils import assert_bitexact

from tinysplit.codegen.tflite_reader import (
    ConvSpec,
    FCSpec,
    PoolSpec,
    ReshapeSpec,
    layer_tensors,
    read_layers,
)
from tinysplit.core import golden
from tinysplit.core.errors import UnsupportedLayer

__all__ = ["cck"]

N_MODELS = 34
N_INPUTS = 3
MIN_CONFIGS = 300

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
pytestmark = pytest.mark.filterwarnings("ignore:Statistics for quantized inputs:UserWarning")


@pytest.fixture(scope="module")
def tf() -> Any:
    import tensorflow

    return tensorflow


def convert(tf: Any, model: Any, data: np.ndarray) -> bytes:
    def representative() -> Iterator[list[np.ndarray]]:
        for i in range(data.shape[0]):
            yield [data[i : i + 1]]

    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = representative
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    out: bytes = conv.convert()
    return out


def _out(n: int, k: int, s: int, same: bool) -> int:
    return golden.out_size(golden.PADDING_SAME if same else golden.PADDING_VALID, n, k, s)


def random_chain(
    keras: Any, rng: np.random.Generator, one_d: bool
) -> tuple[tuple[int, ...], list[Any]]:
    """(input shape, layers) of a random chain of ~10 conv/pool layers, maybe Flatten + Dense."""
    h = 1 if one_d else int(rng.integers(4, 17))
    w = int(rng.integers(8, 41)) if one_d else int(rng.integers(4, 17))
    c = int(rng.integers(1, 6))
    in_shape = (w, c) if one_d else (h, w, c)
    layers: list[Any] = []
    acts = [None, "relu", "relu6"]
    L = keras.layers
    for _ in range(int(rng.integers(8, 12))):
        kind = rng.choice(["conv", "dw", "max", "avg"], p=[0.35, 0.25, 0.2, 0.2])
        same = bool(rng.integers(0, 2))
        k = (1 if one_d else int(rng.integers(1, 5)), int(rng.integers(1, 6)))
        s = (
            1 if one_d or h < 3 else int(rng.choice([1, 1, 2])),
            1 if w < 3 else int(rng.choice([1, 1, 2, 3])),
        )
        if kind in ("max", "avg"):
            k = (1 if one_d else int(rng.integers(1, 4)), int(rng.integers(1, 4)))
            s = (1 if one_d else int(rng.integers(1, 3)), int(rng.integers(1, 4)))
        if not same and (k[0] > h or k[1] > w):
            same = True
        pad = "same" if same else "valid"
        act = acts[int(rng.integers(0, 3))]
        if kind == "conv":
            f = int(rng.integers(1, 9))
            use_bias = bool(rng.random() < 0.85)
            layers.append(
                L.Conv1D(f, k[1], strides=s[1], padding=pad, activation=act, use_bias=use_bias)
                if one_d
                else L.Conv2D(f, k, strides=s, padding=pad, activation=act, use_bias=use_bias)
            )
            c = f
        elif kind == "dw":
            layers.append(
                L.DepthwiseConv1D(k[1], strides=s[1], padding=pad, activation=act)
                if one_d
                else L.DepthwiseConv2D(k, strides=s, padding=pad, activation=act)
            )
        elif one_d:
            cls = L.MaxPooling1D if kind == "max" else L.AveragePooling1D
            layers.append(cls(k[1], strides=s[1], padding=pad))
        else:
            cls = L.MaxPooling2D if kind == "max" else L.AveragePooling2D
            layers.append(cls(k, strides=s, padding=pad))
        h, w = _out(h, k[0], s[0], same), _out(w, k[1], s[1], same)
    if rng.random() < 0.5:
        layers += [
            L.Flatten(),
            L.Dense(int(rng.integers(1, 12)), activation=acts[int(rng.integers(0, 2))]),
        ]
    return in_shape, layers


def set_random_weights(rng: np.random.Generator, model: Any) -> None:
    """He-like random weights with per-output-channel magnitudes over a decade, random biases."""
    for layer in model.layers:
        weights = layer.get_weights()
        if not weights:
            continue
        kernel = weights[0]
        depthwise = "Depthwise" in type(layer).__name__
        fan_in = int(np.prod(kernel.shape[:-2] if depthwise else kernel.shape[:-1]))
        scale = np.sqrt(2.0 / max(fan_in, 1)) * 10.0 ** rng.uniform(-0.3, 0.3)
        ch_axis = kernel.ndim - 2 if depthwise else kernel.ndim - 1
        ch_shape = [1] * kernel.ndim
        ch_shape[ch_axis] = kernel.shape[ch_axis]
        per_ch = 10.0 ** rng.uniform(-1.0, 0.0, size=ch_shape)
        new = [(rng.normal(size=kernel.shape) * scale * per_ch).astype(np.float32)]
        if len(weights) > 1:
            new.append(
                (rng.normal(size=weights[1].shape) * 10.0 ** rng.uniform(-2, -0.5)).astype(
                    np.float32
                )
            )
        layer.set_weights(new)


def run_layer(
    ck: CKernels, cck: CConvKernels, spec: Any, x: np.ndarray
) -> tuple[np.ndarray, np.ndarray, str]:
    """(C output, golden output, kind) of one layer spec on input x (flat int8)."""
    if isinstance(spec, ConvSpec):
        layer = conv_layer_from_spec(spec)
        fwd = golden.depthwise_conv2d_forward if spec.depthwise else golden.conv2d_forward
        y_c, _ = cck.conv_forward(CConvLayer(layer), x)
        return y_c, fwd(layer, x)[0], ("depthwise" if spec.depthwise else "conv")
    if isinstance(spec, PoolSpec):
        p = pool_from_spec(spec)
        fwd_p = golden.max_pool2d_forward if spec.kind == "max" else golden.avg_pool2d_forward
        return cck.pool_forward(spec.kind, p, x), fwd_p(p, x), f"{spec.kind}pool"
    if isinstance(spec, FCSpec):
        fc = golden.FCLayer.from_quantized(
            w=spec.weights, bias=spec.bias, w_scale=spec.weight_scales,
            in_scale=spec.input_scale, in_zp=spec.input_zp, out_scale=spec.output_scale,
            out_zp=spec.output_zp, relu=spec.relu, master_w=spec.weights.astype(np.float32),
            master_b=np.zeros(spec.out_features, np.float32),
        )  # fmt: skip
        return ck.fc_forward(CLayer(fc), x)[0], golden.fc_forward(fc, x)[0], "fc"
    assert isinstance(spec, ReshapeSpec)
    return x.copy(), x.copy(), "reshape"  # no kernel: the bytes stay


def describe_spec(spec: Any) -> str:
    d = {k: v for k, v in vars(spec).items() if not isinstance(v, np.ndarray)}
    return f"{type(spec).__name__}({d})"


def test_every_layer_matches_tflm(tf: Any, ck: CKernels, cck: CConvKernels) -> None:
    from tflite_micro.python.tflite_micro import runtime

    keras = tf.keras
    rng = np.random.default_rng(70)
    kinds: Counter[str] = Counter()
    features: Counter[str] = Counter()
    retries = n_varied = 0
    for i in range(N_MODELS):
        one_d = i % 4 == 3
        while True:
            in_shape, layers = random_chain(keras, rng, one_d)
            model = keras.Sequential([keras.Input(in_shape), *layers])
            set_random_weights(rng, model)
            data = (rng.normal(size=(16, *in_shape)) * 10.0 ** rng.uniform(-1, 1)
                    + rng.uniform(-1, 1)).astype(np.float32)  # fmt: skip
            b = convert(tf, model, data)
            try:
                specs = read_layers(b)
                break
            except UnsupportedLayer as e:
                # A chain whose ReLUs closed every output calibrates to a zero range, and the
                # converter then splits the bias off into an ADD; a client never sees that.
                assert "ADD" in str(e), str(e)
                retries += 1
                assert retries <= 3, "too many degenerate random models"
        tensors = layer_tensors(b)
        assert len(specs) == len(tensors)
        interp = runtime.Interpreter.from_bytes(
            b, intrepreter_config=runtime.InterpreterConfig.kPreserveAllTensors
        )
        for n in range(N_INPUTS):
            x = rng.integers(-128, 128, size=(1, *in_shape)).astype(np.int8)
            if n == 1:
                x[...] = rng.choice(np.array([-128, 127], np.int8), size=x.shape)
            interp.set_input(x, 0)
            interp.invoke()
            for j, (spec, (t_in, t_out)) in enumerate(zip(specs, tensors, strict=True)):
                x_l = np.asarray(interp.GetTensor(t_in, 0)["tensor_data"]).astype(np.int8)
                want = np.asarray(interp.GetTensor(t_out, 0)["tensor_data"]).astype(np.int8)
                y_c, y_g, kind = run_layer(ck, cck, spec, x_l.reshape(-1))
                ctx = f"(model {i} layer {j} input {n}: {describe_spec(spec)})"
                assert_bitexact(f"C {kind} vs TFLM", y_c.reshape(-1), want.reshape(-1), ctx)
                assert_bitexact(f"golden {kind} vs TFLM", y_g.reshape(-1), want.reshape(-1), ctx)
                if n == 0:
                    kinds[kind] += 1
                    n_varied += kind != "reshape" and bool(np.ptp(want.astype(np.int32)) > 0)
                    if isinstance(spec, ConvSpec):
                        features[spec.activation] += 1
                        features[f"stride{max(spec.stride)}"] += 1
                        features[spec.padding] += 1
                        features["1-D" if spec.in_shape[0] == 1 else "2-D"] += 1
                    if isinstance(spec, PoolSpec):
                        features["pool overlap" if min(
                            s - k for s, k in zip(spec.stride, spec.pool, strict=True)
                        ) < 0 else "pool no overlap"] += 1  # fmt: skip
    configs = sum(v for k, v in kinds.items() if k != "reshape")
    print(f"\n{configs} layer configurations bit-exact with TFLM ({n_varied} with a non-constant ")
    print(f"output; {retries} degenerate models redrawn): {dict(kinds)}; {dict(features)}")
    assert configs >= MIN_CONFIGS and n_varied >= 0.9 * configs
    assert min(kinds[k] for k in ("conv", "depthwise", "maxpool", "avgpool", "fc")) >= 10
    assert (
        min(features[f] for f in ("relu", "relu6", "none", "stride2", "same", "valid", "1-D")) >= 10
    )


def _refused(tf: Any, layers: list[Any], functional: Any = None) -> str:
    keras = tf.keras
    model = functional or keras.Sequential([keras.Input((8, 8, 4)), *layers])
    data = np.random.default_rng(0).normal(size=(16, 8, 8, 4)).astype(np.float32)
    with pytest.raises(UnsupportedLayer) as e:
        read_layers(convert(tf, model, data))
    msg = str(e.value)
    assert "\n" not in msg
    return msg


def test_reader_refuses_what_the_client_cannot_run(tf: Any) -> None:
    L = tf.keras.layers
    # Dilation makes the converter wrap the conv in SPACE_TO_BATCH_ND / BATCH_TO_SPACE_ND.
    msg = _refused(tf, [L.Conv2D(4, 3, dilation_rate=2, padding="same")])
    assert "SPACE_TO_BATCH_ND" in msg and "CONV_2D" in msg
    assert "depth multiplier" in _refused(tf, [L.DepthwiseConv2D(3, depth_multiplier=2)])
    assert "grouped CONV_2D" in _refused(tf, [L.Conv2D(4, 3, groups=2)])
    assert "TANH" in _refused(tf, [L.Conv2D(4, 3, activation="tanh")])
    # The converter fuses a ReLU after a pool into it; the kernels have no pool activation.
    msg = _refused(tf, [L.Conv2D(4, 3), L.MaxPooling2D(2), L.ReLU()])
    assert "MAX_POOL_2D with fused RELU" in msg and "layer before the pool" in msg
    inp = tf.keras.Input((8, 8, 4))
    residual = tf.keras.Model(inp, L.Add()([inp, L.Conv2D(4, 3, padding="same")(inp)]))
    assert "ADD" in _refused(tf, [], residual)


def test_fc_reader_unchanged_on_conv_models(tf: Any) -> None:
    """read_fc_layers still reads FC chains only and names the op it cannot run."""
    from tinysplit.codegen.tflite_reader import read_fc_layers

    keras = tf.keras
    model = keras.Sequential([keras.Input((6, 6, 1)), keras.layers.Conv2D(2, 3),
                              keras.layers.Flatten(), keras.layers.Dense(3)])  # fmt: skip
    b = convert(tf, model, np.random.default_rng(1).normal(size=(8, 6, 6, 1)).astype(np.float32))
    with pytest.raises(UnsupportedLayer, match="CONV_2D"):
        read_fc_layers(b)
    kinds = [type(s).__name__ for s in read_layers(b)]
    assert kinds == ["ConvSpec", "ReshapeSpec", "FCSpec"]
