"""Firmware images for the end-to-end tests, built once per session from the digits export."""

from __future__ import annotations

from pathlib import Path

import pytest

from tinysplit.host.board.build import build_firmware


@pytest.fixture(scope="session")
def native_image(digits_export: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_firmware("native", digits_export, tmp_path_factory.mktemp("build-native"))


@pytest.fixture(scope="session")
def qemu_image(digits_export: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_firmware("mps2_an386", digits_export, tmp_path_factory.mktemp("build-an386"))
