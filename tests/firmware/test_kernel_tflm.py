"""Forward of the C kernel and the golden model vs the TFLite Micro interpreter, bit for bit.

Random Keras Dense layers (ReLU or none, with/without bias, one or two layers) are converted
by the TFLite converter to int8, read back with codegen/tflite_reader.py and run on random int8
inputs. Also: the reader refuses what the client cannot run.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from itertools import pairwise
from typing import Any

import numpy as np
import pytest
from ckernels import CKernels, CLayer
from kernel_utils import assert_bitexact, random_inputs

from tinysplit.codegen.tflite_reader import FCSpec, read_fc_layers, read_io_quant
from tinysplit.core import golden
from tinysplit.core.errors import UnsupportedLayer

N_MODELS = 40
N_INPUTS = 48

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# int8 input with a representative dataset: the converter's note about input statistics is moot.
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


def dense_model(
    tf: Any, rng: np.random.Generator, sizes: list[int], acts: list[str | None], bias_mode: int
) -> Any:
    keras = tf.keras
    layers: list[Any] = [keras.Input((sizes[0],))]
    for c, act in zip(sizes[1:], acts, strict=True):
        layers.append(keras.layers.Dense(c, activation=act, use_bias=bias_mode != 2))
    model = keras.Sequential(layers)
    for layer in model.layers:
        k, c = layer.kernel.shape
        weights = [rng.normal(size=(k, c)) * 10.0 ** rng.uniform(-2, 0.5)]
        if bias_mode == 0:
            weights.append(rng.normal(size=c) * 10.0 ** rng.uniform(-2, 0))
        elif bias_mode == 1:
            weights.append(np.zeros(c))  # the converter drops an all-zero bias tensor
        layer.set_weights([w.astype(np.float32) for w in weights])
    return model


def golden_layer(s: FCSpec) -> golden.FCLayer:
    return golden.FCLayer.from_quantized(
        w=s.weights, bias=s.bias, w_scale=s.weight_scales, in_scale=s.input_scale,
        in_zp=s.input_zp, out_scale=s.output_scale, out_zp=s.output_zp, relu=s.relu,
        master_w=s.weights.astype(np.float32) * s.weight_scales[:, None],
        master_b=np.zeros(s.out_features, np.float32),
    )  # fmt: skip


def test_forward_matches_tflm(tf: Any, ck: CKernels) -> None:
    from tflite_micro.python.tflite_micro import runtime

    rng = np.random.default_rng(50)
    n_relu = n_two = 0
    for i in range(N_MODELS):
        n_layers = 2 if i % 6 == 5 else 1
        sizes = [int(rng.integers(1, 200))] + [int(rng.integers(1, 120)) for _ in range(n_layers)]
        acts = [("relu" if rng.integers(0, 2) else None) for _ in range(n_layers)]
        bias_mode = i % 3
        model = dense_model(tf, rng, sizes, acts, bias_mode)
        data = (rng.normal(size=(32, sizes[0])) * 10.0 ** rng.uniform(-1, 1)
                + rng.uniform(-2, 2)).astype(np.float32)  # fmt: skip
        b = convert(tf, model, data)

        specs = read_fc_layers(b)
        assert [(s.in_features, s.out_features) for s in specs] == list(pairwise(sizes))
        assert [s.relu for s in specs] == [a == "relu" for a in acts]
        (in_s, in_zp), (out_s, out_zp) = read_io_quant(b)
        assert (in_s, in_zp) == (specs[0].input_scale, specs[0].input_zp)
        assert (out_s, out_zp) == (specs[-1].output_scale, specs[-1].output_zp)
        if bias_mode != 0:
            assert not np.any(specs[0].bias)

        layers = [golden_layer(s) for s in specs]
        clayers = [CLayer(g) for g in layers]
        interp = runtime.Interpreter.from_bytes(b)
        xs = random_inputs(rng, N_INPUTS, sizes[0])
        ctx = f"(model {i}: sizes={sizes} acts={acts} bias_mode={bias_mode})"
        for n, x in enumerate(xs):
            interp.set_input(x[None, :], 0)
            interp.invoke()
            want = np.asarray(interp.get_output(0)).reshape(-1).astype(np.int8)
            h_c, h_g = x, x
            for layer, cl in zip(layers, clayers, strict=True):
                h_c, _ = ck.fc_forward(cl, h_c)
                h_g, _ = golden.fc_forward(layer, h_g)
            assert_bitexact("C vs TFLM", h_c, want, f"{ctx} input {n}")
            assert_bitexact("golden vs TFLM", h_g, want, f"{ctx} input {n}")
        n_relu += sum(s.relu for s in specs)
        n_two += n_layers == 2
    assert n_relu > 5 and n_two > 3


def _refused(tf: Any, build: Callable[[Any], Any], k: int) -> str:
    model = build(tf.keras)
    data = np.random.default_rng(0).normal(size=(16, k)).astype(np.float32)
    with pytest.raises(UnsupportedLayer) as e:
        read_fc_layers(convert(tf, model, data))
    msg = str(e.value)
    assert "\n" not in msg
    return msg


def test_reader_refuses_other_ops(tf: Any) -> None:
    def softmax(keras: Any) -> Any:
        return keras.Sequential([keras.Input((6,)), keras.layers.Dense(4), keras.layers.Softmax()])

    def relu6(keras: Any) -> Any:
        return keras.Sequential([keras.Input((6,)), keras.layers.Dense(4, activation="relu6")])

    msg = _refused(tf, softmax, 6)
    assert "SOFTMAX" in msg and "FULLY_CONNECTED" in msg
    msg = _refused(tf, relu6, 6)
    assert "RELU6" in msg


def test_reader_refuses_float_model(tf: Any) -> None:
    keras = tf.keras
    model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(3)])
    b = tf.lite.TFLiteConverter.from_keras_model(model).convert()  # float32, not quantized
    with pytest.raises(UnsupportedLayer, match="FLOAT32"):
        read_fc_layers(b)
    with pytest.raises(UnsupportedLayer, match="int8"):
        read_io_quant(b)
