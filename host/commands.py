"""What each `tinysplit` subcommand does (the parser is in cli.py)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tinysplit.core.boards import emulated_boards
from tinysplit.core.errors import BadInput, ModelMismatch, TinysplitError
from tinysplit.host.training.session import (
    Export,
    board_url,
    connect,
    stats_dict,
)

if TYPE_CHECKING:
    from tinysplit.host.training.centralized import BaselineResult
    from tinysplit.host.training.checkpoint import Checkpoint, RunConfig, RunDir
    from tinysplit.host.training.trainer import SplitClient, TrainConfig, TrainResult
    from tinysplit.host.transport.link import ClientLink


DEFAULT_CHECKPOINT_EVERY = 100


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
    from tinysplit.host.board.build import build_firmware

    export = Export.load(args.model_dir)
    image = build_firmware(args.board, export.path)
    print(f"built {image}")
    if args.board in emulated_boards():
        from tinysplit.host.board.linkmap import ram_flash_from_map

        m = ram_flash_from_map(image.with_suffix(".map"))
        print(
            f"RAM {m['ram_used']} B (data {m['data']} + bss {m['bss']} + stack {m['stack']}), "
            f"flash {m['flash_used']} B"
        )


def _hyper(args: argparse.Namespace, export: Export) -> TrainConfig:
    from tinysplit.host.training.trainer import TrainConfig

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
    from tinysplit.host.training.server import ServerSegment
    from tinysplit.host.training.trainer import split_train

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
        from tinysplit.host.training.plot import plot_training

        summary["plot"] = str(
            plot_training(
                result.history,
                args.plot,
                centralized=baseline.test_accuracy_per_epoch if baseline else None,
                title=f"{export.manifest['model']} split-trained on {board}",
            )
        )
    return summary


def _timeouts(args: argparse.Namespace) -> Any:
    from tinysplit.host.transport.link import Timeouts

    silence = getattr(args, "silence_timeout", None)
    if silence is None:
        return Timeouts()
    if not silence > 0:
        raise BadInput("--silence-timeout must be > 0 seconds")
    return Timeouts(silence_s=float(silence))


def _run(
    args: argparse.Namespace,
    export: Export,
    url: str,
    config: RunConfig,
    run: RunDir,
    resume: Checkpoint | None = None,
) -> dict[str, Any]:
    from tinysplit.host.training.checkpoint import Keeper
    from tinysplit.host.training.trainer import TrainConfig, split_train

    cfg = TrainConfig(config.epochs, config.batch, config.lr, config.seed)
    with connect(url, export, trace=args.trace, timeouts=_timeouts(args)) as (link, hello):
        _say(
            args,
            f"board {hello.board}: model {hello.model_hash.hex()}, "
            f"{hello.n_train} train / {hello.n_test} test samples on the board",
        )
        what = "step " + str(resume.step) if resume else "the start"
        _say(
            args,
            f"checkpoints in {run.path} every {config.checkpoint_every} steps"
            + (" (server side only: --private)" if config.private else "")
            + f"; going on from {what}",
        )
        from tinysplit.host.training.server import (
            ServerSegment,  # TensorFlow: only once a board answered
        )

        server = ServerSegment.load(export.path / "server.keras", cfg.lr)
        keeper = Keeper(
            run, config, expected_hash=export.model_hash, say=lambda text: _say(args, text)
        )
        result = split_train(
            link,
            server,
            cfg,
            progress=True,
            max_steps=config.max_steps,
            log_to_stderr=args.json,
            keeper=keeper,
            resume=resume,
        )
        board_link = _board_stats(link)
    summary = _summary(args, export, hello.board, cfg, result)
    summary.update(stats_dict(link.stats))
    summary["link_host"] = {**link.stats.as_dict(), **link.decoder.stats()}
    summary["link_board"] = board_link
    summary["recoveries"] = result.recoveries
    summary["checkpoints"] = result.checkpoints
    summary["run_dir"] = str(run.path)
    return summary


def _board_stats(link: ClientLink) -> dict[str, int]:
    """The board's STATS counters; {} if it cannot answer now (they are a report, not a
    result: a run that finished is not failed for them)."""
    try:
        return link.board_stats()
    except TinysplitError:
        return {}


def _run_config(
    args: argparse.Namespace, export: Export, cfg: TrainConfig, board: str | None
) -> RunConfig:
    from tinysplit.host.training.checkpoint import RunConfig

    private = bool(getattr(args, "private", False))
    every = getattr(args, "checkpoint_every", None)
    if every is None:
        every = 1 if private else DEFAULT_CHECKPOINT_EVERY
    if every < 1:
        raise BadInput("--checkpoint-every must be >= 1")
    return RunConfig(
        model=str(export.manifest.get("model", "?")),
        model_hash=export.model_hash.hex(),
        model_dir=str(export.path.resolve()),
        epochs=cfg.epochs,
        batch=cfg.batch,
        lr=cfg.lr,
        seed=cfg.seed,
        max_steps=args.max_steps,
        checkpoint_every=int(every),
        private=private,
        board=board,
        port=getattr(args, "port", None),
    )


def _new_run_dir(path: Path | None, export: Export) -> RunDir:
    import time

    from tinysplit.host.training.checkpoint import RunDir

    if path is None:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        path = Path("runs") / f"{export.manifest.get('model', 'run')}-{stamp}"
    run = RunDir(path)
    if run.exists():
        raise BadInput(
            f"{path} already holds a run's checkpoint: continue it with "
            f"`tinysplit train --resume {path}`, or choose another --run-dir"
        )
    return run


def cmd_simulate(args: argparse.Namespace) -> dict[str, Any]:
    from tinysplit.codegen.export import load_client_state
    from tinysplit.host.training.simulate import GoldenClient

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
    from tinysplit.host.training.centralized import train_centralized

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
    resume = None
    if args.resume is not None:
        export, config, run, resume = _resume(args)
    else:
        if args.model_dir is None or not (args.port or args.board):
            raise BadInput(
                "train needs --model-dir DIR and --port URL or --board BOARD (or --resume RUN_DIR)"
            )
        export = Export.load(args.model_dir)
        config = _run_config(args, export, _hyper(args, export), args.board)
        run = _new_run_dir(args.run_dir, export)
    port = args.port or (config.port if args.resume is not None and not args.board else None)
    board = args.board or config.board
    if port:
        summary = _run(args, export, port, config, run, resume)
    else:
        assert board is not None
        with board_url(board, export) as url:
            summary = _run(args, export, url, config, run, resume)
    if not args.json:
        _print_summary(summary)
    return summary


def _resume(args: argparse.Namespace) -> tuple[Export, RunConfig, RunDir, Checkpoint]:
    """The export, config and checkpoint of RUN_DIR; one clear line if they do not fit."""
    from tinysplit.host.training.checkpoint import RunDir

    run = RunDir(args.resume)
    ck, config = run.load()
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
    return export, config, run, ck


def _memory(board: str, export: Export) -> dict[str, Any]:
    import json

    from tinysplit.core.paths import build_root
    from tinysplit.host.board.linkmap import ram_flash_from_map

    plan = json.loads((export.path / "plan.json").read_text())
    out: dict[str, Any] = {"ram_planned": int(plan["ram_peak"]), "ram_linked": None}
    if board in emulated_boards():
        from tinysplit.core.boards import board_profile

        m = ram_flash_from_map(build_root() / board / "tinysplit.map")
        out["ram_linked"] = int(m["ram_used"])
        out["flash_linked"] = int(m["flash_used"])
        out["ram_limit"] = int(board_profile(board)["ram_bytes"])
    return out


def cmd_demo(args: argparse.Namespace) -> dict[str, Any]:
    from tinysplit.codegen.export import export_client

    export_dir: Path = args.out / "export"
    _say(args, f"[1/4] exporting the client segment of {args.workload} ...")
    # --seed seeds the initial weights as well as the data order (a run per seed is a new model)
    seed = args.seed if args.seed is not None else 0
    res = export_client(args.workload, None, export_dir, data=args.data, seed=seed)
    _say(args, res.plan.format_table())
    export = Export.load(export_dir)
    if args.plot is None:
        args.plot = args.out / "training.png"
    config = _run_config(args, export, _hyper(args, export), args.board)
    run_path = args.run_dir if args.run_dir is not None else args.out / "run"
    if args.run_dir is None:
        import shutil

        shutil.rmtree(run_path, ignore_errors=True)  # the demo's own, from its last time
    run = _new_run_dir(run_path, export)
    _say(args, f"[2/4] building the firmware for {args.board} ...")
    with board_url(args.board, export) as url:
        _say(args, f"[3/4] booted {args.board} at {url}; split training ...")
        summary = _run(args, export, url, config, run)
    summary.update(_memory(args.board, export))
    summary["board"] = args.board if args.board != "native" else "native"
    if not args.json:
        _print_summary(summary)
    return summary


def cmd_soak(args: argparse.Namespace) -> None:
    """Prints the report (also when the soak failed, then one error line and status 2)."""
    from tinysplit.host.training.soak import format_report, soak

    if not args.seconds > 0:
        raise BadInput("--seconds must be > 0")
    report = soak(
        args.seconds,
        args.board,
        args.model_dir,
        seed=args.seed,
        fault_rate=args.fault_rate,
        reset_rate=args.reset_rate,
        say=lambda text: _say(args, text),
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
    if "link_host" in s:
        h, b = s["link_host"], s.get("link_board") or {}
        print(
            f"link, host side       retransmits {h['retransmits']}, timeouts {h['timeouts']}, "
            f"crc errors {h['crc_errors']}, resyncs {h['resyncs']}, duplicates "
            f"{h['duplicates']}, board resets {h['resets']}, recoveries {s['recoveries']}"
        )
        if b:
            print(
                f"link, board side      crc errors {b['crc_errors']}, oversize {b['oversize']}, "
                f"resyncs {b['resyncs']}, duplicates {b['duplicates']}, retransmits "
                f"{b['retransmits']}, stale {b['stale']} (STATS, since its last boot)"
            )
        print(f"checkpoints           {s['checkpoints']} in {s['run_dir']}")
