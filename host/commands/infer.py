"""`tinysplit infer`: predictions through the trained split model, timed sample by sample.

    tinysplit infer (--board B | --port URL) --model-dir DIR --run RUN_DIR [--samples N]
                    [--live] [--json]

The board runs its layers on its own samples (the test shard, or with --live whatever its
ts_board_read_sample hook returns), the host finishes with the run's server segment."""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path
from typing import Any

from tinysplit.core.errors import BadInput
from tinysplit.host.commands import runs
from tinysplit.host.training.session import Export, board_url, connect


def add_parser(sub: Any) -> None:
    p = sub.add_parser("infer", help="predict with a trained split model, timed per sample")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--port", help="pyserial URL of a board flashed with the export")
    where.add_argument("--board", help="build and run a local board: native or mps2_an386 (QEMU)")
    p.add_argument("--model-dir", type=Path, required=True, help="the export directory")
    p.add_argument("--run", type=Path, required=True, help="the run directory of its training")
    p.add_argument("--samples", type=int, help="predict on the first N samples (default: all)")
    p.add_argument(
        "--live",
        action="store_true",
        help="samples from the board's ts_board_read_sample hook (default: its test shard); "
        "the default hook serves the test shard too",
    )
    p.add_argument("--json", action="store_true", help="print the report as one JSON object")
    p.add_argument("--trace", action="store_true", help="print every frame with timing (stderr)")


def _checkpoint(run_dir: Path, export: Export) -> Any:
    from tinysplit.host.training.checkpoint import RunDir

    ck, config = RunDir(run_dir).load()
    if config.model_hash != export.model_hash.hex():
        raise BadInput(
            f"{run_dir} trained the export with model hash {config.model_hash}, {export.path} "
            f"is {export.model_hash.hex()}: give the --model-dir the run was trained from"
        )
    return ck, config


def run(args: argparse.Namespace) -> dict[str, Any]:
    export = Export.load(args.model_dir)
    ck, config = _checkpoint(args.run, export)
    n_test = int(export.manifest["n_test"])
    if args.live and export.manifest.get("labels") == "client":
        raise BadInput(
            "--live with a U-shaped export (--labels client): the board's head keeps the "
            "predictions of live samples to itself; infer on the test shard (no --live)"
        )
    count = n_test if args.samples is None else args.samples
    if not 1 <= count <= (0xFFFF if args.live else n_test):
        raise BadInput(f"--samples must be 1..{n_test} (the board holds {n_test} test samples)")
    with contextlib.ExitStack() as stack:
        url = args.port or stack.enter_context(board_url(args.board, export))
        return _infer(args, export, ck, config, url, count)
    raise AssertionError("unreachable")


def _infer(args: argparse.Namespace, export: Export, ck: Any, config: Any, url: str,
           count: int) -> dict[str, Any]:  # fmt: skip
    from tqdm import tqdm

    from tinysplit.core.boards import profile_named
    from tinysplit.core.protocol import Split
    from tinysplit.host.serving.infer import format_report, predict, report
    from tinysplit.host.training.checkpoint import put_client_state, restore_server

    def say(text: str) -> None:
        runs.say(runs.RunOptions(json=args.json), text)

    with connect(url, export, trace=args.trace) as (link, hello):
        put_client_state(link, ck, say)
        from tinysplit.host.training.server import ServerSegment  # TensorFlow: once connected

        server = ServerSegment.load(export.path / "server.keras", config.lr)
        restore_server(server, ck.server_weights, ck.optimizer)
        profile = profile_named(hello.board)
        clock_hz = float(profile["clock_hz"]) if profile and profile.get("clock_hz") else None
        split = int(Split.LIVE if args.live else Split.TEST)
        stats = link.stats
        progress = tqdm(
            total=count,
            desc="infer",
            unit="sample",
            file=sys.stderr,
            disable=not sys.stderr.isatty(),
            leave=False,
        )
        inference = predict(
            link,
            server,
            range(count),
            split=split,
            clock_hz=clock_hz,
            byte_counts=lambda: (stats.bytes_to_server, stats.bytes_to_client),
            progress=lambda: progress.update(1),
        )
        progress.close()
    out = report(inference, board=hello.board, live=args.live, clock_hz=clock_hz)
    history = ck.progress.get("history") or []
    out["run_split_accuracy"] = history[-1]["test_accuracy"] if history else None
    out["run_step"] = ck.step
    if not args.json:
        print(format_report(out))
        if out["run_split_accuracy"] is not None:
            acc = out["run_split_accuracy"]
            print(f"the run's own last evaluation (step {ck.step}): {acc:.4f}")
    return out
