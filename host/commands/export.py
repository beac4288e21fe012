"""`tinysplit export MODEL --cut N --out DIR`: quantize the client layers, emit C + memory plan."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from tinysplit.host.commands.runs import RunOptions, say


def add_parser(sub: Any) -> None:
    p = sub.add_parser("export", help="quantize the client layers and emit C + memory plan")
    p.add_argument(
        "model", help="a saved Keras model (.keras) or a bundled model name (digits-mlp)"
    )
    p.add_argument("--cut", type=int, help="number of client layers (default: the model's)")
    p.add_argument("--out", type=Path, required=True, help="output directory")
    p.add_argument("--data", type=Path, help="FILE.npz with x_train, y_train, x_test, y_test")
    p.add_argument("--seed", type=int, default=0, help="seed for the initial weights")
    p.add_argument("--json", action="store_true", help="print the memory plan as JSON")


def run(args: argparse.Namespace) -> dict[str, Any]:
    from tinysplit.codegen.export import export_client

    opts = RunOptions(json=args.json)
    res = export_client(args.model, args.cut, args.out, data=args.data, seed=args.seed)
    say(
        opts,
        f"exported {res.manifest['model']} (cut {res.manifest['cut']}) to {args.out}, "
        f"model hash {res.manifest['model_hash']}",
    )
    say(opts, res.plan.format_table())
    return res.plan.to_json()  # type: ignore[no-any-return]
