"""`tinysplit size` (host/board/size.py): the table and the JSON list, built from real linker
maps."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from tinysplit.core.errors import BadInput
from tinysplit.host.board import size
from tinysplit.host.commands import size as size_command


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="tinysplit")
    size_command.add_parser(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(["size", *argv])


def test_every_board_with_a_memory_budget_is_sized() -> None:
    boards = size.sized_boards()
    assert "native" not in boards
    assert {"nucleo_f446re", "nano33ble", "disco_f746ng", "pico", "mps2_an386"} <= set(boards)
    assert boards.index("pico") < boards.index("mps2_an386")  # real boards first


def test_size_json_lists_each_board(digits_export: Path, tmp_path: Path) -> None:
    args = parse("--board", "pico", "--board", "mps2_an385", "--model-dir", str(digits_export),
                 "--build-dir", str(tmp_path), "--json")  # fmt: skip
    rows = size_command.run(args)
    assert rows is not None and [r["board"] for r in rows] == ["pico", "mps2_an385"]
    for row in rows:
        assert set(row) == {"board", "ram_used", "ram_total", "flash_used", "flash_total"}
        assert (
            0 < row["ram_used"] <= row["ram_total"] and 0 < row["flash_used"] <= row["flash_total"]
        )
    assert rows[1]["ram_total"] == 96 * 1024  # mps2_an385 mimics an Arduino Due


def test_size_table(tmp_path: Path) -> None:
    rows = [
        size.BoardSize("pico", "cortex-m0plus", "hardware", 29_120, 270_336, 148_564, 2_097_152),
        size.BoardSize("tiny", "cortex-m0plus", "qemu", 40_000, 32_768, 1_000, 65_536),
    ]
    table = size.format_table(rows).splitlines()
    assert table[0].split()[:3] == ["board", "core", "kind"]
    assert "29,120 / 270,336" in table[1] and "10.8%" in table[1] and table[1].endswith("yes")
    assert table[2].endswith("NO") and "QEMU" in table[2]


def test_unknown_board_is_one_line() -> None:
    with pytest.raises(BadInput, match=r"^unknown board 'nope' for size: choose from "):
        size_command.run(parse("--board", "nope"))


def test_size_needs_a_board_or_all_boards() -> None:
    with pytest.raises(SystemExit):
        parse()
    assert parse("--all-boards").all_boards
