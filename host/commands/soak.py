"""`tinysplit soak --seconds N`: train through a fault-injecting link, compare with a clean run."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from tinysplit.core.errors import BadInput, TinysplitError
from tinysplit.host.commands.runs import RunOptions, say


def add_parser(sub: Any) -> None:
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
        "garbage) per frame (default 0.02)",
    )
    p.add_argument(
        "--reset-rate",
        type=float,
        default=0.002,
        help="probability of a board reset per frame the host sends (default 0.002)",
    )
    p.add_argument("--json", action="store_true", help="print the report as one JSON object")


def run(args: argparse.Namespace) -> None:
    """Prints the report (also when the soak failed, then one error line and status 2)."""
    from tinysplit.host.training.soak import format_report, soak

    if not args.seconds > 0:
        raise BadInput("--seconds must be > 0")
    for name, rate in (("--fault-rate", args.fault_rate), ("--reset-rate", args.reset_rate)):
        if not 0.0 <= rate <= 1.0:
            raise BadInput(f"{name} {rate:g} is not a probability: give a number in 0..1")
    opts = RunOptions(json=args.json)
    report = soak(
        args.seconds,
        args.board,
        args.model_dir,
        seed=args.seed,
        fault_rate=args.fault_rate,
        reset_rate=args.reset_rate,
        say=lambda text: say(opts, text),
    )
    if args.json:
        print(json.dumps(report, indent=2, sort_keys=True))
    else:
        print(format_report(report))
    if report["lost"] or not report["weights_identical"]:
        raise TinysplitError(
            f"the soak lost {report['lost']} steps"
            + ("" if report["weights_identical"] else "; the weights differ from the clean run")
            + (f": {report['error']}" if report.get("error") else "")
        )
