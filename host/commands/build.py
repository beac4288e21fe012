"""`tinysplit build DIR --board B`: build the firmware for an export."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from tinysplit.core.boards import emulated_boards
from tinysplit.host.training.session import Export


def add_parser(sub: Any) -> None:
    p = sub.add_parser("build", help="build the firmware for an export")
    p.add_argument("model_dir", type=Path)
    p.add_argument("--board", default="mps2_an386")


def run(args: argparse.Namespace) -> None:
    from tinysplit.host.board.build import build_firmware

    export = Export.load(args.model_dir)
    image = build_firmware(args.board, export.path)
    print(f"built {image}")
    if args.board in emulated_boards():
        from tinysplit.host.board.linkmap import ram_flash_from_map

        m = ram_flash_from_map(image.with_suffix(".map"))
        print(
            f"RAM {m['ram_used']} B (data {m['data']} + bss {m['bss']} + stack {m['stack']}), "
            f"flash {m['flash_used']} B"
        )
