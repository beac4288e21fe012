"""`tinysplit export-model`: a trained split model joined into one model for a board that runs
it alone — one Keras model (the client's trained float32 master weights, the server segment's
weights) and one full-integer int8 .tflite converted from it (quantized once more, calibrated on
the export's training shard), with both test accuracies next to the split model's."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from tinysplit.core.errors import BadInput

#: Training samples the int8 conversion calibrates on (what `tinysplit export` uses).
CALIBRATION_SAMPLES = 256


def keras_kernel(master_w: npt.NDArray[np.float32], kind: str, shape: Sequence[int]) -> Any:
    """A master copy in TFLite's filter layout back in the Keras layer's kernel layout (the
    inverse of codegen.client_ops._master_kernel)."""
    m = np.asarray(master_w, np.float32)
    if kind == "dense":  # [C, K] -> [K, C]
        k = m.reshape(shape[1], shape[0]).T
    elif kind == "conv":  # [Cout, KH, KW, Cin] -> [KH, KW, Cin, Cout]
        k = m.transpose(1, 2, 3, 0)
    else:  # depthwise [1, KH, KW, C] -> [KH, KW, C, 1]
        k = m[0][..., None]
    return np.ascontiguousarray(k.reshape(tuple(shape)))


@dataclass
class FullModel:
    model: Any  # keras.Model: flat int8-quantizable input of the export, logits out
    tflite: bytes
    keras_accuracy: float
    tflite_accuracy: float


def join(export_dir: Path, client_state: bytes, server_weights: list[npt.NDArray[Any]]) -> Any:
    """The whole model with a run's trained weights: the export's folded client layers with the
    master copies of the state image, then the server segment with the run's weights (and, for
    a U-shaped export, the board's head from the state image last)."""
    import keras

    from tinysplit.codegen.client_ops import _kind, fold_client
    from tinysplit.codegen.export import chain_layers, load_client_state, quiet
    from tinysplit.core.golden import ConvLayer, FCLayer
    from tinysplit.host.training.weights import load_state_image

    manifest_cut = int(_manifest(export_dir)["cut"])
    with quiet():
        net = keras.models.load_model(export_dir / "full.keras", compile=False)
        server = keras.models.load_model(export_dir / "server.keras", compile=False)
    layers, cut = fold_client(chain_layers(net), manifest_cut)
    state = load_client_state(export_dir)
    ops = state.ops
    load_state_image(state.layers, client_state)
    trained = iter(op for op in ops if isinstance(op, FCLayer | ConvLayer))
    for layer in layers[:cut]:
        kind = _kind(layer)
        if kind not in ("dense", "conv", "depthwise"):
            continue
        op = next(trained)
        kernel = keras_kernel(op.master_w, kind, tuple(layer.kernel.shape))
        layer.set_weights([kernel, np.asarray(op.master_b, np.float32).reshape(-1)])
    targets = list(server.weights)
    if len(targets) != len(server_weights) or any(
        tuple(t.shape) != a.shape for t, a in zip(targets, server_weights, strict=True)
    ):
        raise BadInput("the run's server weights do not fit the export's server.keras")
    for t, a in zip(targets, server_weights, strict=True):
        t.assign(a)
    size = int(np.prod(net.inputs[0].shape[1:]))
    client_out: list[Any] = [*layers[:cut]]
    probe = keras.Sequential([keras.Input((size,)), *client_out])
    if len(probe.outputs[0].shape) > 2:
        client_out.append(keras.layers.Flatten(name="tinysplit_cut_flat"))
    tail: list[Any] = []
    if state.head is not None:  # U-shaped: the last Dense trained on the board
        head_layer = layers[-1]
        kernel = keras_kernel(state.head.master_w, "dense", tuple(head_layer.kernel.shape))
        head_layer.set_weights([kernel, state.head.master_b][: len(head_layer.get_weights())])
        tail = [head_layer]
    return keras.Sequential(
        [keras.Input((size,)), *client_out, server, *tail], name="tinysplit_full"
    )


