"""Several data holders: one model split-trained by K clients (boards), one server segment.

Each client holds its own shard (`tinysplit export --clients K --shards ...`) and its own copy
of the client layers; the host runs one server segment for all of them (../shared/SCHEDULES.md).

- sequential (vanilla split learning): clients take turns, an epoch of their own data each;
  the next client starts from the client weights of the one before, relayed through the host
  (GET_WEIGHTS from one board, PUT_WEIGHTS to the next).
- splitfed: every client steps at the same time on its own client weights, each on its own
  link; the shared server segment takes their minibatches in client order (so a run is
  reproducible), and every `average_every` rounds the client weights are averaged, weighted by
  shard size, and pushed back to every board.

One step on a link is the single-board step (TRAIN_STEP, SMASHED, [HEAD_IN/HEAD_OUT], GRAD,
COMMIT, STEP_DONE): exactly once per board as there. Links run concurrently (a thread each) so
that no board waits for another's wire; only the server segment is taken in turn.

A board that stops answering (silence, a reboot, a refused step) is reported and left out: in
sequential its turn is skipped, in splitfed it is left out of the rounds and of the average.
At each averaging point (sequential: each turn) a dropped board is asked again (`reconnect`);
when it answers it rejoins with the current weights. The report names every drop-out and
rejoin with its step.
"""

from __future__ import annotations

import copy
import itertools
import time
import zlib
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from tinysplit.core.errors import BadInput, ProtocolError, TinysplitError
from tinysplit.core.golden.params import range_quant, requantize
from tinysplit.core.protocol import StepDone
from tinysplit.host.training.schedule import Schedule
from tinysplit.host.training.trainer import (
    TEST_SPLIT,
    EpochLog,
    SplitClient,
    TrainConfig,
    evaluate,
    server_step,
)
from tinysplit.host.training.weights import load_state_image, ops_blob, state_image
from tinysplit.host.transport.link import SmashedBatch

SCHEDULES = ("sequential", "splitfed")

#: What a link raises when its board is gone (silent, rebooted, refusing the step).
GONE = (TinysplitError, OSError)


class FederatedClient(SplitClient, Protocol):
    """A client that can also hand over and take its whole state (ClientLink, GoldenClient)."""

    def pull_state(self) -> bytes: ...
    def push_state(self, image: bytes, step: int, weights_crc: int) -> Any: ...


@dataclass(eq=False)
class Member:
    """One client of the run: its link, its own data order, and whether it is in."""

    index: int
    link: FederatedClient
    schedule: Schedule
    reconnect: Callable[[], FederatedClient | None] | None = None
    present: bool = True


@dataclass(frozen=True)
class Event:
    step: int  # the global step (splitfed: round) at which it happened
    client: int
    what: str  # "drop-out" | "rejoin"
    why: str = ""


@dataclass
class FedCheckpoint:
    """Where a federated run is at the end of an epoch: every present board holds `image`
    (pushed at `step`); the server segment's weights are the caller's to keep with it."""

    epoch: int  # epochs done
    step: int
    image: bytes
    progress: dict[str, Any]  # history, events, counters, who is present

    @staticmethod
    def progress_of(result: FedResult, members: Sequence[Member]) -> dict[str, Any]:
        return {
            "history": [vars(h) for h in result.history],
            "events": [vars(e) for e in result.events],
            "samples": result.samples,
            "averages": result.averages,
            "present": [m.present for m in members],
        }


@dataclass
class FedResult:
    history: list[EpochLog] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    steps: int = 0  # rounds (splitfed) or steps (sequential)
    samples: int = 0  # training samples stepped, all clients
    train_seconds: float = 0.0
    server_seconds: float = 0.0  # host CPU in the server segment and quantization
    averages: int = 0
    final_state: bytes = b""

    @property
    def test_accuracy(self) -> float:
        return self.history[-1].test_accuracy if self.history else float("nan")

    @property
    def samples_per_s(self) -> float:
        return self.samples / self.train_seconds if self.train_seconds > 0 else 0.0


