"""`export_client`: what it writes, what it refuses, and the model hash."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pytest

from tinysplit.codegen.export import export_client
from tinysplit.codegen.models import REGISTRY
from tinysplit.core.errors import BadInput, UnsupportedLayer

# Keras 3.15 saving trips over its own numpy 2 use; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

FILES = (
    "client.tflite",
    "model_data.h",
    "model_data.c",
    "server.keras",
    "full.keras",
    "data.npz",
    "plan.json",
    "manifest.json",
)


def test_files(digits_export: Path) -> None:
    for name in FILES:
        assert (digits_export / name).is_file(), name


def test_manifest(digits_export: Path, digits_manifest: dict[str, Any]) -> None:
    m = digits_manifest
    assert m["model"] == "digits-mlp" and m["cut"] == REGISTRY["digits-mlp"].default_cut == 1
    assert (m["input_size"], m["cut_size"], m["n_classes"]) == (64, 32, 10)
    assert (m["n_train"], m["n_test"], m["max_batch"]) == (1347, 450, 32)
    assert m["hyperparameters"] == REGISTRY["digits-mlp"].hyperparameters.to_dict()
    assert len(bytes.fromhex(m["model_hash"])) == 8
    (layer,) = m["layers"]
    assert layer["kind"] == "fc" and (layer["in"], layer["out"], layer["relu"]) == (64, 32, True)
    assert layer["in_zp"] == -128 and np.float32(layer["in_scale"]) == np.float32(1 / 255)
    assert -128 <= layer["out_zp"] <= 127 and layer["out_scale"] > 0
    assert m["tool_version"]


def test_keras_segments(digits_export: Path) -> None:
    full = keras.saving.load_model(digits_export / "full.keras", compile=False)
    server = keras.saving.load_model(digits_export / "server.keras", compile=False)
    assert [layer.units for layer in full.layers] == [32, 32, 10]
    assert server.inputs[0].shape[-1] == 32 and [layer.units for layer in server.layers] == [32, 10]
    for a, b in zip(server.layers, full.layers[1:], strict=True):
        for wa, wb in zip(a.get_weights(), b.get_weights(), strict=True):
            assert np.array_equal(wa, wb)
    data = np.load(digits_export / "data.npz", allow_pickle=False)
    assert data["x_train"].shape == (1347, 64) and data["x_train"].dtype == np.float32


def _export_from(tmp_path: Path, model: keras.Model, data: Path, cut: int = 1) -> dict[str, Any]:
    path = tmp_path / f"{model.name}.keras"
    model.save(path)
    return export_client(path, cut, tmp_path / "out", data=data).manifest


def test_same_model_same_hash_and_quiet(
    digits_export: Path, digits_manifest: dict[str, Any], tmp_path: Path, capfd: Any
) -> None:
    """An export is a fixed function of its inputs: the bundled model exported again has the
    same hash and C, and the saved model with its data exports twice to the same hash, silently.
    (The hash seals the whole export, its name included: codegen/seal.py.)"""
    again = export_client("digits-mlp", None, tmp_path / "bundled", seed=0).manifest
    assert again["model_hash"] == digits_manifest["model_hash"]
    assert (tmp_path / "bundled" / "model_data.c").read_bytes() == (
        digits_export / "model_data.c"
    ).read_bytes()
    capfd.readouterr()
    hashes = [
        export_client(
            digits_export / "full.keras", 1, tmp_path / f"keras{i}", data=digits_export / "data.npz"
        ).manifest["model_hash"]
        for i in range(2)
    ]
    out, err = capfd.readouterr()
    assert (out, err) == ("", "")
    assert hashes[0] == hashes[1] != digits_manifest["model_hash"]  # another name, another seal


@pytest.mark.parametrize("delta", [1e-7, 0.05])
def test_hash_changes_with_a_weight(
    digits_export: Path, digits_manifest: dict[str, Any], tmp_path: Path, delta: float
) -> None:
    """A client weight change changes the hash, even one that leaves the int8 weights alone."""
    full = keras.saving.load_model(digits_export / "full.keras", compile=False)
    kernel = full.layers[0].kernel.numpy()
    kernel[3, 5] += delta
    full.layers[0].kernel.assign(kernel)
    m = _export_from(tmp_path, full, digits_export / "data.npz")
    assert m["model_hash"] != digits_manifest["model_hash"]


def _mlp(*layers: keras.Layer, n_in: int = 16, name: str = "m") -> keras.Model:
    keras.utils.set_random_seed(1)
    return keras.Sequential([keras.Input((n_in,)), *layers], name=name)


def test_npz_data_and_dropout_in_the_server(tmp_path: Path, small_npz: Path) -> None:
    model = _mlp(
        keras.layers.Dense(8, activation="relu"),
        keras.layers.Dense(6),
        keras.layers.Dropout(0.2),
        keras.layers.Dense(3),
    )
    m = _export_from(tmp_path, model, small_npz, cut=2)
    assert (m["input_size"], m["cut_size"], m["n_train"], m["n_test"]) == (16, 6, 60, 20)
    assert [(x["in"], x["out"], x["relu"]) for x in m["layers"]] == [(16, 8, True), (8, 6, False)]
    assert m["layers"][1]["in_scale"] == m["layers"][0]["out_scale"]
    h = (tmp_path / "out" / "model_data.h").read_text()
    # op0's output is op1's input (weight gradient) and its ReLU mask: kept for 32 samples;
    # op1 has no activation, so backward never reads its output.
    assert "#define TS_MODEL_KEPT_ACT_BYTES 256" in h
    assert "#define TS_MODEL_SCRATCH_WORDS 8" in h  # FC accumulators and op1's input gradient


@pytest.mark.parametrize(
    ("layers", "cut", "names"),
    [
        ((keras.layers.Dense(8), keras.layers.Dropout(0.1, name="drop")), 2, ("'drop'", "Dropout")),
        ((keras.layers.Dense(8, activation="tanh", name="squash"),), 1, ("'squash'", "tanh")),
        (
            (
                keras.layers.Reshape((4, 4, 1)),
                keras.layers.Conv2D(2, 2, dilation_rate=2, name="conv"),
            ),
            2,
            ("'conv'", "Conv2D", "dilation", "supported on the client: Dense"),
        ),
        (
            (
                keras.layers.Reshape((4, 4, 1)),
                keras.layers.Conv2D(2, 3, activation="tanh", name="conv"),
            ),
            2,
            ("'conv'", "tanh", "relu6"),
        ),
        (
            (keras.layers.LayerNormalization(name="ln"),),
            1,
            ("'ln'", "LayerNormalization", "MaxPooling1D/2D", "BatchNormalization"),
        ),
        ((keras.layers.ReLU(name="act"),), 1, ("'act'", "ReLU")),
        ((keras.layers.Dense(8, use_bias=False, name="nob"),), 1, ("'nob'", "use_bias=True")),
    ],
)
def test_unsupported_client_layer(
    tmp_path: Path,
    small_npz: Path,
    layers: tuple[keras.Layer, ...],
    cut: int,
    names: tuple[str, ...],
) -> None:
    tail = [keras.layers.Flatten()] if len(layers) > 1 and "conv" in layers[-1].name else []
    model = _mlp(*layers, *tail, keras.layers.Dense(3))
    with pytest.raises(UnsupportedLayer) as e:
        _export_from(tmp_path, model, small_npz, cut=cut)
    msg = str(e.value)
    assert all(n in msg for n in names), msg
    assert "\n" not in msg
    assert not (tmp_path / "out").exists()  # refused before converting or writing anything


def _conv1d_model() -> keras.Model:
    return keras.Sequential(
        [
            keras.Input((16,)),
            keras.layers.Reshape((16, 1)),
            keras.layers.Conv1D(2, 3, name="conv"),
            keras.layers.Flatten(),
            keras.layers.Dense(3),
        ]
    )


def test_a_cut_that_is_not_flat_gets_a_flatten_and_the_server_a_reshape(
    tmp_path: Path, small_npz: Path
) -> None:
    model = _conv1d_model()
    manifest = _export_from(tmp_path, model, small_npz, cut=2)  # after the conv: [14, 2]
    assert manifest["cut_size"] == 28 and manifest["cut"] == 3
    full = keras.models.load_model(tmp_path / "out" / "full.keras")
    names = [x.name for x in full.layers]
    assert names[1:5] == ["conv", "ts_cut_flatten", "ts_cut_reshape", names[4]], names
    x = np.random.default_rng(0).normal(size=(4, 16)).astype(np.float32)
    # the pair is the identity: the full model computes what the one given did
    np.testing.assert_array_equal(full.predict(x, verbose=0), model.predict(x, verbose=0))
    server = keras.models.load_model(tmp_path / "out" / "server.keras")
    assert server.layers[0].name == "ts_cut_reshape"


def test_a_client_without_a_trainable_layer_is_refused(tmp_path: Path, small_npz: Path) -> None:
    with pytest.raises(BadInput, match=r"no Dense or conv layer.*raw input"):
        _export_from(tmp_path, _conv1d_model(), small_npz, cut=1)


@pytest.mark.parametrize("cut", [0, 3, -1, 10])
def test_bad_cut(cut: int, tmp_path: Path) -> None:
    with pytest.raises(BadInput, match=r"cut .* out of range.*1\.\.2"):
        export_client("digits-mlp", cut, tmp_path / "out")


def test_bad_model_and_data(tmp_path: Path, small_npz: Path) -> None:
    with pytest.raises(BadInput, match="does not exist"):
        export_client(tmp_path / "missing.keras", 1, tmp_path / "out", data=small_npz)
    with pytest.raises(BadInput, match="neither a bundled model"):
        export_client("no-such-model", 1, tmp_path / "out")
    with pytest.raises(BadInput, match="does not exist"):
        export_client("digits-mlp", 1, tmp_path / "out", data=tmp_path / "none.npz")
    with pytest.raises(BadInput, match="has 16 features but the model takes 64"):
        export_client("digits-mlp", 1, tmp_path / "out", data=small_npz)
    model = _mlp(keras.layers.Dense(4, activation="relu"), keras.layers.Dense(3))
    path = tmp_path / "m.keras"
    model.save(path)
    with pytest.raises(BadInput, match="--data"):
        export_client(path, 1, tmp_path / "out")
    with pytest.raises(BadInput, match="--cut"):
        export_client(path, None, tmp_path / "out", data=small_npz)


def test_not_a_chain(tmp_path: Path, small_npz: Path) -> None:
    inp = keras.Input((16,))
    a = keras.layers.Dense(16, activation="relu")(inp)
    b = keras.layers.Add()([a, inp])
    out = keras.layers.Dense(3)(b)
    model = keras.Model(inp, out, name="skip")
    with pytest.raises(UnsupportedLayer, match="single chain"):
        _export_from(tmp_path, model, small_npz)


def test_manifest_is_json(digits_export: Path) -> None:
    json.loads((digits_export / "manifest.json").read_text())


def test_fresh_process_prints_nothing(tmp_path: Path) -> None:
    """TensorFlow's start-up and converter chatter stays out of the CLI's output."""
    code = (
        "import sys; from pathlib import Path; "
        "from tinysplit.codegen.export import export_client; "
        "export_client('digits-mlp', None, Path(sys.argv[1]))"
    )
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "out")],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    assert (out.stdout, out.stderr) == ("", "")
