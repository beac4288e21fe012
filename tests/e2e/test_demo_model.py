"""`tinysplit demo --model FILE.keras --cut N --data FILE.npz`: a user's own model, written the
way Keras users write it (a [steps, channels] input, Conv1D, GlobalAveragePooling1D on the
client), exported, built, booted, split-trained and compared with its centralized baseline in
one command, on the board's own data shard."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np


def _model_and_data(tmp: Path) -> tuple[Path, Path]:
    import keras
    from keras import layers as L

    keras.utils.set_random_seed(3)
    model = keras.Sequential(
        [
            keras.Input((20, 3)),
            L.Conv1D(6, 3, activation="relu"),
            L.GlobalAveragePooling1D(),
            L.Dense(3),
        ],
        name="user_conv1d",
    )
    model.save(tmp / "user.keras")
    rng = np.random.default_rng(5)
    x = rng.normal(0.0, 1.0, (120, 20, 3)).astype(np.float32)
    y = x[:, :, :3].mean(axis=1).argmax(axis=1).astype(np.int64)
    np.savez(tmp / "user.npz", x_train=x[:90], y_train=y[:90], x_test=x[90:], y_test=y[90:])
    return tmp / "user.keras", tmp / "user.npz"


def test_demo_runs_a_users_model_and_compares_on_the_boards_shard(tmp_path: Path) -> None:
    model, data = _model_and_data(tmp_path)
    out = subprocess.run(
        [sys.executable, "-m", "tinysplit.host.cli", "demo", "--model", str(model),
         "--cut", "2", "--data", str(data), "--board", "native", "--epochs", "3",
         "--batch", "8", "--lr", "0.05", "--out", str(tmp_path / "demo"), "--json"],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    summary = json.loads(out.stdout)
    assert summary["board"] == "native" and summary["steps"] == 3 * (90 // 8 + 1)
    assert 0.0 <= summary["split_accuracy"] <= 1.0
    assert 0.0 <= summary["centralized_accuracy"] <= 1.0
    # the baseline trains on exactly what the board holds: the export's shard, not --data
    shard = tmp_path / "demo" / "export" / "data.npz"
    assert Path(summary["centralized_data"]) == shard
    manifest = json.loads((tmp_path / "demo" / "export" / "manifest.json").read_text())
    assert "avg_pool" in [op["kind"] for op in manifest["ops"]]  # the GAP runs on the board
    assert (tmp_path / "demo" / "training.png").is_file()
    # stderr: tinysplit's own progress lines only, no TensorFlow/absl logging
    assert "absl" not in out.stderr and "oneDNN" not in out.stderr
