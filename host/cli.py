"""The `tinysplit` command line.

    tinysplit export MODEL --cut N --out DIR [--data FILE.npz]
    tinysplit build DIR [--board mps2_an386|native]
    tinysplit train (--port URL | --board BOARD) --model-dir DIR [--epochs N ...] [--json]
    tinysplit train --resume RUN_DIR            continue a run where it stopped
    tinysplit demo [--board mps2_an386] [--json]
    tinysplit infer (--board B | --port URL) --model-dir DIR --run RUN_DIR [--json]
    tinysplit export-model RUN_DIR --out DIR    one Keras model and one int8 .tflite
    tinysplit soak --seconds N [--board B] [--json]
    tinysplit check DIR [--board native|mps2_an386] [--json]
    tinysplit size (--all-boards | --board B ...) [--model-dir DIR] [--json]
    tinysplit bench [--quick] [--out DIR]       BENCHMARKS.md and BENCHMARKS.json
    tinysplit plan MODEL --board B [--baud N] [--plot FILE.png] [--json]   where to cut

Every error a user can cause prints one line (`error: ...`) and exits with status 2.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from collections.abc import Sequence
from typing import Any

from tinysplit.core.errors import TinysplitError
from tinysplit.core.tflog import native_stderr_off, show_native_logs
from tinysplit.host.commands import COMMANDS


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tinysplit",
        description="Split learning for microcontrollers: int8 client on the board, "
        "Keras server on this host.",
    )
    parser.add_argument(
        "--verbose",
        action="store_true",
        help="let TensorFlow's and other native libraries' log lines through to stderr",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    for name in COMMANDS:
        _command(name).add_parser(sub)
    return parser


def _command(name: str) -> Any:
    return importlib.import_module(f"tinysplit.host.commands.{name.replace('-', '_')}")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.verbose:
        show_native_logs()
    elif argv is None:
        # A process of its own (the console script, python -m): TensorFlow's native log lines
        # stay off the terminal on every CPU. Tests that call main(argv) keep their streams.
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        native_stderr_off()
    try:
        result = _command(args.command).run(args)
        if getattr(args, "json", False) and result is not None:
            print(json.dumps(result, indent=2, sort_keys=True))
        return 0
    except TinysplitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        detail = f": {exc}" if str(exc) else ""
        print(f"error: interrupted{detail}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
