"""The server segment: the Keras layers after the cut, their loss, backward pass and optimizer."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import numpy as np
import numpy.typing as npt
import tensorflow as tf


def deterministic() -> None:
    """Same inputs, same bits: TensorFlow's deterministic kernels. A step run again after a
    recovery or a resume must give the weights it gave the first time (tests/robust), and an
    in-process run must give a board run's (tinysplit simulate, tinysplit bench). Every server
    segment and the centralized baseline switch it on; it is process-wide and idempotent."""
    tf.config.experimental.enable_op_determinism()


class ServerSegment:
    """Runs the layers after the cut. `train_step` returns the loss and dL/d(cut activations)."""

    def __init__(self, model: keras.Model, lr: float) -> None:
        deterministic()
        self.model = model
        self.optimizer = keras.optimizers.SGD(learning_rate=lr)
        self.loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        self._step = tf.function(self._train_step, reduce_retracing=True)
        self._predict = tf.function(lambda a: self.model(a, training=False), reduce_retracing=True)
        self._pending: tuple[Any, Any, Any] | None = None

    @classmethod
    def load(cls, path: Path, lr: float) -> ServerSegment:
        return cls(keras.models.load_model(path, compile=False), lr)

    def _train_step(self, a: tf.Tensor, y: tf.Tensor) -> tuple[Any, Any, Any]:
        with tf.GradientTape() as tape:
            tape.watch(a)
            logits = self.model(a, training=True)
            loss = self.loss_fn(y, logits)
        grads = tape.gradient(loss, [a, *self.model.trainable_variables])
        self.optimizer.apply_gradients(zip(grads[1:], self.model.trainable_variables, strict=True))
        return loss, grads[0], logits

    def train_step(
        self, a: npt.NDArray[np.float32], y: npt.NDArray[np.int64]
    ) -> tuple[float, npt.NDArray[np.float32], npt.NDArray[np.float32]]:
        """One minibatch: forward, mean loss, backward, SGD. Returns (loss, dL/da, logits)."""
        loss, grad_a, logits = self._step(tf.constant(a), tf.constant(y))
        return float(loss), np.asarray(grad_a, dtype=np.float32), np.asarray(logits)

    def predict(self, a: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        return np.asarray(self._predict(tf.constant(a)))

    # ---- U-shaped (--labels client): the board holds the last layer and the loss ----------

    def forward(self, a: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """The segment's outputs for one minibatch, in training mode, for the board's head.
        The tape stays open until backward() brings the gradient of those outputs: one
        forward pass, whatever the layers do in training mode."""
        a_t = tf.constant(a)
        tape = tf.GradientTape()
        with tape:
            tape.watch(a_t)
            out = self.model(a_t, training=True)
        self._pending = (tape, a_t, out)
        return np.asarray(out, dtype=np.float32)

    def backward(self, grad_out: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """From the gradient of the mean loss with respect to forward()'s outputs: SGD on the
        segment, and returns dL/d(cut activations)."""
        assert self._pending is not None, "forward() first"
        tape, a_t, out = self._pending
        self._pending = None
        variables = self.model.trainable_variables
        grads = tape.gradient(out, [a_t, *variables], output_gradients=tf.constant(grad_out))
        self.optimizer.apply_gradients(zip(grads[1:], variables, strict=True))
        return np.asarray(grads[0], dtype=np.float32)