def _manifest(export_dir: Path) -> dict[str, Any]:
    import json

    manifest: dict[str, Any] = json.loads((export_dir / "manifest.json").read_text())
    return manifest


def tflite_accuracy(tflite: bytes, x: npt.NDArray[np.float32], y: npt.NDArray[Any]) -> float:
    """Test accuracy of a full-integer model in the TFLite Micro interpreter."""
    from tinysplit.codegen.export import quantize_input
    from tinysplit.codegen.tflite_reader import read_io_quant
    from tinysplit.host.board.check import tflm_outputs

    (scale, zp), _ = read_io_quant(tflite)
    logits = tflm_outputs(tflite, quantize_input(x, scale, zp))
    return float(np.mean(np.argmax(logits, axis=1) == np.asarray(y)))


def tflm_arena_bytes(tflite: bytes) -> int:
    """The tensor arena TFLite Micro allocates for the model: its own recording allocator's
    total, read from what the interpreter prints (on this 64-bit host: its pointers make the
    structs larger than on a Cortex-M, so this is a slight upper bound)."""
    import ctypes
    import os
    import re
    import sys
    import tempfile

    from tflite_micro.python.tflite_micro import runtime

    interpreter = runtime.Interpreter.from_bytes(tflite)
    libc = ctypes.CDLL(None)
    sys.stdout.flush()
    sys.stderr.flush()
    with tempfile.TemporaryFile() as log:
        saved = [os.dup(1), os.dup(2)]
        try:
            os.dup2(log.fileno(), 1)
            os.dup2(log.fileno(), 2)
            interpreter.print_allocations()
            libc.fflush(None)  # C stdio buffers what it prints to a file
        finally:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)
        log.seek(0)
        text = log.read().decode(errors="replace")
    found = re.search(r"Arena allocation total (\d+) bytes", text)
    if found is None:
        raise BadInput("TFLite Micro did not report its arena size for the joined model")
    return int(found.group(1))


def board_fit(tflite: bytes, board: str | None) -> dict[str, Any]:
    """Whether the whole int8 model runs alone on `board` (the export's): the tensor arena
    against its RAM, the .tflite against its flash. TFLite Micro's own code and the
    application's stack are not counted (about 30-60 KB of flash, a few KB of RAM)."""
    arena = tflm_arena_bytes(tflite)
    out: dict[str, Any] = {"arena_bytes": arena, "model_bytes": len(tflite), "board": board}
    if board is None:
        return out
    from tinysplit.core.boards import board_profile

    profile = board_profile(board)
    ram, flash = profile.get("ram_bytes"), profile.get("flash_bytes")
    out["ram_bytes"], out["flash_bytes"] = ram, flash
    out["fits"] = (ram is None or arena <= int(ram)) and (
        flash is None or len(tflite) <= int(flash)
    )
    return out


def export_full_model(
    export_dir: Path, client_state: bytes, server_weights: list[npt.NDArray[Any]], seed: int = 0
) -> FullModel:
    from tinysplit.codegen.data import load_npz
    from tinysplit.codegen.export import convert_int8

    model = join(export_dir, client_state, server_weights)
    data = load_npz(export_dir / "data.npz")
    x_train = np.asarray(data.x_train, np.float32).reshape(len(data.x_train), -1)
    x_test = np.asarray(data.x_test, np.float32).reshape(len(data.x_test), -1)
    rng = np.random.default_rng(seed)
    calib = x_train[rng.permutation(len(x_train))[:CALIBRATION_SAMPLES]]
    tflite = convert_int8(model, calib)
    logits = np.asarray(model(x_test, training=False))
    keras_acc = float(np.mean(np.argmax(logits, axis=1) == data.y_test))
    return FullModel(model, tflite, keras_acc, tflite_accuracy(tflite, x_test, data.y_test))
