"""What `train`, `demo` and `simulate` share: the options they take, turned into one typed
RunOptions at the edge, and the steps of a run (hyperparameters, run directory, the run on a
board, the centralized baseline, the summary)."""

from __future__ import annotations

import argparse
import math
import os
import sys
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tinysplit.core.errors import BadInput, TinysplitError
from tinysplit.host.training.session import Export, connect, stats_dict

if TYPE_CHECKING:
    from tinysplit.host.training.centralized import BaselineResult
    from tinysplit.host.training.checkpoint import Checkpoint, RunConfig, RunDir
    from tinysplit.host.training.trainer import SplitClient, TrainConfig, TrainResult
    from tinysplit.host.transport.link import ClientLink


@dataclass
class RunOptions:
    """The options of a training run, typed; every field has the parser's default."""

    epochs: int | None = None
    batch: int | None = None
    lr: float | None = None
    seed: int | None = None
    max_steps: int | None = None
    json: bool = False
    trace: bool = False
    plot: Path | None = None
    no_baseline: bool = False
    data: Path | None = None
    run_dir: Path | None = None
    checkpoint_every: int | None = None
    private: bool = False
    silence_timeout: float | None = None
    port: str | None = None

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> RunOptions:
        """The options a subcommand's parser defined; the others keep their defaults."""
        return cls(**{f.name: getattr(args, f.name) for f in fields(cls) if hasattr(args, f.name)})


def add_hyper_options(p: argparse.ArgumentParser) -> None:
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


def add_run_options(p: argparse.ArgumentParser) -> None:
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


DEFAULT_CHECKPOINT_EVERY = 100


def say(opts: RunOptions, text: str) -> None:
    """Human output: stdout normally, stderr when stdout carries JSON."""
    print(text, file=sys.stderr if opts.json else sys.stdout, flush=True)


#: Largest learning rate a run takes: far above any useful SGD step, low enough that the board's
#: weight guard is not the first to say the run diverged.
MAX_LR = 100.0


def check_lr(lr: float) -> None:
    if not (math.isfinite(lr) and 0.0 < lr <= MAX_LR):
        raise BadInput(f"--lr {lr:g} is not a learning rate: give a number in (0, {MAX_LR:g}]")


def check_max_steps(max_steps: int | None) -> None:
    if max_steps is not None and max_steps < 1:
        raise BadInput(f"--max-steps {max_steps}: give at least 1 (or leave it out for all)")


def hyper(opts: RunOptions, export: Export) -> TrainConfig:
    """The run's epochs, batch, lr and seed: the options given, else the export's; each
    checked here, before anything starts."""
    from tinysplit.host.training.trainer import TrainConfig

    hp = export.hyper
    epochs = opts.epochs if opts.epochs is not None else int(hp.get("epochs", 30))
    batch = opts.batch if opts.batch is not None else int(hp.get("batch", 32))
    lr = opts.lr if opts.lr is not None else float(hp.get("lr", 0.05))
    seed = opts.seed if opts.seed is not None else int(hp.get("seed", 0))
    max_batch = int(export.manifest["max_batch"])
    if epochs < 1:
        raise BadInput(f"--epochs {epochs}: give at least 1")
    if not 1 <= batch <= max_batch:
        raise BadInput(
            f"--batch {batch}: give 1..{max_batch} (the export's planned maximum; export with "
            "a larger max batch for more)"
        )
    check_lr(lr)
    check_max_steps(opts.max_steps)
    check_outputs(opts, export)
    return TrainConfig(epochs=epochs, batch=batch, lr=lr, seed=seed)


def check_plot(plot: Path | None) -> None:
    """--plot must name a file that can be written: checked before the work, not after."""
    if plot is None:
        return
    plot = Path(plot)
    if plot.is_dir():
        raise BadInput(f"--plot {plot} is a folder: give a file name such as {plot / 'run.png'}")
    parent = plot.resolve().parent
    if not parent.is_dir():
        raise BadInput(
            f"--plot {plot}: folder {parent} does not exist; create it or choose another"
        )
    if not os.access(parent, os.W_OK):
        raise BadInput(f"--plot {plot}: cannot write in {parent}; choose another folder")


