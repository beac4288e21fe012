"""`tinysplit bench`: the split-training runs the link, host-overhead and accuracy sections
measure, and the centralized float baseline they are compared with.

A run on a board goes through a metering wrapper around the ClientLink (`_Metered`) that counts
the wire bytes and frames of the training steps only (HELLO and evaluation excluded), and a
server segment that times its own steps (`_TimedServer`). The in-process run uses the numpy
golden model (host/training/simulate.py GoldenClient) behind the same trainer loop.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from tinysplit.core.protocol import StepDone
from tinysplit.host.training.trainer import TrainConfig

if TYPE_CHECKING:
    from tinysplit.host.transport.link import ClientLink, SmashedBatch

QUICK_MAX_STEPS = 100  # --quick: as many whole epochs as fit in this many steps (at least one)


@dataclass(frozen=True)
class Prepared:
    """One export of a reference workload, and the training settings the bench runs it with."""

    workload: str
    seed: int  # initial weights (export) and data order (training)
    path: Path
    manifest: dict[str, Any]
    cfg: TrainConfig


def quick_epochs(n_train: int, batch: int, epochs: int) -> int:
    from tinysplit.host.training.schedule import steps_per_epoch

    return max(1, min(epochs, QUICK_MAX_STEPS // steps_per_epoch(n_train, batch)))


def prepare(workload: str, seed: int, out_dir: Path, quick: bool, wire: str = "int8") -> Prepared:
    """Exports the workload (default cut, board mps2_an386's budget) with initial weights from
    `seed`; its own batch, lr and epochs (--quick: fewer epochs), data order from `seed`."""
    from tinysplit.codegen.export import export_client

    res = export_client(workload, None, out_dir, seed=seed, wire=wire)
    hp = res.manifest["hyperparameters"]
    epochs = int(hp["epochs"])
    if quick:
        epochs = quick_epochs(int(res.manifest["n_train"]), int(hp["batch"]), epochs)
    cfg = TrainConfig(epochs=epochs, batch=int(hp["batch"]), lr=float(hp["lr"]), seed=seed)
    return Prepared(workload, seed, out_dir, res.manifest, cfg)


# ---- payload of a training step, from the protocol's own definition -------------------------


def step_payload(batch: int, cut_size: int, smashed: SmashedBatch | None = None) -> dict[str, int]:
    """Payload bytes and frames of one training step of `batch` samples, each way: TRAIN_STEP,
    GRAD and COMMIT to the client; SMASHED and STEP_DONE to the server (docs/protocol.md). A
    coded wire's (smashed.wire): SMASHED_PACKED and GRAD_PACKED as the step's activations make
    them."""
    from tinysplit.core.protocol import spec
    from tinysplit.core.protocol import wire as codec

    frames = spec.training_step_payloads(batch, cut_size)
    if smashed is not None and smashed.wire:
        frames[spec.MsgType.SMASHED], frames[spec.MsgType.GRAD] = codec.step_frames(
            smashed.acts, smashed.zero_point, smashed.wire, smashed.labels is not None
        )
    to_client = [p for m in spec.TO_BOARD for p in frames[m]]
    to_server = [p for m in spec.TO_HOST for p in frames[m]]
    return {
        "to_client": sum(to_client),
        "to_server": sum(to_server),
        "frames_to_client": len(to_client),
        "frames_to_server": len(to_server),
    }


_WAYS = ("to_client", "to_server")


@dataclass
class LinkMeter:
    """Training-step traffic: wire bytes and frames as the link counted them, payload bytes
    and frames as the protocol defines them for the same steps."""

    steps: int = 0
    samples: int = 0
    wire: dict[str, int] = field(default_factory=lambda: dict.fromkeys(_WAYS, 0))
    frames: dict[str, int] = field(default_factory=lambda: dict.fromkeys(_WAYS, 0))
    payload: dict[str, int] = field(default_factory=lambda: dict.fromkeys(_WAYS, 0))
    payload_frames: dict[str, int] = field(default_factory=lambda: dict.fromkeys(_WAYS, 0))
    sealed: bool = False  # a paired board's link: every frame carries a counter and a tag

    def to_json(self) -> dict[str, Any]:
        return {
            "sealed": self.sealed,
            "steps": self.steps,
            "samples": self.samples,
            "wire_bytes": dict(self.wire),
            "frames": dict(self.frames),
            "payload_bytes": dict(self.payload),
            "frames_expected": dict(self.payload_frames),
        }


class _Metered:
    """A SplitClient: the board behind `link`, counting what its training steps move."""

    def __init__(self, link: ClientLink) -> None:
        self.link = link
        self.meter = LinkMeter()

    @property
    def n_train(self) -> int:
        return self.link.n_train

    @property
    def n_test(self) -> int:
        return self.link.n_test

    def _counted(self, call: Callable[[], Any]) -> Any:
        s = self.link.stats
        before = (s.bytes_to_client, s.bytes_to_server, s.frames_out, s.frames_in)
        out = call()
        m = self.meter
        m.sealed = self.link.sealed is not None
        m.wire["to_client"] += s.bytes_to_client - before[0]
        m.wire["to_server"] += s.bytes_to_server - before[1]
        m.frames["to_client"] += s.frames_out - before[2]
        m.frames["to_server"] += s.frames_in - before[3]
        return out

    def forward(self, step: int, lr: float, indices: npt.NDArray[np.int64]) -> SmashedBatch:
        m = self.meter
        m.steps += 1
        m.samples += len(indices)
        out: SmashedBatch = self._counted(lambda: self.link.forward(step, lr, indices))
        expected = step_payload(len(indices), self.link.cut_size, out)
        for way in _WAYS:
            m.payload[way] += expected[way]
            m.payload_frames[way] += expected[f"frames_{way}"]
        return out

    def backward(
        self, step: int, grads: npt.NDArray[np.int8], scales: npt.NDArray[np.float32]
    ) -> StepDone:
        out: StepDone = self._counted(lambda: self.link.backward(step, grads, scales))
        return out

    def evaluate(self, split: int, start: int, count: int, request_id: int) -> SmashedBatch:
        return self.link.evaluate(split, start, count, request_id)


def _timed_server(path: Path, lr: float) -> Any:
    """A ServerSegment whose train_step keeps its own wall time per call (`.step_seconds`)."""
    import keras

    from tinysplit.host.training.server import ServerSegment

    class TimedServer(ServerSegment):
        def __init__(self, model: keras.Model, lr: float) -> None:
            super().__init__(model, lr)
            self.step_seconds: list[float] = []

        def train_step(
            self, a: npt.NDArray[np.float32], y: npt.NDArray[np.int64]
        ) -> tuple[float, npt.NDArray[np.float32], npt.NDArray[np.float32]]:
            t0 = time.perf_counter()
            out = super().train_step(a, y)
            self.step_seconds.append(time.perf_counter() - t0)
            return out

    return TimedServer(keras.models.load_model(path, compile=False), lr)


@dataclass
class RunMeasure:
    """One split-training run: where, how fast, how accurate, and what its steps moved."""

    where: str
    steps: int
    train_seconds: float
    steps_per_s: float
    test_accuracy: float
    host_step_s: float  # median wall time of the server segment's train_step
    link: LinkMeter | None = None
    link_errors: dict[str, int] | None = None

    def to_json(self) -> dict[str, Any]:
        out = {k: v for k, v in vars(self).items() if k != "link"}
        out["link"] = self.link.to_json() if self.link is not None else None
        return out


def _train(client: Any, prep: Prepared, where: str) -> tuple[RunMeasure, Any]:
    from tinysplit.host.training.trainer import split_train

    server = _timed_server(prep.path / "server.keras", prep.cfg.lr)
    result = split_train(client, server, prep.cfg, progress=False, eval_every_epoch=False)
    median = statistics.median(server.step_seconds) if server.step_seconds else float("nan")
    measure = RunMeasure(
        where, result.steps, result.train_seconds, result.steps_per_s, result.test_accuracy, median
    )
    return measure, result


def run_board(prep: Prepared, board: str, build_dir: Path) -> RunMeasure:
    """Builds the export for `board` (native or emulated), boots it and split-trains."""
    from tinysplit.host.training.session import Export, board_url, connect

    export = Export.load(prep.path)
    with (
        board_url(board, export, build_dir) as url,
        connect(url, export) as (link, _hello),
    ):
        metered = _Metered(link)
        measure, _ = _train(metered, prep, board)
        measure.link = metered.meter
        errors = {**link.stats.as_dict(), **link.decoder.stats()}
        keep = ("retransmits", "timeouts", "duplicates", "crc_errors", "resyncs", "resets")
        measure.link_errors = {k: int(errors[k]) for k in keep if k in errors}
    return measure


def run_in_process(prep: Prepared) -> RunMeasure:
    """The same run with the golden model as the client (no board, no link)."""
    from tinysplit.codegen.export import load_client_state
    from tinysplit.host.training.simulate import GoldenClient

    client = GoldenClient(load_client_state(prep.path))
    measure, _ = _train(client, prep, "in-process")
    return measure


def centralized_accuracy(prep: Prepared) -> float:
    """Test accuracy of the whole model trained in float Keras: same data, order, epochs,
    batch, lr and initial weights (the export's full.keras)."""
    from tinysplit.host.training.centralized import export_baseline

    c = prep.cfg
    return export_baseline(
        prep.path, epochs=c.epochs, batch=c.batch, lr=c.lr, seed=c.seed
    ).test_accuracy
