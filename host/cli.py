"""The `tinysplit` command line.

    tinysplit export MODEL --cut N --out DIR [--data FILE.npz]
    tinysplit build DIR [--board mps2_an386|native]
    tinysplit train (--port URL | --board BOARD) --model-dir DIR [--epochs N ...] [--json]
    tinysplit demo [--board mps2_an386] [--json]

Every error a user can cause prints one line (`error: ...`) and exits with status 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from tinysplit.host.errors import TinysplitError


def _add_hyper(p: argparse.ArgumentParser) -> None:
    p.add_argument("--epochs", type=int, help="epochs (default: the model's)")
    p.add_argument("--batch", type=int, help="minibatch size (default: the model's)")
    p.add_argument(
        "--lr", type=float, help="SGD learning rate, client and server (default: the model's)"
    )
    p.add_argument("--seed", type=int, help="seed of the data order (default: the model's)")
    p.add_argument("--max-steps", type=int, help="stop after this many steps (quick runs)")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    p.add_argument("--trace", action="store_true", help="print every frame with timing (stderr)")
    p.add_argument("--plot", type=Path, help="write loss/accuracy per epoch to this PNG")
    p.add_argument("--no-baseline", action="store_true", help="skip the centralized float baseline")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tinysplit",
        description="Split learning for microcontrollers: int8 client on the board, "
        "Keras server on this host.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("export", help="quantize the client layers and emit C + memory plan")
    p.add_argument(
        "model", help="a saved Keras model (.keras) or a bundled model name (digits-mlp)"
    )
    p.add_argument("--cut", type=int, help="number of client layers (default: the model's)")
    p.add_argument("--out", type=Path, required=True, help="output directory")
    p.add_argument("--data", type=Path, help="FILE.npz with x_train, y_train, x_test, y_test")
    p.add_argument("--seed", type=int, default=0, help="seed for the initial weights")
    p.add_argument("--json", action="store_true", help="print the memory plan as JSON")

    p = sub.add_parser("build", help="build the firmware for an export")
    p.add_argument("model_dir", type=Path)
    p.add_argument("--board", default="mps2_an386")

    p = sub.add_parser("train", help="split-train with a board")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--port", help="pyserial URL: /dev/ttyACM0, socket://HOST:PORT, a pty path")
    where.add_argument("--board", help="build and run a local board: native or mps2_an386 (QEMU)")
    p.add_argument("--model-dir", type=Path, required=True, help="the export directory")
    p.add_argument("--data", type=Path, help="FILE.npz for the centralized baseline")
    _add_hyper(p)

    p = sub.add_parser(
        "simulate", help="split-train with the golden model in-process instead of a board"
    )
    p.add_argument("--model-dir", type=Path, required=True, help="the export directory")
    p.add_argument("--data", type=Path, help="FILE.npz for the centralized baseline")
    p.add_argument(
        "--frozen-ranges",
        action="store_true",
        help="keep the export-time activation ranges (to measure what the running range buys)",
    )
    _add_hyper(p)

    p = sub.add_parser("demo", help="export, build, boot on the emulated M4 and split-train")
    p.add_argument("--workload", default="digits-mlp", help="bundled model (default digits-mlp)")
    p.add_argument("--board", default="mps2_an386", help="mps2_an386 (QEMU, default) or native")
    p.add_argument("--data", type=Path, help="FILE.npz instead of the bundled data")
    p.add_argument("--out", type=Path, default=Path("out/demo"), help="work directory")
    _add_hyper(p)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        from tinysplit.host import commands

        handler = getattr(commands, f"cmd_{args.command}")
        result: dict[str, Any] | None = handler(args)
        if getattr(args, "json", False) and result is not None:
            print(json.dumps(result, indent=2, sort_keys=True))
        return 0
    except TinysplitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
