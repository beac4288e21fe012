"""Convolutional clients trained on the native build (the very same firmware C as the boards)
and replayed through the numpy golden model (codegen/client_train.py): every cut activation,
every step's weights CRC and the final weight blob must agree bit for bit."""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import numpy as np
import pytest
from e2e_support import Run, run_steps

from tinysplit.codegen.client_train import cut_quant, ops_forward, ops_train_step
from tinysplit.codegen.export import export_client, load_client_state
from tinysplit.host.build import build_firmware
from tinysplit.host.launch import native_board
from tinysplit.host.weights import first_blob_difference, ops_blob

LR = 0.05


def _small_cnn(path: Path) -> Path:
    """Conv2D relu6 'same' -> DepthwiseConv2D stride 2 relu -> AveragePool -> Dense relu | Dense:
    every client kind the reference workloads do not use, with input gradients through each."""
    import keras

    keras.utils.set_random_seed(3)
    model = keras.Sequential(
        [
            keras.Input((128,)),
            keras.layers.Reshape((8, 8, 2)),
            keras.layers.Conv2D(4, 3, padding="same", activation="relu6"),
            keras.layers.DepthwiseConv2D(3, strides=2, activation="relu"),
            keras.layers.AveragePooling2D(2, padding="same"),
            keras.layers.Flatten(),
            keras.layers.Dense(12, activation="relu"),
            keras.layers.Dense(3),
        ],
        name="small_cnn",
    )
    model.save(path / "small.keras")
    rng = np.random.default_rng(5)
    x = rng.normal(0.0, 1.0, (150, 128)).astype(np.float32)
    y = (x[:, :3].argmax(axis=1)).astype(np.int64)  # learnable: the class is in the first pixels
    np.savez(path / "small.npz", x_train=x[:120], y_train=y[:120], x_test=x[120:], y_test=y[120:])
    return path / "small.keras"


# (name, model, cut, max_batch, steps, batch): mnist cut 4 with max_batch 32 does not fit the
# board with every output kept, so conv1's output is recomputed in backward.
CASES = {
    "mnist-cut8": ("mnist-cnn", 8, None, 4, 8),
    "mnist-recompute": ("mnist-cnn", 4, 32, 3, 32),
    "motion": ("motion-cnn1d", None, None, 4, 8),
    "depthwise-avgpool-fc": ("small", 6, None, 5, 16),
}


@pytest.fixture(scope="module", params=sorted(CASES))
def conv_case(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, Path, Run, int]:
    name = request.param
    model, cut, max_batch, steps, batch = CASES[name]
    out = tmp_path_factory.mktemp(f"export-{name}")
    data = None
    if model == "small":
        model_path = _small_cnn(out)
        data = out / "small.npz"
        model = str(model_path)
    export_client(model, cut, out / "export", data=data, seed=0, max_batch=max_batch)
    # ASan + UBSan: the new op-table paths run under the sanitizers as well as bit-exact
    image = build_firmware("native", out / "export", out / "build", sanitize=True)
    with native_board(image) as url:
        run = run_steps(url, out / "export", steps, lr=LR, batch=batch)
    return name, out / "export", run, steps


def test_conv_client_training_matches_golden_model_bit_for_bit(
    conv_case: tuple[str, Path, Run, int],
) -> None:
    name, export_dir, run, steps = conv_case
    state = load_client_state(export_dir)
    modes = [
        op["activation"] for op in json.loads((export_dir / "manifest.json").read_text())["ops"]
    ]
    # the recompute path of train.c runs only when the plan recomputes an output
    if name.startswith("mnist"):
        assert "recomputed" in modes, modes
    initial = ops_blob(state.ops)
    assert len(run.steps) == steps
    for i, rec in enumerate(run.steps, start=1):
        xs = state.x_train[rec.indices]
        want = ops_forward(state.ops, xs)
        bad = np.argwhere(want != rec.smashed)
        assert bad.size == 0, (
            f"{name} step {i}: board activation {tuple(bad[0])} = {rec.smashed[tuple(bad[0])]}, "
            f"golden {want[tuple(bad[0])]}"
        )
        scale, zp, _, _ = cut_quant(state.ops)
        assert (np.float32(rec.scale), rec.zero_point) == (scale, zp), f"{name} step {i}"
        ops_train_step(state.ops, xs, rec.grads, rec.grad_scales, LR)
        assert rec.weights_crc == zlib.crc32(ops_blob(state.ops)), (
            f"{name} step {i}: weights CRC differs: "
            f"{first_blob_difference(run.blob, state.ops) if i == steps else 'see the last step'}"
        )
    diff = first_blob_difference(run.blob, state.ops)
    assert diff is None, f"{name}: {diff}"
    assert run.blob != initial, "the weights did not move: nothing was compared"