def check_outputs(opts: RunOptions, export: Export) -> None:
    """What a run writes or reads besides the board, checked before it starts: --plot, and
    --data for the baseline (a data set the export's model can take)."""
    check_plot(opts.plot)
    if opts.data is not None:
        from tinysplit.codegen.data import load_npz

        d = load_npz(opts.data)
        if d.x_train.shape[1] != int(export.manifest["input_size"]):
            raise BadInput(
                f"--data {opts.data} has {d.x_train.shape[1]} features a sample, the export's "
                f"model takes {export.manifest['input_size']}: give the data set it was "
                "exported with (or leave --data out: the export's own data.npz)"
            )


def train_in_process(
    opts: RunOptions, export: Export, client: SplitClient, cfg: TrainConfig
) -> TrainResult:
    from tinysplit.host.training.server import ServerSegment
    from tinysplit.host.training.trainer import split_train

    server = ServerSegment.load(export.path / "server.keras", cfg.lr)
    return split_train(
        client, server, cfg, progress=True, max_steps=opts.max_steps, log_to_stderr=opts.json
    )


def make_summary(
    opts: RunOptions, export: Export, board: str, cfg: TrainConfig, result: TrainResult
) -> dict[str, Any]:
    summary: dict[str, Any] = {
        "board": board,
        "split_accuracy": result.test_accuracy,
        "labels": export.manifest.get("labels", "host"),
        "epochs": cfg.epochs,
        "steps": result.steps,
        "steps_per_s": result.steps_per_s,
        "train_seconds": result.train_seconds,
        "weights_crc": f"{result.last_weights_crc:08x}",
        "history": [vars(h) for h in result.history],
    }
    baseline = None if opts.no_baseline else train_baseline(opts, export, cfg)
    if baseline is not None:
        summary["centralized_accuracy"] = baseline.test_accuracy
        shard = export.path / "data.npz"
        summary["centralized_data"] = str(opts.data or shard)
        summary["centralized_on_board_shard"] = opts.data is None or (
            Path(opts.data).resolve() == shard.resolve()
        )
    if opts.plot and result.history:
        from tinysplit.host.training.plot import plot_training

        summary["plot"] = str(
            plot_training(
                result.history,
                opts.plot,
                centralized=baseline.test_accuracy_per_epoch if baseline else None,
                title=f"{export.manifest['model']} split-trained on {board}",
            )
        )
    return summary


def timeouts(opts: RunOptions) -> Any:
    from tinysplit.host.transport.link import Timeouts

    silence = opts.silence_timeout
    if silence is None:
        return Timeouts()
    if not silence > 0:
        raise BadInput("--silence-timeout must be > 0 seconds")
    return Timeouts(silence_s=float(silence))


def run_on_board(
    opts: RunOptions,
    export: Export,
    url: str,
    config: RunConfig,
    run: RunDir,
    resume: Checkpoint | None = None,
) -> dict[str, Any]:
    from tinysplit.host.training.checkpoint import Keeper
    from tinysplit.host.training.trainer import TrainConfig, split_train

    cfg = TrainConfig(config.epochs, config.batch, config.lr, config.seed)
    with connect(url, export, trace=opts.trace, timeouts=timeouts(opts)) as (link, hello):
        say(
            opts,
            f"board {hello.board}: model {hello.model_hash.hex()}, "
            f"{hello.n_train} train / {hello.n_test} test samples on the board",
        )
        what = "step " + str(resume.step) if resume else "the start"
        say(
            opts,
            f"checkpoints in {run.path} every {config.checkpoint_every} steps"
            + (
                " (the client's state sealed by the board: --private)"
                if config.private and config.sealed
                else " (server side only: --private)"
                if config.private
                else ""
            )
            + f"; going on from {what}",
        )
        from tinysplit.host.training.server import (
            ServerSegment,  # TensorFlow: only once a board answered
        )

        server = ServerSegment.load(export.path / "server.keras", cfg.lr)
        keeper = Keeper(
            run, config, expected_hash=export.model_hash, say=lambda text: say(opts, text)
        )
        result = split_train(
            link,
            server,
            cfg,
            progress=True,
            max_steps=config.max_steps,
            log_to_stderr=opts.json,
            keeper=keeper,
            resume=resume,
        )
        board_link = board_stats(link)
        from tqdm import tqdm

        from tinysplit.host.transport.link import refusal_line

        refused = refusal_line(link.stats.as_dict(), board_link)
        if refused:
            tqdm.write(refused, file=sys.stderr)
    summary = make_summary(opts, export, hello.board, cfg, result)
    summary["link_sealed"] = link.sealed is not None
    summary.update(stats_dict(link.stats))
    summary["link_host"] = {**link.stats.as_dict(), **link.decoder.stats()}
    summary["link_board"] = board_link
    summary["recoveries"] = result.recoveries
    summary["checkpoints"] = result.checkpoints
    summary["run_dir"] = str(run.path)
    return summary


