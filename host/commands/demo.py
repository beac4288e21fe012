"""`tinysplit demo`: export, build, boot the emulated M4 (or native) and split-train."""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path
from typing import Any

from tinysplit.core.boards import board_profile, emulated_boards
from tinysplit.core.errors import BadInput
from tinysplit.host.commands.export import (
    add_insecure_option,
    add_labels_option,
    add_noise_options,
    add_ram_budget_option,
    add_wire_option,
)
from tinysplit.host.commands.federated import add_federation_options
from tinysplit.host.commands.runs import (
    RunOptions,
    add_hyper_options,
    add_run_options,
    hyper,
    new_run_dir,
    print_summary,
    run_config,
    run_on_board,
    say,
)
from tinysplit.host.training.session import Export, board_url


def add_parser(sub: Any) -> None:
    p = sub.add_parser("demo", help="export, build, boot on the emulated M4 and split-train")
    which = p.add_mutually_exclusive_group()
    which.add_argument(
        "--workload", default="digits-mlp", help="bundled model (default digits-mlp)"
    )
    which.add_argument(
        "--model", type=Path, metavar="FILE.keras", help="your own Keras model (with --cut, --data)"
    )
    p.add_argument("--cut", type=int, help="client layers of --model (default: the workload's)")
    p.add_argument("--board", default="mps2_an386", help="mps2_an386 (QEMU, default) or native")
    p.add_argument("--data", type=Path, help="FILE.npz instead of the bundled data")
    p.add_argument("--out", type=Path, default=Path("out/demo"), help="work directory")
    add_noise_options(p)
    add_labels_option(p)
    add_insecure_option(p)
    add_ram_budget_option(p)
    add_wire_option(p)
    add_federation_options(p)
    add_hyper_options(p)
    add_run_options(p)


def run(args: argparse.Namespace) -> dict[str, Any]:
    from tinysplit.codegen.export import Noise, export_client

    opts = RunOptions.from_args(args)
    out: Path = args.out
    export_dir = out / "export"
    model: str | Path = args.model if args.model is not None else args.workload
    if args.model is not None and (args.cut is None or opts.data is None):
        raise BadInput("demo --model FILE.keras needs --cut N and --data FILE.npz")
    if args.clients != 1:
        if args.ram_budget is not None:
            raise BadInput("--clients with --ram-budget is not supported yet")
        from tinysplit.host.commands.federated import print_federation, run_federation

        summary = run_federation(args, opts, model, out)
        if not opts.json:
            print_federation(summary)
        return summary
    say(opts, f"[1/4] exporting the client segment of {model} ...")
    # --seed seeds the initial weights as well as the data order (a run per seed is a new model)
    seed = opts.seed if opts.seed is not None else 0
    noise = Noise(args.noise, args.noise_scale) if args.noise_scale else None
    res = export_client(
        model, args.cut, export_dir, data=opts.data, seed=seed, noise=noise, private=opts.private,
        labels=args.labels, insecure=args.insecure, ram_budget=args.ram_budget, wire=args.wire,
    )  # fmt: skip
    say(opts, res.plan.format_table())
    # The board holds the export's shard (data.npz: --data cut to what fits its flash); the
    # baseline trains on that very shard, not on the whole --data file.
    opts.data = None
    export = Export.load(export_dir)
    if opts.plot is None:
        opts.plot = out / "training.png"
    config = run_config(opts, export, hyper(opts, export), args.board)
    run_path = opts.run_dir if opts.run_dir is not None else out / "run"
    if opts.run_dir is None:
        shutil.rmtree(run_path, ignore_errors=True)  # the demo's own, from its last time
    run_dir = new_run_dir(run_path, export)
    say(opts, f"[2/4] building the firmware for {args.board} ...")
    with board_url(args.board, export) as url:
        say(opts, f"[3/4] booted {args.board} at {url}; split training ...")
        summary = run_on_board(opts, export, url, config, run_dir)
    summary.update(_memory(args.board, export))
    summary["board"] = args.board
    if not opts.json:
        print_summary(summary)
    return summary


def _memory(board: str, export: Export) -> dict[str, Any]:
    """Client RAM planned by the export and, on an emulated board, linked in its image."""
    from tinysplit.host.board.build import build_firmware
    from tinysplit.host.board.linkmap import ram_flash_from_map

    plan = json.loads((export.path / "plan.json").read_text())
    out: dict[str, Any] = {
        "ram_planned": int(plan["ram_peak"]),
        "ram_linked": None,
        "wire": str(export.manifest.get("wire", "int8")),
    }
    if board in emulated_boards():
        image = build_firmware(board, export.path)  # the image the run used (cached: no make)
        m = ram_flash_from_map(image.with_suffix(".map"))
        out["ram_linked"] = int(m["ram_used"])
        out["flash_linked"] = int(m["flash_used"])
        out["ram_limit"] = int(board_profile(board)["ram_bytes"])
    return out
