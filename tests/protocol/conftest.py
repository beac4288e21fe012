"""Fixtures for the protocol tests: the C codec through ctypes, and a sanitized C driver."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from wire_clib import ROOT, CLib

DRIVER_SRC = Path(__file__).with_name("frame_driver.c")


@pytest.fixture(scope="session")
def clib() -> CLib:
    """build/hostlib/libtinysplit.so, built once per session with `make hostlib`."""
    proc = subprocess.run(["make", "hostlib"], cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.fail(f"make hostlib failed:\n{proc.stdout}\n{proc.stderr}")
    return CLib(ROOT / "build" / "hostlib" / "libtinysplit.so")


@pytest.fixture(scope="session")
def asan_driver(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tests/protocol/frame_driver.c + firmware/protocol/*.c under ASan and UBSan."""
    if shutil.which("gcc") is None:
        pytest.skip("gcc not found")
    exe = tmp_path_factory.mktemp("asan") / "frame_driver"
    cmd = [
        "gcc",
        "-std=c11",
        "-g",
        "-O1",
        "-fsanitize=address,undefined",
        "-fno-sanitize-recover=all",
        "-fno-omit-frame-pointer",
        "-Wall",
        "-Wextra",
        "-Werror",
        f"-I{ROOT / 'firmware/include'}",
        f"-I{ROOT / 'firmware/protocol'}",
        *map(str, sorted((ROOT / "firmware/protocol").glob("*.c"))),
        str(DRIVER_SRC),
        "-o",
        str(exe),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.fail(f"building the sanitized driver failed:\n{proc.stderr}")
    return exe
