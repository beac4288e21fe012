"""Suite-wide options and fixtures.

Real-board tests are opt-in: `pytest --port /dev/ttyACM0 --board nucleo_f446re --model-dir DIR`
runs tests/e2e/test_real_board.py against a board flashed with firmware built from export DIR
(README, "A real board"). Everything else runs on the
native build or under QEMU.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--port", default=None, help="serial port of a real board (opt-in tests)")
    parser.addoption("--board", default=None, help="name of the real board on --port")
    parser.addoption("--model-dir", default=None, help="export the board on --port was built from")


@pytest.fixture(scope="session")
def digits_export(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The bundled digits-mlp model exported at its default cut, once per test session."""
    from tinysplit.codegen.export import export_client

    out = tmp_path_factory.mktemp("digits-export")
    export_client("digits-mlp", None, out, seed=0)
    yield out


@pytest.fixture(scope="session")
def nan_server_export(digits_export: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The digits export with a NaN in its server segment (a loss that is not finite), sealed
    again as `tinysplit export` would have sealed it (so that it loads: a hand edit does not)."""
    import json
    import shutil

    import keras
    import numpy as np

    from tinysplit.codegen.seal import PLACEHOLDER, hash_renderings, seal

    export = tmp_path_factory.mktemp("nan-server") / "export"
    shutil.copytree(digits_export, export)
    server = keras.models.load_model(export / "server.keras", compile=False)
    kernel = server.weights[0].numpy()
    kernel[0, 0] = np.nan
    server.weights[0].assign(kernel)
    server.save(export / "server.keras")
    manifest = json.loads((export / "manifest.json").read_text())
    old = bytes.fromhex(manifest["model_hash"])
    for name in ("model_data.c", "model_data.h"):
        text = (export / name).read_text()
        for real, zero in zip(hash_renderings(old), hash_renderings(PLACEHOLDER), strict=True):
            text = text.replace(real, zero)
        (export / name).write_text(text)
    seal(export, manifest)
    (export / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return export
