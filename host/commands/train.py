"""`tinysplit train (--port URL | --board B) --model-dir DIR`, or `--resume RUN_DIR`."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tinysplit.core.errors import BadInput, ModelMismatch
from tinysplit.host.commands.federated import add_schedule_options
from tinysplit.host.commands.runs import (
    RunOptions,
    add_hyper_options,
    add_run_options,
    hyper,
    new_run_dir,
    print_summary,
    run_config,
    run_on_board,
)
from tinysplit.host.training.session import Export, board_url

if TYPE_CHECKING:
    from tinysplit.host.training.checkpoint import Checkpoint, RunConfig, RunDir


def add_parser(sub: Any) -> None:
    p = sub.add_parser("train", help="split-train with a board")
    where = p.add_mutually_exclusive_group()
    where.add_argument(
        "--port",
        action="append",
        help="pyserial URL: /dev/ttyACM0, socket://HOST:PORT, a pty path (a --clients export: "
        "one --port per client, in client order)",
    )
    where.add_argument("--board", help="build and run a local board: native or mps2_an386 (QEMU)")
    p.add_argument("--model-dir", type=Path, help="the export directory")
    p.add_argument(
        "--resume",
        type=Path,
        metavar="RUN_DIR",
        help="continue the run checkpointed in RUN_DIR exactly where it stopped",
    )
    p.add_argument(
        "--previous",
        action="store_true",
        help="with --resume: go on from the checkpoint before the last (when the last is damaged)",
    )
    p.add_argument("--data", type=Path, help="FILE.npz for the centralized baseline")
    add_schedule_options(p)
    add_hyper_options(p)
    add_run_options(p)


def run(args: argparse.Namespace) -> dict[str, Any]:
    ports = list(args.port or [])
    if args.model_dir is not None and (Path(args.model_dir) / "federation.json").is_file():
        # several clients: --resume RUN_DIR needs the --model-dir and --port/--board again
        from tinysplit.host.commands.federated import print_federation, train_command

        args.port = None
        summary = train_command(args, ports)
        if not args.json:
            print_federation(summary)
        return summary
    if len(ports) > 1:
        raise BadInput(
            "several --port train several boards: give --model-dir the folder `tinysplit "
            "export --clients K` wrote"
        )
    args.port = ports[0] if ports else None
    opts = RunOptions.from_args(args)
    resume = None
    if args.previous and args.resume is None:
        raise BadInput("--previous goes with --resume RUN_DIR")
    if args.resume is not None:
        export, config, run_dir, resume = _resume(args)
    else:
        if args.model_dir is None or not (args.port or args.board):
            raise BadInput(
                "train needs --model-dir DIR and --port URL or --board BOARD (or --resume RUN_DIR)"
            )
        export = Export.load(args.model_dir)
        config = run_config(opts, export, hyper(opts, export), args.board)
        run_dir = new_run_dir(args.run_dir, export)
    port = args.port or (config.port if args.resume is not None and not args.board else None)
    board = args.board or config.board
    if port:
        summary = run_on_board(opts, export, port, config, run_dir, resume)
    else:
        assert board is not None
        with board_url(board, export) as url:
            summary = run_on_board(opts, export, url, config, run_dir, resume)
    if not opts.json:
        print_summary(summary)
    return summary


def _resume(args: argparse.Namespace) -> tuple[Export, RunConfig, RunDir, Checkpoint]:
    """The export, config and checkpoint of RUN_DIR; one clear line if they do not fit."""
    from tinysplit.host.training.checkpoint import RunDir

    run_dir = RunDir(args.resume)
    ck, config = run_dir.load(previous=args.previous)
    model_dir = args.model_dir if args.model_dir is not None else Path(config.model_dir)
    export = Export.load(model_dir)
    if export.model_hash.hex() != config.model_hash:
        raise ModelMismatch(
            f"{args.resume} is a run of model {config.model_hash} ({config.model}), the export "
            f"{model_dir} is model {export.model_hash.hex()}: resume with the export the run "
            "started from (--model-dir)"
        )
    if ck.finished:
        raise BadInput(
            f"{args.resume} finished at step {ck.step}: nothing to resume (start a new run "
            "with another --run-dir)"
        )
    if args.port is None and args.board is None and config.port is None and not config.board:
        raise BadInput(f"{args.resume} does not say where the board is: give --port or --board")
    return export, _resumed_config(args, config, ck.step, export), run_dir, ck


def _resumed_config(
    args: argparse.Namespace, config: RunConfig, step: int, export: Export
) -> RunConfig:
    """The run's config with the settings a resume may change (--lr, --epochs, --max-steps,
    --checkpoint-every); one line for the ones it may not (--batch, --seed: the steps so far
    followed them)."""
    import dataclasses

    from tinysplit.host.commands.runs import check_lr, check_max_steps, check_outputs

    for name, given, kept in (("--batch", args.batch, config.batch),
                              ("--seed", args.seed, config.seed)):  # fmt: skip
        if given is not None and given != kept:
            raise BadInput(
                f"{name} {given} on --resume: the run's {step} steps so far used {name} {kept}, "
                f"and its minibatch order follows from it; resume without {name}, or start a "
                "new run"
            )
    changes: dict[str, Any] = {}
    if args.lr is not None:
        check_lr(args.lr)
        changes["lr"] = float(args.lr)
    if args.epochs is not None:
        if args.epochs < 1:
            raise BadInput(f"--epochs {args.epochs}: give at least 1")
        changes["epochs"] = int(args.epochs)
    if args.max_steps is not None:
        check_max_steps(args.max_steps)
        if args.max_steps <= step:
            raise BadInput(
                f"--max-steps {args.max_steps}: the run is at step {step} already; give more"
            )
        changes["max_steps"] = int(args.max_steps)
    if args.checkpoint_every is not None:
        if args.checkpoint_every < 1:
            raise BadInput("--checkpoint-every must be >= 1")
        changes["checkpoint_every"] = int(args.checkpoint_every)
    check_outputs(RunOptions.from_args(args), export)
    return dataclasses.replace(config, **changes)
