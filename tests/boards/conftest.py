"""Echo-app images for the board tests, built once per session."""

from __future__ import annotations

from pathlib import Path

import pytest
from echo_support import build_echo


@pytest.fixture(scope="session")
def echo_images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """board name -> echo app image (native executable, mps2_an386 ELF)."""
    return {
        board: build_echo(board, tmp_path_factory.mktemp(f"echo-{board}"))
        for board in ("native", "mps2_an386")
    }
