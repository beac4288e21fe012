"""`tinysplit plan MODEL --board B`: memory, compute and wire time at every cut, and a choice."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from tinysplit.core.errors import BadInput
from tinysplit.host.commands.export import (
    add_labels_option,
    add_ram_budget_option,
    add_wire_option,
)
from tinysplit.host.commands.runs import check_plot
from tinysplit.host.planner.plan import format_table, plan_model


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "plan", help="for every cut of a model: memory, compute, bytes on the wire, and a choice"
    )
    p.add_argument("model", help="a bundled model name (mnist-cnn, ...) or a .keras file")
    p.add_argument("--board", required=True, help="a board under boards/ (e.g. mps2_an386)")
    p.add_argument("--baud", help="UART bits per second (default: the board's)")
    p.add_argument("--data", type=Path, help="FILE.npz for a .keras model (as for export)")
    p.add_argument("--plot", type=Path, help="write the plot (time vs RAM, bubble = bytes) here")
    p.add_argument(
        "--audit",
        type=Path,
        help="add dCor and inversion SSIM per cut from this `tinysplit audit --all-cuts --json` "
        "output (audit writes it to its --out as audit-MODEL.json)",
    )
    p.add_argument("--json", action="store_true", help="print the plan as one JSON object")
    add_labels_option(p)
    add_ram_budget_option(p)
    add_wire_option(p)


def run(args: argparse.Namespace) -> dict[str, Any] | None:
    if args.plot is not None and args.plot.suffix.lower() != ".png":
        raise BadInput(f"--plot {args.plot}: give a .png file")
    check_plot(args.plot)
    privacy = None
    if args.audit is not None:
        import json

        from tinysplit.host.planner.plan import privacy_columns

        try:
            privacy = privacy_columns(json.loads(args.audit.read_text()), args.model)
        except (OSError, ValueError) as exc:
            raise BadInput(f"--audit {args.audit}: cannot read it ({exc})") from exc
    out = sys.stderr if args.json else sys.stdout
    # Progress on a terminal only (as the training bar): a log or a pipe gets the result.
    progress = (lambda t: print(t, file=sys.stderr)) if sys.stderr.isatty() else None
    report = plan_model(
        args.model, args.board, args.baud, args.data, say=progress, labels=args.labels,
        ram_budget=args.ram_budget, wire=args.wire,
    )  # fmt: skip
    if privacy:
        from dataclasses import replace

        report = replace(report, privacy=privacy)
    print(format_table(report), file=out)
    if args.plot is not None:
        from tinysplit.host.planner.plot import plot_plan

        print(f"plot: {plot_plan(report, args.plot)}", file=out)
    return report.to_json() if args.json else None
