"""Reference models bundled with tinysplit, by name, and loading of a user's saved Keras model.

Each bundled model records its default cut, its data set and the hyperparameters of the
reference run, so `tinysplit export digits-mlp` needs no other argument.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tinysplit.codegen.data import Dataset, load_digits_split
from tinysplit.host.errors import BadInput

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


REGISTRY: dict[str, ModelSpec] = {
    "digits-mlp": ModelSpec(
        name="digits-mlp",
        build=_digits_mlp,
        default_cut=1,
        dataset=load_digits_split,
        hyperparameters=Hyperparameters(batch=32, lr=0.1, epochs=40, seed=0),
        description="64-32-32-10 MLP on scikit-learn's 8x8 digits (logits out)",
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
    import keras

    try:
        model = keras.saving.load_model(path, compile=False)
    except Exception as e:  # Keras raises many kinds for a bad archive
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise BadInput(f"cannot load Keras model {path}: {first}") from None
    if not isinstance(model, keras.Model):
        raise BadInput(f"{path} does not hold a Keras model")
    return model
