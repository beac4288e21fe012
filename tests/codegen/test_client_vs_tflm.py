"""The exported client, as the firmware gets it (model_data.c read back through the compiler),
run by the golden model is bit-exact with TFLite Micro running client.tflite."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from tflite_micro.python.tflite_micro import runtime

from tinysplit.core.golden import FCLayer, fc_forward


def _layer(c: dict[str, Any]) -> FCLayer:
    return FCLayer(
        in_features=c["in_features"],
        out_features=c["out_features"],
        relu=c["relu"],
        in_scale=c["in_scale"],
        in_zp=c["in_zp"],
        out_scale=c["out_scale"],
        out_zp=c["out_zp"],
        w=c["w"],
        bias=c["bias"],
        w_scale=c["w_scale"],
        out_mult=c["out_mult"],
        out_shift=c["out_shift"],
        master_w=c["master_w"],
        master_b=c["master_b"],
    )


def _tflm_outputs(tflite: bytes, xs: np.ndarray) -> np.ndarray:
    ip = runtime.Interpreter.from_bytes(tflite)
    out = []
    for x in xs:
        ip.set_input(x.reshape(1, -1), 0)
        ip.invoke()
        out.append(np.asarray(ip.get_output(0)).reshape(-1))
    return np.stack(out)


def _check_bit_exact(export: Path, dump: Any, xs: np.ndarray, split: str) -> None:
    want = _tflm_outputs((export / "client.tflite").read_bytes(), xs)
    layers = [_layer(c) for c in dump.layers]
    for i, x in enumerate(xs):
        y = x
        for layer in layers:
            y, _ = fc_forward(layer, y)
        if not np.array_equal(y, want[i]):
            diff = np.flatnonzero(y != want[i])
            raise AssertionError(
                f"{split} sample {i}: golden != TFLM at outputs {diff[:8].tolist()}: "
                f"golden {y[diff[:8]].tolist()} vs TFLM {want[i][diff[:8]].tolist()}"
            )


def test_golden_matches_tflm_on_every_test_sample(digits_export: Path, digits_dump: Any) -> None:
    assert len(digits_dump.test_x) == 450
    _check_bit_exact(digits_export, digits_dump, digits_dump.test_x, "test")


def test_golden_matches_tflm_on_training_samples(digits_export: Path, digits_dump: Any) -> None:
    _check_bit_exact(digits_export, digits_dump, digits_dump.train_x[:300], "train")