def average_states(
    template: Sequence[Any], images: Sequence[bytes], weights: Sequence[float]
) -> tuple[bytes, int]:
    """The weighted average of clients' state images: float32 master copies and running ranges
    averaged, then the int8 model re-derived from them exactly as the board's commit does
    (output quantization from the range, each layer's input quantization the previous one's
    output, re-quantization). Returns (state image, CRC of its weight blob)."""
    if not images:
        raise BadInput("no client state to average")
    states = []
    for image in images:
        ops = copy.deepcopy(list(template))
        load_state_image(ops, image)
        states.append([op for op in ops if hasattr(op, "master_w")])
    w = np.asarray(weights, dtype=np.float64)
    w = w / w.sum()
    out = copy.deepcopy(list(template))
    load_state_image(out, images[0])
    layers = [op for op in out if hasattr(op, "master_w")]
    for j, layer in enumerate(layers):
        for name in ("master_w", "master_b"):
            avg = sum(
                wk * getattr(s[j], name).astype(np.float64) for wk, s in zip(w, states, strict=True)
            )
            setattr(layer, name, np.asarray(avg, dtype=np.float32))
        rmin = np.float32(sum(wk * float(s[j].range_min) for wk, s in zip(w, states, strict=True)))
        rmax = np.float32(sum(wk * float(s[j].range_max) for wk, s in zip(w, states, strict=True)))
        if rmax > rmin:  # a layer with an output range (not the U-shaped head's float logits)
            layer.range_min, layer.range_max, layer.out_scale, layer.out_zp = range_quant(
                rmin, rmax
            )
    chain = [op for op in layers if op.range_max > op.range_min]
    for prev, op in itertools.pairwise(chain):
        op.in_scale, op.in_zp = np.float32(prev.out_scale), int(prev.out_zp)
    for layer in layers:
        requantize(layer)
    return state_image(out), zlib.crc32(ops_blob(out))


