"""Data sets: the bundled digits split and user .npz files (one-line BadInput for bad ones)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tinysplit.codegen.data import load_digits_split, load_npz
from tinysplit.core.errors import BadInput


def test_digits_split() -> None:
    d = load_digits_split()
    assert d.x_train.shape == (1347, 64) and d.x_test.shape == (450, 64)
    assert d.x_train.dtype == np.float32
    assert d.x_train.min() == 0.0 and d.x_train.max() == 1.0
    assert d.n_classes == 10 and set(np.unique(d.y_test)) == set(range(10))
    again = load_digits_split()
    assert np.array_equal(d.x_train, again.x_train) and np.array_equal(d.y_test, again.y_test)


def test_load_npz(small_npz: Path, small_arrays: dict[str, Any]) -> None:
    d = load_npz(small_npz)
    assert d.x_train.shape == (60, 16) and d.y_test.shape == (20,)
    assert d.n_classes == int(max(small_arrays["y_train"].max(), small_arrays["y_test"].max())) + 1
    assert load_npz(small_npz, n_classes=5).n_classes == 5


def _bad(tmp_path: Path, arrays: dict[str, Any], **changes: Any) -> Path:
    arrays = {**arrays, **changes}
    arrays = {k: v for k, v in arrays.items() if v is not None}
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"y_test": None}, "missing array(s) y_test"),
        ({"x_train": np.array([[1, 2]] * 60, dtype=object)}, "pickled object array"),
        ({"x_test": np.full((20, 16), np.nan, dtype=np.float32)}, "NaN"),
        ({"x_train": np.zeros((60, 16), dtype=np.int32)}, "floating point"),
        ({"y_train": np.zeros(60, dtype=np.float32)}, "labels must be integers"),
        ({"y_train": np.zeros(59, dtype=np.int64)}, "expected [60]"),
        ({"x_test": np.zeros((20, 15), dtype=np.float32)}, "but x_test samples are (15,)"),
        ({"x_train": np.zeros((60, 2, 2, 2, 2), dtype=np.float32)}, "[samples, features]"),
        ({"y_test": np.full(20, -1)}, "y_test[0] = -1 is out of range"),
    ],
)
def test_bad_npz(
    tmp_path: Path, small_arrays: dict[str, Any], changes: dict[str, Any], message: str
) -> None:
    path = _bad(tmp_path, small_arrays, **changes)
    with pytest.raises(BadInput) as e:
        load_npz(path)
    assert message in str(e.value)
    assert "\n" not in str(e.value)


def test_label_beyond_the_model_outputs(small_npz: Path) -> None:
    with pytest.raises(BadInput, match=r"labels must be in 0\.\.1"):
        load_npz(small_npz, n_classes=2)


def test_missing_and_garbage_files(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="does not exist"):
        load_npz(tmp_path / "nope.npz")
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip file at all")
    with pytest.raises(BadInput, match=r"not an \.npz file"):
        load_npz(junk)
