"""`tinysplit check DIR`: the firmware's forward pass against TFLite Micro on the test shard."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from tinysplit.host.board.check import check_export


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "check", help="compare the firmware's forward pass with TFLite Micro on the test shard"
    )
    p.add_argument("model_dir", type=Path, help="the export directory")
    p.add_argument("--board", default="native", help="native (default) or mps2_an386 (QEMU)")
    p.add_argument("--json", action="store_true", help='print {"outputs": N, "mismatches": M}')


def run(args: argparse.Namespace) -> dict[str, int]:
    result = check_export(args.model_dir, args.board)
    if not args.json:
        if result.mismatches == 0:
            print(f"all {result.outputs} outputs match TFLite Micro")
        else:
            print(f"{result.mismatches} of {result.outputs} outputs differ from TFLite Micro:")
            for line in result.first:
                print(f"  {line}")
    return result.to_json()
