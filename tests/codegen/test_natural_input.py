"""A user's Keras model exports as written: an input of [steps, channels] or [height, width,
channels] (the board stores the sample flat, in that natural row-major layout) and
GlobalAveragePooling1D/2D on the client (an AveragePooling over the whole sample). The client's
golden forward equals TFLite Micro's on every test sample."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from tflite_micro.python.tflite_micro import runtime

from tinysplit.codegen.data import load_npz
from tinysplit.codegen.export import export_client, load_client_state
from tinysplit.core.errors import BadInput
from tinysplit.core.golden.step import forward

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


def natural_model(tmp: Path, kind: str) -> tuple[Path, Path, int]:
    """(model.keras, data.npz in the model's own sample shape, cut after the pooling)."""
    import keras

    keras.utils.set_random_seed(7)
    L = keras.layers
    if kind == "conv1d":
        shape: tuple[int, ...] = (24, 3)
        layers = [
            L.Conv1D(6, 3, padding="same", activation="relu"),
            L.Conv1D(8, 3, strides=2, activation="relu"),
            L.GlobalAveragePooling1D(),
        ]
    else:
        shape = (10, 10, 2)
        layers = [
            L.Conv2D(6, 3, activation="relu"),
            L.MaxPooling2D(2),
            L.Conv2D(8, 3, padding="same", activation="relu6"),
            L.GlobalAveragePooling2D(),
        ]
    model = keras.Sequential([keras.Input(shape), *layers, L.Dense(3)], name=f"{kind}_gap")
    model.save(tmp / f"{kind}.keras")
    rng = np.random.default_rng(11)
    x = rng.normal(0.0, 1.0, (90, *shape)).astype(np.float32)
    y = (x.reshape(90, -1)[:, :3].argmax(axis=1)).astype(np.int64)
    np.savez(tmp / f"{kind}.npz", x_train=x[:60], y_train=y[:60], x_test=x[60:], y_test=y[60:])
    return tmp / f"{kind}.keras", tmp / f"{kind}.npz", len(layers)


@pytest.fixture(scope="module", params=["conv1d", "conv2d"])
def natural_export(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp(request.param)
    model, data, cut = natural_model(tmp, request.param)
    export_client(model, cut, tmp / "export", data=data, seed=0)
    return tmp / "export", data


def test_golden_forward_matches_tflm_on_every_test_sample(
    natural_export: tuple[Path, Path],
) -> None:
    export, _ = natural_export
    state = load_client_state(export)
    ip = runtime.Interpreter.from_bytes((export / "client.tflite").read_bytes())
    for i, x in enumerate(state.x_test):
        ip.set_input(x.reshape(1, -1), 0)
        ip.invoke()
        want = np.asarray(ip.get_output(0)).reshape(-1)
        got = forward(state.ops, x)
        assert np.array_equal(got, want), f"test sample {i}: first differences at " + str(
            np.flatnonzero(got != want)[:8]
        )


def test_sample_is_stored_in_its_natural_layout(natural_export: tuple[Path, Path]) -> None:
    export, data = natural_export
    with np.load(data) as npz:
        natural = npz["x_test"]
    stored = load_npz(export / "data.npz").x_test
    assert np.array_equal(stored, natural.reshape(len(natural), -1))
    manifest = json.loads((export / "manifest.json").read_text())
    assert manifest["input_size"] == int(np.prod(natural.shape[1:]))


def test_cut_counts_the_models_own_layers_and_the_pool_runs_on_the_client(
    natural_export: tuple[Path, Path],
) -> None:
    export, _ = natural_export
    kinds = [op["kind"] for op in json.loads((export / "manifest.json").read_text())["ops"]]
    assert kinds[0] == "reshape" and "avg_pool" in kinds, kinds


def test_data_in_another_layout_is_refused(tmp_path: Path) -> None:
    model, data, cut = natural_model(tmp_path, "conv1d")
    with np.load(data) as npz:
        arrays = {k: npz[k] for k in npz.files}
    for k in ("x_train", "x_test"):
        arrays[k] = np.ascontiguousarray(arrays[k].transpose(0, 2, 1))  # [channels, steps]
    np.savez(tmp_path / "wrong.npz", **arrays)
    with pytest.raises(BadInput, match=r"samples of shape \[3, 24\] but the model takes \[24, 3\]"):
        export_client(model, cut, tmp_path / "export", data=tmp_path / "wrong.npz")
