"""`tinysplit size`: build the firmware for boards and check that its RAM and flash, read from
the linker map, fit each board.

    tinysplit size --all-boards [--model-dir DIR] [--json]
    tinysplit size --board pico --board nano33ble

Without --model-dir the bundled reference workload (digits-mlp at its default cut) is exported
first. A board whose image does not fit fails to link (the linker script's regions and checks):
the table shows the boards that fit, then the command fails naming the others.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tinysplit.core.errors import BadInput, BuildError

REFERENCE_WORKLOAD = "digits-mlp"


@dataclass(frozen=True)
class BoardSize:
    """Bytes an image uses (from its linker map) and the board has (from its profile)."""

    board: str
    core: str
    kind: str  # "hardware" or "qemu"
    ram_used: int
    ram_total: int
    flash_used: int
    flash_total: int

    @property
    def fits(self) -> bool:
        return self.ram_used <= self.ram_total and self.flash_used <= self.flash_total

    def to_json(self) -> dict[str, Any]:
        return {
            "board": self.board,
            "ram_used": self.ram_used,
            "ram_total": self.ram_total,
            "flash_used": self.flash_used,
            "flash_total": self.flash_total,
        }


def sized_boards() -> list[str]:
    """Boards with a RAM and flash budget (all but native): real boards first, then emulated."""
    from tinysplit.core.boards import boards_run_by

    return boards_run_by("hardware") + boards_run_by("qemu")


def measure(board: str, image: Path) -> BoardSize:
    """Reads <image>.map (ld -Map) and the board's profile."""
    from tinysplit.core.boards import board_profile
    from tinysplit.host.board.linkmap import ram_flash_from_map

    profile = board_profile(board)
    if profile.get("ram_bytes") is None or profile.get("flash_bytes") is None:
        raise BadInput(f"board {board} has no RAM/flash budget (profile.json): nothing to size")
    usage = ram_flash_from_map(Path(image).with_suffix(".map"))
    return BoardSize(
        board=board,
        core=str(profile["core"]),
        kind=str(profile["launcher"]),
        ram_used=usage["ram_used"],
        ram_total=int(profile["ram_bytes"]),
        flash_used=usage["flash_used"],
        flash_total=int(profile["flash_bytes"]),
    )


def build_and_measure(
    board_names: Iterable[str], model_dir: Path, build_root: Path
) -> tuple[list[BoardSize], dict[str, str]]:
    """Builds each board into build_root/<board>; returns the sizes and, per board that failed
    to build or link, the first line of its error."""
    from tinysplit.host.board.build import build_firmware

    sizes: list[BoardSize] = []
    failed: dict[str, str] = {}
    for board in board_names:
        try:
            image = build_firmware(board, model_dir, build_root / board)
        except BuildError as error:
            failed[board] = str(error).splitlines()[0]
            continue
        sizes.append(measure(board, image))
    return sizes, failed


def _pct(used: int, total: int) -> str:
    return f"{100.0 * used / total:5.1f}%"


def format_table(sizes: Iterable[BoardSize]) -> str:
    """One line per board: RAM and flash used of total, and whether it fits."""
    rows = [("board", "core", "kind", "RAM used / total", "", "flash used / total", "", "fits")]
    for s in sizes:
        rows.append(
            (
                s.board,
                s.core,
                "real" if s.kind == "hardware" else "QEMU",
                f"{s.ram_used:,} / {s.ram_total:,}",
                _pct(s.ram_used, s.ram_total),
                f"{s.flash_used:,} / {s.flash_total:,}",
                _pct(s.flash_used, s.flash_total),
                "yes" if s.fits else "NO",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    right = {3, 4, 5, 6}
    lines = []
    for row in rows:
        cells = [
            cell.rjust(width) if i in right else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)
