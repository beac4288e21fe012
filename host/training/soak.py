"""Soak: split training through the fault proxy, compared bit for bit with a clean run.

`tinysplit soak --seconds N [--board B]` trains for N seconds through a FaultyPort (drops,
duplicates, reorders, truncations, bit flips, garbage, board resets), then trains the same
number of steps over a clean link with the same seed, and reports:

    faults_injected   faults the proxy injected, all kinds
    recovered         of those, the ones the run went on past (a step committed after them)
    lost              steps whose client weights differ from the clean run's (by the CRC the
                      board reports after each step), plus 1 if the faulty run failed
    weights_identical client state image and server weights + optimizer state, bit for bit
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy.typing as npt

from tinysplit.core.errors import TinysplitError
from tinysplit.host.training.checkpoint import Keeper, RunConfig, RunDir
from tinysplit.host.training.session import Export
from tinysplit.host.training.trainer import TrainConfig, TrainResult, split_train
from tinysplit.host.transport.faults import FaultRates, FaultyPort
from tinysplit.host.transport.link import ClientLink, Timeouts

#: Per-frame fault probability of each kind, and board resets per host frame, of a soak.
SOAK_FAULT_RATE = 0.02
SOAK_RESET_RATE = 0.002
#: Fast timeouts for local boards: a lost frame costs this long, not seconds. A native board
#: answers over a socket in well under a millisecond; the backoff reaches 0.64 s so that a
#: host busy with other work is waited for (16 attempts span ~8 s) rather than given up on.
LOCAL_TIMEOUTS = Timeouts(
    reply_s=0.02, bytes_per_s=1_000_000.0, silence_s=10.0, gap_s=0.05, backoff_max=32.0
)
QEMU_TIMEOUTS = Timeouts(reply_s=0.3, bytes_per_s=10_000.0, silence_s=10.0, gap_s=0.1)


@dataclass
class Outcome:
    """One training run and what it ended with."""

    result: TrainResult | None
    client_state: bytes
    server: list[npt.NDArray[Any]]
    faults: dict[str, int]
    recovered: int  # faults injected before the run's last progress
    link: dict[str, int]
    board: dict[str, int]
    seconds: float
    error: str | None = None
    steps: int = 0
    step_crcs: dict[int, int] = field(default_factory=dict)


def train_through_proxy(
    start_board: Callable[[], AbstractContextManager[str]],
    export: Export,
    cfg: TrainConfig,
    *,
    rates: FaultRates,
    seed: int,
    timeouts: Timeouts,
    max_steps: int | None = None,
    seconds: float | None = None,
    checkpoint_every: int = 10,
    run_dir: Path | None = None,
    eval_every_epoch: bool = True,
    reset_at: tuple[int, ...] = (),
    private: bool = False,
) -> Outcome:
    """Trains through a FaultyPort (rates may be all 0: a clean run through the same code).
    private: a --private run (with a sealed export, its checkpoints hold the sealed image)."""
    from tinysplit.host.training.server import ServerSegment

    config = RunConfig(
        model=str(export.manifest.get("model", "?")),
        model_hash=export.model_hash.hex(),
        model_dir=str(export.path),
        epochs=cfg.epochs,
        batch=cfg.batch,
        lr=cfg.lr,
        seed=cfg.seed,
        max_steps=max_steps,
        checkpoint_every=checkpoint_every,
        private=private,
        sealed=bool(export.manifest.get("sealed", False)),
    )
    started = time.monotonic()
    progress_faults = [0]
    with FaultyPort(start_board, rates, seed, reset_at=reset_at) as port:
        link = ClientLink(port, timeouts=timeouts, **export.link_key())

        def stop() -> bool:
            progress_faults[0] = sum(port.injected.values())
            return seconds is not None and time.monotonic() - started >= seconds

        keeper = Keeper(
            RunDir(run_dir) if run_dir is not None else None,
            config,
            expected_hash=export.model_hash,
        )
        server = ServerSegment.load(export.path / "server.keras", cfg.lr)
        result: TrainResult | None = None
        error = None
        try:
            link.hello(export.model_hash)
            result = split_train(
                link,
                server,
                cfg,
                progress=False,
                eval_every_epoch=eval_every_epoch,
                max_steps=max_steps,
                keeper=keeper,
                stop=stop,
            )
            progress_faults[0] = sum(port.injected.values())
        except TinysplitError as exc:
            error = str(exc)
        port.enabled = False  # the counters, over a clean link
        board: dict[str, int] = {}
        with contextlib.suppress(TinysplitError):
            board = link.board_stats()
        last = keeper.last
        return Outcome(
            result=result,
            client_state=(last.client_state or b"") if last else b"",
            server=[*last.server_weights, *last.optimizer] if last else [],
            faults=port.summary(),
            recovered=progress_faults[0],
            link={**link.stats.as_dict(), **link.decoder.stats()},
            board=board,
            seconds=time.monotonic() - started,
            error=error,
            steps=result.steps if result else (last.step if last else 0),
            step_crcs=result.step_crcs if result else {},
        )


def identical(a: Outcome, b: Outcome) -> bool:
    """Client state image and server weights + optimizer state equal bit for bit."""
    return (
        bool(a.client_state)
        and a.client_state == b.client_state
        and len(a.server) == len(b.server)
        and all(
            x.dtype == y.dtype and x.shape == y.shape and x.tobytes() == y.tobytes()
            for x, y in zip(a.server, b.server, strict=True)
        )
    )


def lost_steps(faulty: Outcome, clean: Outcome) -> int:
    """Steps whose client weights after the step differ from the clean run's, or never ran."""
    lost = sum(1 for s, crc in clean.step_crcs.items() if faulty.step_crcs.get(s) != crc)
    return lost + (1 if faulty.error else 0)


