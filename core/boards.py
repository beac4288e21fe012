"""The board registry: one folder per board under boards/, described by its profile.json.

profile.json: name, core, clock_hz, ram_bytes, flash_bytes (None: no limit, native), uart_baud,
launcher ("native", "qemu" with qemu_machine, or "hardware": a real board on a serial port),
target (the image file). A real board whose very image QEMU also runs says on which machine:
"image_runs_on": {"qemu_machine": ..., "uart": the machine's serial port index of its UART}.
Adding a board is one folder; nothing else lists boards.
"""

from __future__ import annotations

import functools
import json
from typing import Any

from tinysplit.core.errors import BuildError
from tinysplit.core.paths import source_root


@functools.cache
def boards() -> tuple[str, ...]:
    """Board names: the folders under boards/ that have a board.mk and a profile.json."""
    root = source_root() / "boards"
    return tuple(
        sorted(
            p.parent.name for p in root.glob("*/board.mk") if (p.parent / "profile.json").is_file()
        )
    )


@functools.cache
def _profile(board: str) -> dict[str, Any]:
    profile: dict[str, Any] = json.loads(
        (source_root() / "boards" / board / "profile.json").read_text()
    )
    return profile


def board_profile(board: str) -> dict[str, Any]:
    """boards/<board>/profile.json (a copy); BuildError naming the boards for an unknown one."""
    if board not in boards():
        raise BuildError(f"unknown board {board!r}: choose one of {', '.join(boards())}")
    return dict(_profile(board))


def profile_named(name: str) -> dict[str, Any] | None:
    """The profile of the board that reports `name` in HELLO (profile.json "name"), if any."""
    for b in boards():
        if _profile(b).get("name") == name:
            return dict(_profile(b))
    return None


def boards_run_by(launcher: str) -> list[str]:
    """The boards whose profile.json says launcher (native, qemu, hardware)."""
    return [b for b in boards() if _profile(b).get("launcher") == launcher]


def emulated_boards() -> dict[str, str]:
    """Board -> the QEMU machine that runs it here (profile.json "qemu_machine")."""
    return {b: str(_profile(b)["qemu_machine"]) for b in boards_run_by("qemu")}


def image_emulators() -> dict[str, tuple[str, int]]:
    """Real board -> (QEMU machine, serial port index) that runs its own image, unchanged
    (profile.json "image_runs_on"): the image a user flashes, booted in CI."""
    out = {}
    for b in boards_run_by("hardware"):
        runs_on = _profile(b).get("image_runs_on")
        if runs_on:
            out[b] = (str(runs_on["qemu_machine"]), int(runs_on.get("uart", 0)))
    return out


def local_boards() -> tuple[str, ...]:
    """Boards this machine runs without hardware: native, then the emulated ones."""
    return (*boards_run_by("native"), *emulated_boards())
