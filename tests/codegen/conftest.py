"""Fixtures of the codegen tests: the digits export compiled and read back through C."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from cgen_support import Dumped, dump_model_data, small_dataset


@pytest.fixture(scope="session")
def digits_dump(digits_export: Path, tmp_path_factory: pytest.TempPathFactory) -> Dumped:
    return dump_model_data(digits_export, tmp_path_factory.mktemp("dump"))


@pytest.fixture(scope="session")
def digits_manifest(digits_export: Path) -> dict[str, Any]:
    manifest: dict[str, Any] = json.loads((digits_export / "manifest.json").read_text())
    return manifest


@pytest.fixture
def small_arrays() -> dict[str, Any]:
    """A synthetic 16-feature, 3-class data set (60 train / 20 test), as npz arrays."""
    return small_dataset()


@pytest.fixture
def small_npz(tmp_path: Path, small_arrays: dict[str, Any]) -> Path:
    path = tmp_path / "small.npz"
    np.savez(path, **small_arrays)
    return path