def board_factory(board: str, image: Path) -> Callable[[], AbstractContextManager[str]]:
    from tinysplit.core.boards import emulated_boards
    from tinysplit.host.board.launch import native_board, qemu_board

    if board == "native":
        return lambda: native_board(image)
    return lambda: qemu_board(image, emulated_boards()[board])


def soak(
    seconds: float,
    board: str,
    model_dir: Path | None,
    *,
    seed: int = 0,
    fault_rate: float = SOAK_FAULT_RATE,
    reset_rate: float = SOAK_RESET_RATE,
    checkpoint_every: int = 25,
    say: Callable[[str], None] = lambda text: None,
) -> dict[str, Any]:
    """The soak report (see the module docstring)."""
    from tinysplit.core.boards import local_boards
    from tinysplit.host.board.build import build_firmware

    if board not in local_boards():
        raise TinysplitError(
            f"soak runs a local board (the proxy restarts it): choose one of "
            f"{', '.join(local_boards())}"
        )
    with contextlib.ExitStack() as stack:
        if model_dir is None:
            from tinysplit.codegen.export import export_client

            model_dir = Path(stack.enter_context(tempfile.TemporaryDirectory())) / "export"
            say("exporting digits-mlp ...")
            export_client("digits-mlp", None, model_dir, seed=0)
        export = Export.load(model_dir)
        image = build_firmware(board, export.path)
        hp = export.hyper
        cfg = TrainConfig(
            epochs=10_000, batch=int(hp.get("batch", 32)), lr=float(hp.get("lr", 0.05)), seed=seed
        )
        timeouts = LOCAL_TIMEOUTS if board == "native" else QEMU_TIMEOUTS
        factory = board_factory(board, image)
        say(f"training through the fault proxy on {board} for {seconds:.0f} s ...")
        faulty = train_through_proxy(
            factory,
            export,
            cfg,
            rates=FaultRates.uniform(fault_rate, reset_rate),
            seed=seed,
            timeouts=timeouts,
            seconds=seconds,
            checkpoint_every=checkpoint_every,
        )
        say(f"the same {faulty.steps} steps over a clean link ...")
        clean = train_through_proxy(
            factory,
            export,
            cfg,
            rates=FaultRates(),
            seed=seed,
            timeouts=timeouts,
            max_steps=faulty.steps,
            checkpoint_every=checkpoint_every,
        )
    same = faulty.error is None and clean.error is None and identical(faulty, clean)
    injected = sum(faulty.faults.values())
    report: dict[str, Any] = {
        "faults_injected": injected,
        "recovered": faulty.recovered,
        "lost": lost_steps(faulty, clean),
        "weights_identical": same,
        "board": board,
        "steps": faulty.steps,
        "seconds": round(faulty.seconds, 1),
        "faults_by_kind": faulty.faults,
        "recoveries": faulty.result.recoveries if faulty.result else 0,
        "host_link": faulty.link,
        "board_link": faulty.board,
    }
    if faulty.error:
        report["error"] = faulty.error
    return report


def format_report(r: dict[str, Any]) -> str:
    kinds = ", ".join(f"{k} {v}" for k, v in r["faults_by_kind"].items())
    host = r["host_link"]
    lines = [
        "== tinysplit soak ==",
        f"board              {r['board']}",
        f"steps              {r['steps']} in {r['seconds']} s through the fault proxy",
        f"faults injected    {r['faults_injected']} ({kinds})",
        f"recovered          {r['recovered']}  (board restores from a checkpoint: "
        f"{r['recoveries']})",
        f"lost               {r['lost']}",
        f"weights identical  {'yes' if r['weights_identical'] else 'NO'} "
        "(client state and server weights vs a clean run, same seed and steps)",
        f"host link          retransmits {host['retransmits']}, timeouts {host['timeouts']}, "
        f"crc errors {host['crc_errors']}, resyncs {host['resyncs']}, "
        f"duplicates {host['duplicates']}, resets {host['resets']}",
    ]
    if r.get("error"):
        lines.append(f"error              {r['error']}")
    return "\n".join(lines)
