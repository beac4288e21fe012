"""platformio.ini and the Makefile build the same thing: for every real board, the same
sources, compile flags, link flags, linker script and post-link step. `pio project config`
runs offline (the platforms themselves cannot be downloaded here; CI builds with the Makefile).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tinysplit.core.boards import boards_run_by
from tinysplit.core.paths import source_root

REAL_BOARDS = boards_run_by("hardware")
PLATFORMS = {
    "disco_f746ng": "ststm32",
    "nano33ble": "nordicnrf52",
    "nucleo_f446re": "ststm32",
    "pico": "raspberrypi",
}
MAKE_VARS = [
    "CFLAGS",
    "INCLUDES",
    "ARCH",
    "LINKFLAGS",
    "LDSCRIPT",
    "CORE_SRCS",
    "APP_SRCS",
    "BOARD_SRCS",
    "BOARD_ASM",
    "POST_LINK",
]


def _pio() -> str:
    found = shutil.which("pio") or str(Path(sys.executable).with_name("pio"))
    if not Path(found).is_file():
        pytest.skip("platformio is not installed: pip install platformio (in the test extras)")
    return found


@pytest.fixture(scope="module")
def envs() -> dict[str, dict[str, Any]]:
    out = subprocess.run(
        [_pio(), "project", "config", "--json-output"],
        cwd=source_root(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    sections = json.loads(out.stdout)
    return {name[4:]: dict(options) for name, options in sections if name.startswith("env:")}


def make_vars(board: str) -> dict[str, list[str]]:
    out = subprocess.run(
        ["make", "-s", "-C", str(source_root()), f"BOARD={board}"]
        + [f"print-{v}" for v in MAKE_VARS],
        capture_output=True,
        text=True,
    )
    lines = out.stdout.splitlines()
    assert out.returncode == 0 and len(lines) == len(MAKE_VARS), out.stderr
    return {name: line.split() for name, line in zip(MAKE_VARS, lines, strict=True)}


def words(value: str | list[str]) -> list[str]:
    return " ".join(value if isinstance(value, list) else [value]).split()


def test_an_env_per_real_board(envs: dict[str, dict[str, Any]]) -> None:
    assert sorted(envs) == sorted(REAL_BOARDS)
    for board, env in envs.items():
        assert env["platform"] == PLATFORMS[board] and env["board"] == board
        assert "framework" not in env  # register level: our startup and board code only
        assert env["extra_scripts"] == ["pre:boards/pio_tinysplit.py"]
        assert (source_root() / "boards" / "pio_tinysplit.py").is_file()


@pytest.mark.parametrize("board", REAL_BOARDS)
def test_platformio_and_makefile_agree(board: str, envs: dict[str, dict[str, Any]]) -> None:
    from platformio.fs import match_src_files

    env = envs[board]
    make = make_vars(board)

    pio_sources = match_src_files(str(source_root()), words(env["build_src_filter"]), ["c", "S"])
    make_sources = make["CORE_SRCS"] + make["APP_SRCS"] + make["BOARD_SRCS"] + make["BOARD_ASM"]
    assert sorted(pio_sources) == sorted(make_sources)

    # Compile flags, include path included (the model folder comes from MODEL_DIR there and
    # the extra script here); the platforms' -Os and -lstdc++ are unflagged.
    assert sorted(words(env["build_flags"])) == sorted(make["CFLAGS"] + make["INCLUDES"])
    assert words(env["build_unflags"]) == ["-Os", "-lstdc++"]
    assert sorted(words(env["custom_link_flags"])) == sorted(make["ARCH"] + make["LINKFLAGS"])
    assert env["board_build.ldscript"] == " ".join(make["LDSCRIPT"])
    assert env.get("custom_post_link", "") == " ".join(make["POST_LINK"])
