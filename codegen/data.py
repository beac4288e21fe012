"""Data sets the client trains on: the bundled digits split, or a user's .npz file.

The host never unpickles user files: `np.load(..., allow_pickle=False)`. Every problem with a
user file is a `BadInput` whose message is one line saying what is wrong and what to do.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from tinysplit.host.errors import BadInput

NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")

#: Labels travel as u8 in SMASHED frames and sit in a `uint8_t` array on the board.
MAX_CLASSES = 256


@dataclass(frozen=True)
class Dataset:
    """A classification data set with float32 features [N, F] and integer labels [N]."""

    x_train: npt.NDArray[np.float32]
    y_train: npt.NDArray[np.int64]
    x_test: npt.NDArray[np.float32]
    y_test: npt.NDArray[np.int64]
    n_classes: int
    name: str

    @property
    def input_size(self) -> int:
        return int(self.x_train.shape[1])

    def save_npz(self, path: Path) -> None:
        """Writes the float data set in the format `load_npz` reads."""
        np.savez(
            path,
            x_train=self.x_train,
            y_train=self.y_train,
            x_test=self.x_test,
            y_test=self.y_test,
        )


def load_digits_split() -> Dataset:
    """scikit-learn's 8x8 digits, pixels scaled to [0, 1]: 1347 train / 450 test, stratified."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)
    y = digits.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=0.25, random_state=0, stratify=y
    )
    return Dataset(
        x_train=np.ascontiguousarray(x_train),
        y_train=np.ascontiguousarray(y_train),
        x_test=np.ascontiguousarray(x_test),
        y_test=np.ascontiguousarray(y_test),
        n_classes=10,
        name="digits",
    )


def load_npz(path: Path | str, n_classes: int | None = None) -> Dataset:
    """Reads `x_train, y_train, x_test, y_test` from a .npz file.

    x: floating [N, F], finite. y: integer [N], in [0, n_classes) when n_classes is given (the
    model's output size), else in [0, 256). n_classes of the result is the given one, or
    max label + 1.
    """
    path = Path(path)
    if not path.is_file():
        raise BadInput(f"data file {path} does not exist")
    with path.open("rb") as f:
        magic = f.read(4)
    if magic != b"PK\x03\x04":  # an .npz is a zip archive
        raise BadInput(
            f"{path}: not an .npz file; save one with np.savez(path, {', '.join(NPZ_KEYS)})"
        )
    try:
        with np.load(path, allow_pickle=False) as npz:
            missing = [k for k in NPZ_KEYS if k not in npz.files]
            if missing:
                raise BadInput(
                    f"{path}: missing array(s) {', '.join(missing)}; "
                    f"a data file needs {', '.join(NPZ_KEYS)}"
                )
            arrays = {k: npz[k] for k in NPZ_KEYS}
    except BadInput:
        raise
    except ValueError as e:
        if "allow_pickle" in str(e):
            raise BadInput(
                f"{path}: holds a pickled object array, which tinysplit does not load; "
                "save plain numeric arrays (np.savez with float x and integer y)"
            ) from None
        raise BadInput(f"{path}: not a readable .npz file ({e})") from None
    except (OSError, zipfile.BadZipFile, EOFError) as e:
        raise BadInput(f"{path}: not a readable .npz file ({e})") from None

    x_train = _features(path, "x_train", arrays["x_train"])
    x_test = _features(path, "x_test", arrays["x_test"])
    if x_train.shape[1] != x_test.shape[1]:
        raise BadInput(
            f"{path}: x_train has {x_train.shape[1]} features but x_test has {x_test.shape[1]}"
        )
    limit = MAX_CLASSES if n_classes is None else n_classes
    y_train = _labels(path, "y_train", arrays["y_train"], len(x_train), limit)
    y_test = _labels(path, "y_test", arrays["y_test"], len(x_test), limit)
    if n_classes is None:
        n_classes = int(max(y_train.max(), y_test.max())) + 1
    return Dataset(x_train, y_train, x_test, y_test, n_classes, path.stem)


def _features(path: Path, key: str, a: npt.NDArray[np.generic]) -> npt.NDArray[np.float32]:
    if not np.issubdtype(a.dtype, np.floating):
        raise BadInput(f"{path}: {key} has dtype {a.dtype}; features must be floating point")
    if a.ndim != 2 or a.shape[0] == 0 or a.shape[1] == 0:
        raise BadInput(
            f"{path}: {key} has shape {a.shape}; features must be [samples, features], non-empty"
        )
    x = np.ascontiguousarray(a, dtype=np.float32)
    if not np.isfinite(x).all():
        bad = int(np.argwhere(~np.isfinite(x))[0][0])
        raise BadInput(f"{path}: {key} has NaN or infinite values (first in sample {bad})")
    return x


def _labels(
    path: Path, key: str, a: npt.NDArray[np.generic], n: int, limit: int
) -> npt.NDArray[np.int64]:
    if not np.issubdtype(a.dtype, np.integer):
        raise BadInput(f"{path}: {key} has dtype {a.dtype}; labels must be integers")
    if a.ndim != 1 or a.shape[0] != n:
        raise BadInput(f"{path}: {key} has shape {a.shape}; expected [{n}], one label a sample")
    y = a.astype(np.int64)
    bad = np.flatnonzero((y < 0) | (y >= limit))
    if bad.size:
        i = int(bad[0])
        raise BadInput(
            f"{path}: {key}[{i}] = {int(y[i])} is out of range; labels must be in 0..{limit - 1}"
        )
    return np.ascontiguousarray(y)
