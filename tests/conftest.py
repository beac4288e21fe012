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