def board_stats(link: ClientLink) -> dict[str, int]:
    """The board's STATS counters; {} if it cannot answer now (they are a report, not a
    result: a run that finished is not failed for them)."""
    try:
        return link.board_stats()
    except TinysplitError:
        return {}


def run_config(opts: RunOptions, export: Export, cfg: TrainConfig, board: str | None) -> RunConfig:
    from tinysplit.host.training.checkpoint import RunConfig

    private = opts.private
    sealed = bool(export.manifest.get("sealed", False))
    every = opts.checkpoint_every
    if every is None:
        # without a sealed image to keep, a --private run checkpoints every step
        every = 1 if private and not sealed else DEFAULT_CHECKPOINT_EVERY
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
        max_steps=opts.max_steps,
        checkpoint_every=int(every),
        private=private,
        board=board,
        port=opts.port,
        sealed=sealed,
    )


def new_run_dir(path: Path | None, export: Export) -> RunDir:
    import time

    from tinysplit.host.training.checkpoint import RunDir

    if path is None:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        path = Path("runs") / f"{export.manifest.get('model', 'run')}-{stamp}"
    if path.exists() and not path.is_dir():
        raise BadInput(f"--run-dir {path} is a file: give a folder for the run's checkpoints")
    run = RunDir(path)
    if run.exists():
        raise BadInput(
            f"{path} already holds a run's checkpoint: continue it with "
            f"`tinysplit train --resume {path}`, or choose another --run-dir"
        )
    return run


def train_baseline(opts: RunOptions, export: Export, cfg: TrainConfig) -> BaselineResult:
    from tinysplit.host.training.centralized import export_baseline

    say(opts, "training the same model centralized in float Keras for comparison ...")
    return export_baseline(
        export.path, epochs=cfg.epochs, batch=cfg.batch, lr=cfg.lr, seed=cfg.seed,
        data=opts.data, max_steps=opts.max_steps,
    )  # fmt: skip


def print_summary(s: dict[str, Any]) -> None:
    print("\n== tinysplit summary ==")
    print(f"board                 {s['board']}")
    print(f"split accuracy        {s['split_accuracy']:.4f}  (int8 client)")
    if "centralized_accuracy" in s:
        diff = (s["split_accuracy"] - s["centralized_accuracy"]) * 100
        print(
            f"centralized accuracy  {s['centralized_accuracy']:.4f}  (float Keras, "
            + (
                "same data, minibatches and seed"
                if s.get("centralized_on_board_shard", True)
                else f"on {s['centralized_data']}, NOT the board's data"
            )
            + f"; split {diff:+.2f} points)"
        )
    print(
        f"steps                 {s['steps']} in {s['train_seconds']:.1f} s "
        f"({s['steps_per_s']:.2f} steps/s)"
    )
    if "bytes_to_client" in s:
        wire = f"  (--wire {s['wire']})" if s.get("wire", "int8") != "int8" else ""
        print(f"bytes to server       {s['bytes_to_server']:,}{wire}")
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
        from tinysplit.host.transport.link import REFUSALS

        n = [b.get(k, 0) + h.get(k, 0) for k in REFUSALS]
        print(
            "link, security        "
            + (
                "sealed (ChaCha20-Poly1305 with the export's pairing key)"
                if s.get("link_sealed")
                else "IN CLEAR (an --insecure export)"
            )
            + f"; refused {n[0]} forged, {n[1]} replayed, {n[2]} unsealed frame(s)"
        )
        print(f"checkpoints           {s['checkpoints']} in {s['run_dir']}")