class _Federation:
    def __init__(
        self,
        members: Sequence[Member],
        server: Any,
        cfg: TrainConfig,
        template: Sequence[Any],
        *,
        schedule: str,
        average_every: int,
        say: Callable[[str], None],
        eval_every_epoch: bool,
        max_steps: int | None = None,
        first_step: int = 0,
        keep: Callable[[FedCheckpoint], None] | None = None,
        resume: FedCheckpoint | None = None,
    ) -> None:
        if schedule not in SCHEDULES:
            raise BadInput(f"--schedule {schedule}: choose one of {', '.join(SCHEDULES)}")
        if average_every < 1:
            raise BadInput("--average-every must be >= 1 round")
        self.members = list(members)
        self.server, self.cfg, self.template = server, cfg, list(template)
        self.schedule, self.average_every = schedule, average_every
        self.say, self.eval_every_epoch = say, eval_every_epoch
        self.max_steps, self.first_step = max_steps, first_step
        self.keep = keep
        self.start_epoch = 0
        # Averaging divides each client's move by the number of clients: their learning rate
        # is scaled up by as much, so that an averaged round moves the client layers as far
        # as that many single-board steps would (the server takes that many steps itself).
        # sequential: one client at a time, lr as given.
        self.client_lr = cfg.lr * (len(self.members) if schedule == "splitfed" else 1)
        self.result = FedResult()
        self.sizes = [m.schedule.n_train for m in self.members]
        self.pool = ThreadPoolExecutor(max_workers=max(1, len(self.members)))
        self.losses: list[float] = []
        self.correct = self.seen = 0
        self.eval_id = 0x8000_0000
        self.eval_seconds = 0.0
        if resume is not None:
            self._resume(resume)

    # ---- membership ------------------------------------------------------------------------

    def drop(self, m: Member, step: int, error: BaseException) -> None:
        m.present = False
        why = str(error).splitlines()[0] if str(error) else type(error).__name__
        self.result.events.append(Event(step, m.index, "drop-out", why))
        self.say(f"step {step}: client {m.index} dropped out ({why}); the others go on")

    def rejoin(self, step: int, image: bytes, crc: int) -> None:
        for m in self.members:
            if m.present or m.reconnect is None:
                continue
            try:
                link = m.reconnect()
                if link is None:
                    continue
                link.push_state(image, step, crc)
            except GONE:
                continue
            m.link, m.present = link, True
            self.result.events.append(Event(step, m.index, "rejoin"))
            self.say(f"step {step}: client {m.index} rejoined with the current weights")

    def present(self) -> list[Member]:
        return [m for m in self.members if m.present]

    # ---- one step on one client ------------------------------------------------------------

    def server_step(
        self, m: Member, step: int, smashed: SmashedBatch, n: int
    ) -> tuple[npt.NDArray[np.int8], npt.NDArray[np.float32]]:
        t0 = time.thread_time()  # this thread's: the server segment, quantization, HEAD_IN
        q, scales, loss, correct = server_step(m.link, self.server, step, smashed, n)
        self.result.server_seconds += time.thread_time() - t0
        self.losses.append(loss)
        self.correct += correct
        self.seen += n
        self.result.samples += n
        return q, scales

    # ---- epochs and evaluation -------------------------------------------------------------

    def end_epoch(self, epoch: int, last: bool) -> None:
        test = float("nan")
        t0 = time.monotonic()
        if self.eval_every_epoch or last:
            for m in self.present():
                try:

                    def next_id() -> int:
                        self.eval_id += 1
                        return self.eval_id

                    test = evaluate(m.link, self.server, TEST_SPLIT, m.link.n_test, next_id)
                    break
                except GONE as error:
                    self.drop(m, self.result.steps, error)
        self.eval_seconds += time.monotonic() - t0
        entry = EpochLog(
            epoch + 1,
            float(np.mean(self.losses)) if self.losses else float("nan"),
            self.correct / max(self.seen, 1),
            test,
        )
        self.result.history.append(entry)
        self.say(
            f"epoch {entry.epoch:3d}/{self.cfg.epochs}  loss {entry.loss:.4f}  "
            f"train acc {entry.train_accuracy:.4f}  test acc {entry.test_accuracy:.4f}  "
            f"clients {len(self.present())}/{len(self.members)}"
        )
        self.losses, self.correct, self.seen = [], 0, 0

    def average(self, step: int) -> tuple[bytes, int]:
        """Pulls every present client's state, averages, pushes it back; then rejoins."""
        here = self.present()
        pulled = list(self.pool.map(lambda m: _try(m.link.pull_state), here))
        ok = [
            (m, img)
            for m, img in zip(here, pulled, strict=True)
            if not isinstance(img, BaseException)
        ]
        for m, img in zip(here, pulled, strict=True):
            if isinstance(img, BaseException):
                self.drop(m, step, img)
        if not ok:
            raise ProtocolError(f"step {step}: every client dropped out; nothing to average")
        image, crc = average_states(
            self.template, [img for _, img in ok], [self.sizes[m.index] for m, _ in ok]
        )
        pushed = list(
            self.pool.map(
                lambda m: _try(lambda: m.link.push_state(image, step, crc)), [m for m, _ in ok]
            )
        )
        for (m, _), res in zip(ok, pushed, strict=True):
            if isinstance(res, BaseException):
                self.drop(m, step, res)
        self.result.averages += 1
        self.rejoin(step, image, crc)
        return image, crc

    # ---- checkpoints ---------------------------------------------------------------------------

    def _resume(self, ck: FedCheckpoint) -> None:
        """The run as it was at the end of epoch ck.epoch: its report so far, who was present,
        and the checkpoint's client state on every board that is (the caller restored the
        server segment)."""
        p = ck.progress
        self.result.history = [EpochLog(**h) for h in p["history"]]
        self.result.events = [Event(**e) for e in p["events"]]
        self.result.samples, self.result.averages = int(p["samples"]), int(p["averages"])
        self.result.final_state, self.result.steps = ck.image, ck.step
        self.first_step, self.start_epoch = ck.step, ck.epoch
        crc = zlib.crc32(ck.image[: self._blob_size()])
        for m, present in zip(self.members, p["present"], strict=True):
            m.present = bool(present)
            if m.present:
                try:
                    m.link.push_state(ck.image, ck.step, crc)
                except GONE as error:
                    self.drop(m, ck.step, error)
        self.rejoin(ck.step, ck.image, crc)

    def checkpoint(self, epoch: int, step: int, image: bytes) -> None:
        if self.keep is not None:
            progress = FedCheckpoint.progress_of(self.result, self.members)
            self.keep(FedCheckpoint(epoch, step, image, progress))

    # ---- the schedules -----------------------------------------------------------------------

    def splitfed(self) -> None:
        per_epoch = max(m.schedule.per_epoch for m in self.members)
        rounds = per_epoch * self.cfg.epochs
        if self.max_steps is not None:  # a measurement: rounds only, no average, no evaluation
            for r in range(min(rounds, self.max_steps)):
                self.round(r, per_epoch)
            return
        base = self.start_epoch * per_epoch  # rounds done before a resume
        self.first_step -= base
        for r in range(base, rounds):
            epoch, i = self.round(r, per_epoch)
            step = self.first_step + r + 1
            end_of_epoch = i == per_epoch - 1
            if (step % self.average_every == 0) or end_of_epoch:
                self.result.final_state, _ = self.average(step)
            if end_of_epoch:
                self.end_epoch(epoch, last=r == rounds - 1)
                self.checkpoint(epoch + 1, step, self.result.final_state)

    def round(self, r: int, per_epoch: int) -> tuple[int, int]:
        """Round r (from 0): one step on every present client that has one; (epoch, i)."""
        epoch, i = divmod(r, per_epoch)
        step = self.first_step + r + 1
        active = [m for m in self.present() if i < m.schedule.per_epoch]
        steps = {m.index: m.schedule[epoch * m.schedule.per_epoch + i] for m in active}
        fwd: dict[int, Future[SmashedBatch]] = {
            m.index: self.pool.submit(m.link.forward, step, self.client_lr, steps[m.index].indices)
            for m in active
        }
        bwd: dict[int, Future[StepDone]] = {}
        arrived: list[tuple[Member, SmashedBatch]] = []
        for m in active:  # all forward passes run at once; the server waits for each in turn
            try:
                arrived.append((m, fwd[m.index].result()))
            except GONE as error:
                self.drop(m, step, error)
        # The server takes the minibatches in client order (a run is reproducible); rotating
        # the order each round measured no better on by-class shards (seeds 0-2, digits-mlp).
        for m, smashed in arrived:
            q, scales = self.server_step(m, step, smashed, smashed.acts.shape[0])
            bwd[m.index] = self.pool.submit(m.link.backward, step, q, scales)
        for m in active:
            if m.index in bwd:
                try:
                    bwd[m.index].result()
                except GONE as error:
                    self.drop(m, step, error)
        self.result.steps = step
        return epoch, i

    def sequential(self) -> None:
        step = self.first_step
        image: bytes | None = self.result.final_state or None
        crc = zlib.crc32(image[: self._blob_size()]) if image else 0
        for epoch in range(self.start_epoch, self.cfg.epochs):
            for m in self.members:
                if not m.present and image is not None:
                    step += 1
                    self.rejoin(step, image, crc)
                if not m.present:
                    continue
                try:
                    if image is not None:  # the previous client's weights, relayed
                        step += 1
                        m.link.push_state(image, step, crc)
                    sched = m.schedule
                    for k in range(epoch * sched.per_epoch, (epoch + 1) * sched.per_epoch):
                        s = sched[k]
                        step += 1
                        smashed = m.link.forward(step, self.cfg.lr, s.indices)
                        q, scales = self.server_step(m, step, smashed, len(s.indices))
                        m.link.backward(step, q, scales)
                    image = m.link.pull_state()
                    crc = zlib.crc32(image[: self._blob_size()])
                except GONE as error:
                    self.drop(m, step, error)
                self.result.steps = step
            if image is not None:
                self.result.final_state = image
                for m in self.present():  # the model after this epoch, on every board
                    try:
                        step += 1
                        m.link.push_state(image, step, crc)
                    except GONE as error:
                        self.drop(m, step, error)
            self.end_epoch(epoch, last=epoch == self.cfg.epochs - 1)
            if image is not None:
                self.checkpoint(epoch + 1, step, image)

    def _blob_size(self) -> int:
        return len(ops_blob(self.template))


