"""Fixtures for the robustness tests: firmware images built once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from tinysplit.host.board.build import build_firmware


@pytest.fixture(scope="session")
def robust_native(digits_export: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_firmware("native", digits_export, tmp_path_factory.mktemp("robust-native"))


@pytest.fixture(scope="session")
def robust_qemu(digits_export: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_firmware("mps2_an386", digits_export, tmp_path_factory.mktemp("robust-an386"))
