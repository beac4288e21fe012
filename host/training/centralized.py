"""The centralized float baseline: the whole model trained in Keras on the same data order.

Same initial weights (the export's full.keras), same minibatches
(tinysplit.host.training.schedule), same
loss and optimizer as the split run: the only difference is that the client layers run in float.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np
import numpy.typing as npt
import tensorflow as tf

from tinysplit.host.training.schedule import schedule


@dataclass
class BaselineResult:
    test_accuracy: float
    final_loss: float
    test_accuracy_per_epoch: list[float]


def train_centralized(
    full_model_path: Path,
    x_train: npt.NDArray[np.float32],
    y_train: npt.NDArray[np.int64],
    x_test: npt.NDArray[np.float32],
    y_test: npt.NDArray[np.int64],
    *,
    epochs: int,
    batch: int,
    lr: float,
    seed: int,
    max_steps: int | None = None,
) -> BaselineResult:
    """max_steps: stop after that many minibatches of the schedule, as a split run given
    --max-steps does, so that the two stay comparable."""
    from tinysplit.host.training.server import deterministic

    deterministic()  # the same maths as the split run's server segment
    model = keras.models.load_model(full_model_path, compile=False)
    optimizer = keras.optimizers.SGD(learning_rate=lr)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    def train_step(x: tf.Tensor, y: tf.Tensor) -> Any:
        with tf.GradientTape() as tape:
            loss = loss_fn(y, model(x, training=True))
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
        return loss

    def test_accuracy() -> float:
        logits = np.asarray(model(tf.constant(x_test), training=False))
        return float(np.mean(np.argmax(logits, axis=1) == y_test))

    step = tf.function(train_step, reduce_retracing=True)
    loss = float("nan")
    per_epoch: list[float] = []
    for n, s in enumerate(schedule(len(x_train), batch, epochs, seed)):
        if max_steps is not None and n >= max_steps:
            break
        if s.epoch != len(per_epoch):
            per_epoch.append(test_accuracy())
        loss = float(step(tf.constant(x_train[s.indices]), tf.constant(y_train[s.indices])))
    per_epoch.append(test_accuracy())
    return BaselineResult(per_epoch[-1], loss, per_epoch)


def export_baseline(
    export_dir: Path,
    *,
    epochs: int,
    batch: int,
    lr: float,
    seed: int,
    data: Path | None = None,
    max_steps: int | None = None,
) -> BaselineResult:
    """The baseline of an export: its full.keras trained centralized on its data shard
    (data.npz, or `data`) with the split run's epochs, batch, learning rate and seed. What
    `train`/`demo`/`simulate` and `bench` print next to the split accuracy."""
    from tinysplit.codegen.data import load_npz

    d = load_npz(data if data is not None else Path(export_dir) / "data.npz")
    return train_centralized(
        Path(export_dir) / "full.keras",
        d.x_train.astype(np.float32),
        d.y_train.astype(np.int64),
        d.x_test.astype(np.float32),
        d.y_test.astype(np.int64),
        epochs=epochs,
        batch=batch,
        lr=lr,
        seed=seed,
        max_steps=max_steps,
    )
