"""Build the firmware for a board with the repo's Makefile (`make BOARD=... MODEL_DIR=...`)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from tinysplit.core.boards import boards
from tinysplit.core.errors import BuildError, ToolMissing
from tinysplit.core.paths import build_root, source_root

# What scripts/setup.sh installs for each program the build runs (named in ToolMissing).
_PACKAGES = {
    "arm-none-eabi-gcc": "gcc-arm-none-eabi and libnewlib-arm-none-eabi",
    "gcc": "gcc",
    "make": "make",
}
# The build rules, relative to the source root (firmware/ and boards/ side by side).
MAKEFILE = "firmware/firmware.mk"
# Lines of compiler/linker output kept in a BuildError after its first line.
_MAX_LOG_LINES = 40


def _require_tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        what = _PACKAGES.get(name, name)
        raise ToolMissing(f"{name} not found: run scripts/setup.sh (installs {what})")
    return found


def _make_vars(board: str, make: str, variables: Mapping[str, str]) -> dict[str, str]:
    """Asks the Makefile (with board.mk) for variables, e.g. CC and TARGET."""
    args = [f"{k}={v}" for k, v in variables.items()]
    wanted = ["CC", "TARGET"]
    result = subprocess.run(
        [make, "-s", "-C", str(source_root()), "-f", MAKEFILE, f"BOARD={board}", *args]
        + [f"print-{name}" for name in wanted],
        capture_output=True,
        text=True,
        check=False,
    )
    lines = result.stdout.splitlines()
    if result.returncode != 0 or len(lines) != len(wanted):
        raise BuildError(
            f"cannot read the build settings of board {board!r} (boards/{board}/board.mk): "
            f"fix that file\n{_tail(result.stderr + result.stdout)}"
        )
    return dict(zip(wanted, (line.strip() for line in lines), strict=True))


def _tail(log: str) -> str:
    lines = [line for line in log.splitlines() if line.strip()]
    return "\n".join(lines[-_MAX_LOG_LINES:])


def _explain_failure(board: str, log: str) -> str:
    """First line of a BuildError: what failed and what to do."""
    overflow = re.search(r"region `(\w+)' overflowed by (\d+) bytes", log)
    if overflow:
        region, excess = overflow.groups()
        return (
            f"firmware does not fit board {board}: {region} overflowed by {excess} bytes; "
            "use a smaller model or batch, or a board with more memory"
        )
    ours = re.search(r"tinysplit: (.+)", log)
    if ours:
        return f"firmware for board {board} did not link: {ours.group(1).strip()}"
    if re.search(r"undefined reference to|cannot find -l|ld returned", log):
        return f"firmware for board {board} did not link: see the linker output below"
    return f"firmware for board {board} did not compile: fix the first error below"


def build_firmware(
    board: str,
    model_dir: Path | None,
    build_dir: Path | None = None,
    sanitize: bool = False,
    *,
    make_vars: Mapping[str, str] | None = None,
) -> Path:
    """Builds the firmware for `board` with the model sources in `model_dir`; returns the image.

    Runs `make -C <source root> -f firmware/firmware.mk BOARD=board MODEL_DIR=model_dir
    BUILD_DIR=build_dir` quietly. The default build_dir is <build root>/<board>
    (core.paths.build_root; <board>-san with sanitize). make_vars adds or
    overrides Makefile variables (tests build their own app with APP_SRCS=..., CORE_SRCS=).
    Raises ToolMissing when make or the board's compiler is not installed, BuildError when the
    build fails (first line: what and what to do, then the compiler's output).
    """
    root = source_root()
    if not (root / "boards" / board / "board.mk").is_file():
        raise BuildError(f"unknown board {board!r}: choose one of {', '.join(boards())}")
    if build_dir is None:
        build_dir = build_root() / (board + ("-san" if sanitize else ""))
    build_dir = Path(build_dir).resolve()

    # PYTHON runs a board's post-link step (boards/pico/boot2_crc.py): this interpreter.
    variables: dict[str, str] = {"BUILD_DIR": str(build_dir), "PYTHON": sys.executable}
    if model_dir is not None:
        variables["MODEL_DIR"] = str(Path(model_dir).resolve())
    if sanitize:
        variables["SANITIZE"] = "1"
    variables.update(make_vars or {})

    make = _require_tool("make")
    settings = _make_vars(board, make, variables)
    _require_tool(settings["CC"])

    jobs = str(os.cpu_count() or 1)
    result = subprocess.run(
        [make, "-s", f"-j{jobs}", "-C", str(root), "-f", MAKEFILE, f"BOARD={board}"]
        + [f"{k}={v}" for k, v in variables.items()],
        capture_output=True,
        text=True,
        check=False,
    )
    log = result.stderr + result.stdout
    if result.returncode != 0:
        if "nano.specs" in log:
            raise ToolMissing(
                "newlib for arm-none-eabi not found: run scripts/setup.sh "
                "(installs libnewlib-arm-none-eabi)"
            )
        raise BuildError(f"{_explain_failure(board, log)}\n{_tail(log)}")
    image = build_dir / settings["TARGET"]
    if not image.is_file():
        raise BuildError(f"make succeeded but {image} is missing: check TARGET in boards/{board}")
    return image