def _try(fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except GONE as error:
        return error


def federated_train(
    members: Sequence[Member],
    server: Any,
    cfg: TrainConfig,
    template: Sequence[Any],
    *,
    schedule: str = "splitfed",
    average_every: int = 1,
    say: Callable[[str], None] = lambda text: None,
    eval_every_epoch: bool = True,
    max_steps: int | None = None,
    first_step: int = 0,
    keep: Callable[[FedCheckpoint], None] | None = None,
    resume: FedCheckpoint | None = None,
) -> FedResult:
    """Trains with every member for cfg.epochs of its own data (see the module docstring).
    template: the export's golden client layers (with the head of a U-shaped export), for
    averaging and relaying states. keep: called with a checkpoint at the end of every epoch
    (the server segment's weights go with it); resume: go on from such a checkpoint, the
    server segment already restored to it."""
    fed = _Federation(members, server, cfg, template, schedule=schedule,
                      average_every=average_every, say=say, eval_every_epoch=eval_every_epoch,
                      max_steps=max_steps, first_step=first_step, keep=keep,
                      resume=resume)  # fmt: skip
    start = time.monotonic()
    try:
        fed.splitfed() if schedule == "splitfed" else fed.sequential()
    finally:
        fed.pool.shutdown(wait=True)
    fed.result.train_seconds = time.monotonic() - start - fed.eval_seconds
    return fed.result
