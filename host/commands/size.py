"""`tinysplit size`: build for boards and check RAM and flash against each board's budget."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from tinysplit.core.errors import BadInput, BuildError
from tinysplit.core.paths import build_root
from tinysplit.host.board.size import (
    REFERENCE_WORKLOAD,
    build_and_measure,
    format_table,
    sized_boards,
)


def add_parser(subparsers: Any) -> None:
    """Adds `size` to the CLI's subparsers (argparse's _SubParsersAction)."""
    p = subparsers.add_parser(
        "size", help="build the firmware for boards and check RAM and flash against each board"
    )
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument(
        "--all-boards", action="store_true", help="every board with a RAM/flash budget"
    )
    which.add_argument("--board", action="append", help="this board (repeatable)")
    p.add_argument(
        "--model-dir",
        type=Path,
        help=f"export to build (default: the bundled {REFERENCE_WORKLOAD}, exported first)",
    )
    p.add_argument(
        "--build-dir", type=Path, help="where the images go (default: build/size/<board>)"
    )
    p.add_argument("--json", action="store_true", help="print a JSON list, one object per board")


def run(args: argparse.Namespace) -> list[dict[str, Any]] | None:
    """`tinysplit size`: prints the table (or returns the JSON list); raises BuildError when a
    board's image does not build or fit."""
    board_names = sized_boards() if args.all_boards else list(args.board)
    known = set(sized_boards())
    unknown = [b for b in board_names if b not in known]
    if unknown:
        raise BadInput(
            f"unknown board {unknown[0]!r} for size: choose from {', '.join(sorted(known))}"
        )
    size_root = args.build_dir if args.build_dir is not None else build_root() / "size"
    model_dir = args.model_dir
    if model_dir is None:
        from tinysplit.codegen.export import export_client

        model_dir = size_root / "export"
        print(f"exporting {REFERENCE_WORKLOAD} to {model_dir} ...", file=sys.stderr, flush=True)
        export_client(REFERENCE_WORKLOAD, None, model_dir, seed=0)

    sizes, failed = build_and_measure(board_names, Path(model_dir), Path(size_root))
    if not args.json or failed:
        print(format_table(sizes), file=sys.stderr if args.json else sys.stdout)
    if failed:
        first, *others = failed
        more = f" (also {', '.join(others)}: see `tinysplit build`)" if others else ""
        raise BuildError(f"{failed[first]}{more}")
    too_big = [s.board for s in sizes if not s.fits]
    if too_big:
        raise BuildError(f"firmware does not fit board {', '.join(too_big)}: see the table above")
    return [s.to_json() for s in sizes] if args.json else None
