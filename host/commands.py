"""What each `tinysplit` subcommand does (the parser is in cli.py)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tinysplit.host.errors import BadInput
from tinysplit.host.session import (
    EMULATED_BOARDS,
    Export,
    board_url,
    connect,
    stats_dict,
)

if TYPE_CHECKING:
    from tinysplit.host.centralized import BaselineResult
    from tinysplit.host.trainer import SplitClient, TrainConfig, TrainResult


def _say(args: argparse.Namespace, text: str) -> None:
    """Human output: stdout normally, stderr when stdout carries JSON."""
    print(text, file=sys.stderr if getattr(args, "json", False) else sys.stdout, flush=True)


def cmd_export(args: argparse.Namespace) -> dict[str, Any]:
    from tinysplit.codegen.export import export_client

    res = export_client(args.model, args.cut, args.out, data=args.data, seed=args.seed)
    _say(
        args,
        f"exported {res.manifest['model']} (cut {res.manifest['cut']}) to {args.out}, "
        f"model hash {res.manifest['model_hash']}",
    )
    _say(args, res.plan.format_table())
    return res.plan.to_json()  # type: ignore[no-any-return]


def cmd_build(args: argparse.Namespace) -> None:
    from tinysplit.host.build import build_firmware

    export = Export.load(args.model_dir)
    image = build_firmware(args.board, export.path)
    print(f"built {image}")
    if args.board in EMULATED_BOARDS:
        from tinysplit.host.linkmap import ram_flash_from_map

        m = ram_flash_from_map(image.with_suffix(".map"))
        print(
            f"RAM {m['ram_used']} B (data {m['data']} + bss {m['bss']} + stack {m['stack']}), "
            f"flash {m['flash_used']} B"
        )


def _hyper(args: argparse.Namespace, export: Export) -> TrainConfig:
    from tinysplit.host.trainer import TrainConfig

    hp = export.hyper
    epochs = args.epochs if args.epochs is not None else int(hp.get("epochs", 30))
    batch = args.batch if args.batch is not None else int(hp.get("batch", 32))
    lr = args.lr if args.lr is not None else float(hp.get("lr", 0.05))
    seed = args.seed if args.seed is not None else int(hp.get("seed", 0))
    if epochs < 1 or not 1 <= batch <= int(export.manifest["max_batch"]) or not lr > 0:
        raise BadInput(
            f"need epochs >= 1, 1 <= batch <= {export.manifest['max_batch']} (the firmware's "
            "planned maximum) and lr > 0"
        )
    return TrainConfig(epochs=epochs, batch=batch, lr=lr, seed=seed)


def _train(
    args: argparse.Namespace, export: Export, client: SplitClient, cfg: TrainConfig
) -> TrainResult:
    from tinysplit.host.server import ServerSegment
    from tinysplit.host.trainer import split_train

    server = ServerSegment.load(export.path / "server.keras", cfg.lr)
    return split_train(
        client, server, cfg, progress=True, max_steps=args.max_steps, log_to_stderr=args.json
    )


def _summary(
    args: argparse.Namespace, export: Export, board: str, cfg: TrainConfig, result: TrainResult
) -> dict[str, Any]:
    summary: dict[str, Any] = {
        "board": board,
        "split_accuracy": result.test_accuracy,
        "epochs": cfg.epochs,
        "steps": result.steps,
        "steps_per_s": result.steps_per_s,
        "train_seconds": result.train_seconds,
        "weights_crc": f"{result.last_weights_crc:08x}",
        "history": [vars(h) for h in result.history],
    }
    baseline = None if args.no_baseline else _baseline(args, export, cfg)
    if baseline is not None:
        summary["centralized_accuracy"] = baseline.test_accuracy
    if args.plot and result.history:
        from tinysplit.host.plot import plot_training

        summary["plot"] = str(
            plot_training(
                result.history,
                args.plot,
                centralized=baseline.test_accuracy_per_epoch if baseline else None,
                title=f"{export.manifest['model']} split-trained on {board}",
            )
        )
    return summary


def _run(args: argparse.Namespace, export: Export, url: str) -> dict[str, Any]:
    cfg = _hyper(args, export)
    with connect(url, export, trace=args.trace) as (link, hello):
        _say(
            args,
            f"board {hello.board}: model {hello.model_hash.hex()}, "
            f"{hello.n_train} train / {hello.n_test} test samples on the board",
        )
        result = _train(args, export, link, cfg)
    return {**_summary(args, export, hello.board, cfg, result), **stats_dict(link.stats)}


def cmd_simulate(args: argparse.Namespace) -> dict[str, Any]:
    from tinysplit.codegen.export import load_client_state
    from tinysplit.host.simulate import GoldenClient

    export = Export.load(args.model_dir)
    client = GoldenClient(load_client_state(export.path), frozen_ranges=args.frozen_ranges)
    cfg = _hyper(args, export)
    summary = _summary(
        args, export, "golden model (in-process)", cfg, _train(args, export, client, cfg)
    )
    summary["frozen_ranges"] = args.frozen_ranges
    if not args.json:
        _print_summary(summary)
    return summary


def _baseline(args: argparse.Namespace, export: Export, cfg: TrainConfig) -> BaselineResult:
    from tinysplit.codegen.data import load_npz
    from tinysplit.host.centralized import train_centralized

    data = load_npz(args.data if args.data else export.path / "data.npz")
    _say(args, "training the same model centralized in float Keras for comparison ...")
    res = train_centralized(
        export.path / "full.keras",
        data.x_train.astype(np.float32),
        data.y_train.astype(np.int64),
        data.x_test.astype(np.float32),
        data.y_test.astype(np.int64),
        epochs=cfg.epochs,
        batch=cfg.batch,
        lr=cfg.lr,
        seed=cfg.seed,
    )
    return res


def cmd_train(args: argparse.Namespace) -> dict[str, Any]:
    export = Export.load(args.model_dir)
    if args.port:
        summary = _run(args, export, args.port)
    else:
        with board_url(args.board, export) as url:
            summary = _run(args, export, url)
    if not args.json:
        _print_summary(summary)
    return summary


def _memory(board: str, export: Export) -> dict[str, Any]:
    import json

    from tinysplit.host.build import repo_root
    from tinysplit.host.linkmap import ram_flash_from_map

    plan = json.loads((export.path / "plan.json").read_text())
    out: dict[str, Any] = {"ram_planned": int(plan["ram_peak"]), "ram_linked": None}
    if board in EMULATED_BOARDS:
        from tinysplit.host.build import board_profile

        m = ram_flash_from_map(repo_root() / "build" / board / "tinysplit.map")
        out["ram_linked"] = int(m["ram_used"])
        out["flash_linked"] = int(m["flash_used"])
        out["ram_limit"] = int(board_profile(board)["ram_bytes"])
    return out


def cmd_demo(args: argparse.Namespace) -> dict[str, Any]:
    from tinysplit.codegen.export import export_client

    export_dir: Path = args.out / "export"
    _say(args, f"[1/4] exporting the client segment of {args.workload} ...")
    res = export_client(args.workload, None, export_dir, data=args.data, seed=0)
    _say(args, res.plan.format_table())
    export = Export.load(export_dir)
    if args.plot is None:
        args.plot = args.out / "training.png"
    _say(args, f"[2/4] building the firmware for {args.board} ...")
    with board_url(args.board, export) as url:
        _say(args, f"[3/4] booted {args.board} at {url}; split training ...")
        summary = _run(args, export, url)
    summary.update(_memory(args.board, export))
    summary["board"] = args.board if args.board != "native" else "native"
    if not args.json:
        _print_summary(summary)
    return summary


def _print_summary(s: dict[str, Any]) -> None:
    print("\n== tinysplit summary ==")
    print(f"board                 {s['board']}")
    print(f"split accuracy        {s['split_accuracy']:.4f}  (int8 client)")
    if "centralized_accuracy" in s:
        diff = (s["split_accuracy"] - s["centralized_accuracy"]) * 100
        print(
            f"centralized accuracy  {s['centralized_accuracy']:.4f}  (float Keras, same data, "
            f"epochs, batch, seed; split {diff:+.2f} points)"
        )
    print(
        f"steps                 {s['steps']} in {s['train_seconds']:.1f} s "
        f"({s['steps_per_s']:.2f} steps/s)"
    )
    if "bytes_to_client" in s:
        print(f"bytes to server       {s['bytes_to_server']:,}")
        print(f"bytes to client       {s['bytes_to_client']:,}")
    if s.get("ram_planned") is not None:
        line = f"client RAM            planned {s['ram_planned']:,} B"
        if s.get("ram_linked"):
            dev = (s["ram_linked"] - s["ram_planned"]) / s["ram_planned"] * 100
            line += f", linked {s['ram_linked']:,} B ({dev:+.1f}% of plan) of {s['ram_limit']:,} B"
        print(line)
    if s.get("plot"):
        print(f"plot                  {s['plot']}")
