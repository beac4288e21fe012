"""`tinysplit simulate --model-dir DIR`: split training with the golden model in-process."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from tinysplit.host.commands.runs import (
    RunOptions,
    add_hyper_options,
    hyper,
    make_summary,
    print_summary,
    train_in_process,
)
from tinysplit.host.training.session import Export


def add_parser(sub: Any) -> None:
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
    add_hyper_options(p)


def run(args: argparse.Namespace) -> dict[str, Any]:
    from tinysplit.codegen.export import load_client_state
    from tinysplit.host.training.simulate import GoldenClient

    opts = RunOptions.from_args(args)
    export = Export.load(args.model_dir)
    cfg = hyper(opts, export)
    client = GoldenClient(load_client_state(export.path), frozen_ranges=args.frozen_ranges)
    result = train_in_process(opts, export, client, cfg)
    summary = make_summary(opts, export, "golden model (in-process)", cfg, result)
    summary["frozen_ranges"] = args.frozen_ranges
    if not opts.json:
        print_summary(summary)
    return summary
