"""The `tinysplit` command line.

    tinysplit export MODEL --cut N --out DIR [--data FILE.npz]
    tinysplit build DIR [--board mps2_an386|native]
    tinysplit train (--port URL | --board BOARD) --model-dir DIR [--epochs N ...] [--json]
    tinysplit train --resume RUN_DIR            continue a run where it stopped
    tinysplit demo [--board mps2_an386] [--json]
    tinysplit soak --seconds N [--board B] [--json]
    tinysplit check DIR [--board native|mps2_an386] [--json]
    tinysplit size (--all-boards | --board B ...) [--model-dir DIR] [--json]
    tinysplit bench [--quick] [--out DIR]       BENCHMARKS.md and BENCHMARKS.json
    tinysplit plan MODEL --board B [--baud N] [--plot FILE.png] [--json]   where to cut

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

from tinysplit.core.errors import TinysplitError
from tinysplit.core.tflog import native_stderr_off, show_native_logs


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


def _add_run(p: argparse.ArgumentParser) -> None:
    """Checkpointing and the link's patience: train and demo."""
    p.add_argument(
        "--run-dir",
        type=Path,
        help="where checkpoints go (default: runs/<model>-<date>-<time>; demo: OUT/run)",
    )
    p.add_argument(
        "--checkpoint-every",
        type=int,
        metavar="K",
        help="checkpoint every K steps (default 100; with --private 1); also on Ctrl-C",
    )
    p.add_argument(
        "--private",
        action="store_true",
        help="never copy the client's weights to this host (checkpoints hold the server side "
        "only; a board that reboots cannot be restored)",
    )
    p.add_argument(
        "--silence-timeout",
        type=float,
        metavar="S",
        help="give up when the board sends nothing for S seconds (default 10)",
    )


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
    where = p.add_mutually_exclusive_group()
    where.add_argument("--port", help="pyserial URL: /dev/ttyACM0, socket://HOST:PORT, a pty path")
    where.add_argument("--board", help="build and run a local board: native or mps2_an386 (QEMU)")
    p.add_argument("--model-dir", type=Path, help="the export directory")
    p.add_argument(
        "--resume",
        type=Path,
        metavar="RUN_DIR",
        help="continue the run checkpointed in RUN_DIR exactly where it stopped",
    )
    p.add_argument("--data", type=Path, help="FILE.npz for the centralized baseline")
    _add_hyper(p)
    _add_run(p)

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
    _add_run(p)

    p = sub.add_parser(
        "soak", help="train through a fault-injecting link, compare with a clean run"
    )
    p.add_argument("--seconds", type=float, default=60.0, help="how long to train (default 60)")
    p.add_argument("--board", default="native", help="native (default) or an emulated board")
    p.add_argument("--model-dir", type=Path, help="an export (default: digits-mlp, exported)")
    p.add_argument("--seed", type=int, default=0, help="seed of the faults and the data order")
    p.add_argument(
        "--fault-rate",
        type=float,
        default=0.01,
        help="probability of each frame fault (drop, duplicate, reorder, truncate, bit flip, "
        "garbage) per frame (default 0.01)",
    )
    p.add_argument(
        "--reset-rate",
        type=float,
        default=0.002,
        help="probability of a board reset per frame the host sends (default 0.002)",
    )
    p.add_argument("--json", action="store_true", help="print the report as one JSON object")

    # Commands that live in a module of their own register themselves.
    from tinysplit.host.bench import report as bench
    from tinysplit.host.board import check, size
    from tinysplit.host.planner import plan

    check.add_parser(sub)
    size.add_parser(sub)
    bench.add_parser(sub)
    plan.add_parser(sub)
    return parser


# Subcommands handled by a module of their own (add_parser/run) rather than commands.cmd_*.
MODULE_COMMANDS = ("check", "size", "bench", "plan")


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
        result: Any
        if args.command in MODULE_COMMANDS:
            import importlib

            module = {
                "check": "board.check",
                "size": "board.size",
                "bench": "bench.report",
                "plan": "planner.plan",
            }[args.command]
            result = importlib.import_module(f"tinysplit.host.{module}").run(args)
        else:
            from tinysplit.host import commands

            result = getattr(commands, f"cmd_{args.command}")(args)
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
