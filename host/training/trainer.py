"""Split training: the board runs the client layers in int8, this host the server segment.

Per step: TRAIN_STEP → the board streams the minibatch's cut activations → the server segment
computes the mean loss, its own update and dL/d(cut) → the host quantizes that gradient per
sample (int8, max-abs scale) and sends it back with COMMIT → the board back-propagates, applies
SGD to its layers and answers STEP_DONE.

U-shaped (an export with --labels client): the board's SMASHED frames carry no labels; the
server segment ends before the model's last layer, and its outputs go back to the board
(HEAD_IN, int8 per sample) whose head finishes the forward pass, computes the loss against its
own labels and answers the gradient of those outputs (HEAD_OUT), from which the server
back-propagates to the cut as above. This host never sees a label or a logit: loss and
accuracy are the board's sums.

Exactly once: the host moves on (and checkpoints) only after STEP_DONE, when both sides hold
the step. The link retries a lost request without applying anything twice; when the board
loses its state instead (a reboot), a Keeper puts both sides back to the last checkpoint and the
steps since are run again — with the fixed data order and deterministic arithmetic on both
sides, they give the very same weights (tests/robust).
"""

from __future__ import annotations

import contextlib
import copy
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import FrameType
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import numpy.typing as npt
from tqdm import tqdm

from tinysplit.core.errors import NonFiniteGradient, ProtocolError, TinysplitError
from tinysplit.core.golden import quantize_gradient, quantize_gradient_packed
from tinysplit.core.protocol import HeadMode, StepDone
from tinysplit.core.protocol import wire as wire_codec
from tinysplit.host.training.schedule import Schedule, Step
from tinysplit.host.transport.link import BoardReset, HeadResult, SmashedBatch, StepLost

if TYPE_CHECKING:
    from tinysplit.host.training.checkpoint import Checkpoint, Keeper, RecoverableClient
    from tinysplit.host.training.server import ServerSegment

TRAIN_SPLIT, TEST_SPLIT = 0, 1
EVAL_CHUNK = 256  # samples per EVAL request
EVAL_REQUEST_BASE = 0x8000_0000  # eval request ids never collide with step ids


class SplitClient(Protocol):
    """The client end of split training: a board behind a ClientLink, or the golden model
    in-process (tinysplit.host.training.simulate)."""

    @property
    def n_train(self) -> int: ...
    @property
    def n_test(self) -> int: ...
    def forward(self, step: int, lr: float, indices: npt.NDArray[np.int64]) -> SmashedBatch: ...
    def backward(
        self, step: int, grads: npt.NDArray[np.int8], scales: npt.NDArray[np.float32]
    ) -> StepDone: ...
    def evaluate(self, split: int, start: int, count: int, request_id: int) -> SmashedBatch: ...
    def head(
        self,
        step: int,
        mode: HeadMode,
        scales: npt.NDArray[np.float32],
        acts: npt.NDArray[np.int8],
    ) -> HeadResult: ...


@dataclass(frozen=True)
class TrainConfig:
    epochs: int
    batch: int
    lr: float
    seed: int


@dataclass
class EpochLog:
    epoch: int
    loss: float
    train_accuracy: float
    test_accuracy: float


@dataclass
class TrainState:
    """Where a run is, between two steps: what a checkpoint keeps of the loop (as JSON)."""

    step: int = 0  # last committed step (0: none)
    epoch: int = 0  # the epoch the running sums below belong to
    losses: list[float] = field(default_factory=list)
    correct: int = 0
    seen: int = 0
    history: list[EpochLog] = field(default_factory=list)
    device_cycles: int = 0
    last_weights_crc: int = 0
    finished: bool = False

    def to_json(self) -> dict[str, Any]:
        out = dict(vars(self))
        out["history"] = [dict(vars(h)) for h in self.history]
        out["losses"] = list(self.losses)
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TrainState:
        data = copy.deepcopy(data)  # the checkpoint's own stays as it was
        data["history"] = [EpochLog(**h) for h in data.get("history", [])]
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass
class TrainResult:
    history: list[EpochLog] = field(default_factory=list)
    steps: int = 0
    train_seconds: float = 0.0
    device_cycles: int = 0
    last_weights_crc: int = 0
    step_crcs: dict[int, int] = field(default_factory=dict)  # weights CRC after each step
    recoveries: int = 0  # times both sides went back to a checkpoint
    checkpoints: int = 0
    steps_run: int = 0  # steps this call trained (a resumed run started past 0)

    @property
    def test_accuracy(self) -> float:
        return self.history[-1].test_accuracy if self.history else float("nan")

    @property
    def steps_per_s(self) -> float:
        return self.steps_run / self.train_seconds if self.train_seconds > 0 else 0.0


class Interrupted(KeyboardInterrupt):
    """Ctrl-C, taken at a step boundary: str() says where the run's checkpoint is."""


def quantize_cut_gradient(
    grad: npt.NDArray[np.float32], loss: float, step: int, smashed: SmashedBatch | None = None
) -> tuple[npt.NDArray[np.int8], npt.NDArray[np.float32]]:
    """int8 per sample with its own max-abs scale; refuses NaN/inf before anything is sent.
    A coded wire (smashed.wire): 0 where SPARSE sends nothing, [-7, 7] with GRADS4."""
    if not np.isfinite(loss) or not np.all(np.isfinite(grad)):
        raise NonFiniteGradient(
            f"step {step}: the loss or cut gradient is not finite (loss={loss}); nothing was "
            "sent to the board — lower the learning rate (--lr) and restart"
        )
    q = np.empty(grad.shape, dtype=np.int8)
    scales = np.empty(grad.shape[0], dtype=np.float32)
    wire = smashed.wire if smashed is not None else 0
    if wire:
        assert smashed is not None
        mask = wire_codec.sent_mask(smashed.acts, smashed.zero_point, wire)
        for i, row in enumerate(grad):
            keep = mask[i] if mask is not None else None
            q[i], scales[i] = quantize_gradient_packed(row, keep, bool(wire & wire_codec.GRADS4))
        return q, scales
    for i, row in enumerate(grad):
        q[i], scales[i] = quantize_gradient(row)
    return q, scales


def quantize_head_input(
    out: npt.NDArray[np.float32], step: int
) -> tuple[npt.NDArray[np.int8], npt.NDArray[np.float32]]:
    """U-shaped: the server's outputs for the board's head, int8 per sample with its own
    max-abs scale (zero point 0); refuses NaN/inf before anything is sent."""
    if not np.all(np.isfinite(out)):
        raise NonFiniteGradient(
            f"step {step}: the server's outputs are not finite; nothing was sent to the board — "
            "lower the learning rate (--lr) and restart"
        )
    q = np.empty(out.shape, dtype=np.int8)
    scales = np.empty(out.shape[0], dtype=np.float32)
    for i, row in enumerate(out):
        q[i], scales[i] = quantize_gradient(row)  # the same max-abs int8 as a gradient's
    return q, scales


def server_step(
    link: SplitClient, server: ServerSegment, step: int, smashed: SmashedBatch, n: int
) -> tuple[npt.NDArray[np.int8], npt.NDArray[np.float32], float, int]:
    """The host's part of a training step on one client's minibatch of n samples: the server
    segment's forward, loss (U-shaped: the board's head, over HEAD_IN/HEAD_OUT), backward and
    update. Returns the int8 cut gradient and its scales, the mean loss and correct count."""
    if smashed.labels is None:  # U-shaped: the board's head has the labels and the loss
        hq, hs = quantize_head_input(server.forward(smashed.dequantize()), step)
        head = link.head(step, HeadMode.TRAIN, hs, hq)
        grad = server.backward(head.gradient())
        loss, correct = head.loss_sum / n, head.correct
    else:
        loss, grad, logits = server.train_step(smashed.dequantize(), smashed.labels)
        correct = int(np.sum(np.argmax(logits, axis=1) == smashed.labels))
    q, scales = quantize_cut_gradient(grad, loss, step, smashed)
    return q, scales, loss, correct


def evaluate(
    link: SplitClient,
    server: ServerSegment,
    split: int,
    n: int,
    request_id: int | Callable[[], int],
) -> float:
    """Accuracy of the split model on a whole split of the board's data shard. request_id: one
    id for every EVAL, or a function giving a new one for each (so a late reply to one chunk
    is never taken for another's)."""
    correct = 0
    for start in range(0, n, EVAL_CHUNK):
        count = min(EVAL_CHUNK, n - start)
        rid = request_id() if callable(request_id) else request_id
        batch = link.evaluate(split, start, count, rid)
        out = server.predict(batch.dequantize())
        if batch.labels is None:  # U-shaped: the board's head finishes and counts
            q, scales = quantize_head_input(out, rid)
            correct += link.head(rid, HeadMode.EVAL, scales, q).correct
        else:
            correct += int(np.sum(np.argmax(out, axis=1) == batch.labels))
    return correct / n


class _CtrlC:
    """Ctrl-C waits for the step in flight: `requested` is checked between steps, where both
    sides agree and a checkpoint is consistent. A second Ctrl-C stops at once."""

    def __init__(self) -> None:
        self.requested = False

    def _handler(self, signum: int, frame: FrameType | None) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    @contextlib.contextmanager
    def installed(self, enabled: bool) -> Iterator[_CtrlC]:
        if not enabled or threading.current_thread() is not threading.main_thread():
            yield self
            return
        previous = signal.signal(signal.SIGINT, self._handler)
        try:
            yield self
        finally:
            signal.signal(signal.SIGINT, previous)


class _Run:
    """One split_train call: the loop, and what it needs to start over from a checkpoint."""

    def __init__(
        self,
        link: SplitClient,
        server: ServerSegment,
        cfg: TrainConfig,
        steps: Schedule,
        total: int,
        keeper: Keeper | None,
        bar: tqdm[Any],
        log: Callable[[str], None],
        eval_every_epoch: bool,
        stop: Callable[[], bool] | None,
    ) -> None:
        self.link, self.server, self.cfg = link, server, cfg
        self.steps, self.total = steps, total
        self.keeper, self.bar, self.log = keeper, bar, log
        self.eval_every_epoch = eval_every_epoch
        self.stop = stop
        self.result = TrainResult()
        self.state = TrainState()
        self.eval_seconds = 0.0
        self.eval_requests = 0  # never goes back: every EVAL of this process has its own id

    def next_request_id(self) -> int:
        self.eval_requests += 1
        return EVAL_REQUEST_BASE + self.eval_requests

    @property
    def recoverable(self) -> RecoverableClient:
        return self.link  # type: ignore[return-value]

    def checkpoint(self, *, finished: bool = False) -> Checkpoint:
        assert self.keeper is not None
        s = self.state
        return self.keeper.checkpoint(
            self.recoverable,
            self.server,
            s.step,
            s.to_json(),
            s.last_weights_crc,
            self.steps.order(s.epoch),
            finished=finished,
        )

    def go_back(self, ck: Checkpoint) -> None:
        """The loop continues from checkpoint ck (already restored on both sides)."""
        self.state = TrainState.from_json(ck.progress)
        if not np.array_equal(ck.order, self.steps.order(self.state.epoch)):
            raise TinysplitError(
                f"the checkpoint's data order (epoch {self.state.epoch + 1}) is not this run's: "
                "same --seed and --batch? (numpy's generator may have changed)"
            )
        self.bar.n = min(self.state.step, self.total)
        self.bar.refresh()

    def end_epoch(self, last: bool) -> None:
        s = self.state
        t0 = time.monotonic()
        test_acc = float("nan")
        if self.eval_every_epoch or last:
            test_acc = evaluate(
                self.link, self.server, TEST_SPLIT, self.link.n_test, self.next_request_id
            )
        self.eval_seconds += time.monotonic() - t0
        entry = EpochLog(
            s.epoch + 1,
            float(np.mean(s.losses)) if s.losses else float("nan"),
            s.correct / max(s.seen, 1),
            test_acc,
        )
        s.history.append(entry)
        self.log(
            f"epoch {entry.epoch:3d}/{self.cfg.epochs}  loss {entry.loss:.4f}  "
            f"train acc {entry.train_accuracy:.4f}  test acc {entry.test_accuracy:.4f}"
        )
        s.losses = []
        s.correct = s.seen = 0

    def train_step(self, s: Step) -> None:
        smashed = self.link.forward(s.step, self.cfg.lr, s.indices)
        q, scales, loss, correct = server_step(
            self.link, self.server, s.step, smashed, len(s.indices)
        )
        done = self.link.backward(s.step, q, scales)
        st = self.state
        st.step = s.step
        st.device_cycles += done.cycles
        st.last_weights_crc = done.weights_crc
        st.losses.append(loss)
        st.correct += correct
        st.seen += len(s.indices)
        self.result.step_crcs[s.step] = done.weights_crc
        self.bar.update(1)
        self.bar.set_postfix(loss=f"{loss:.3f}", refresh=False)

    def interrupted(self) -> Interrupted:
        """Ctrl-C at a step boundary: a checkpoint of this step, and where it is."""
        assert self.keeper is not None
        ck = self.checkpoint()
        run = self.keeper.run
        if run is None:
            return Interrupted(f"stopped after step {ck.step}")
        return Interrupted(
            f"stopped after step {ck.step}; checkpoint saved in {run.path} — resume with "
            f"`tinysplit train --resume {run.path}`"
        )

    def run(self, ctrl_c: _CtrlC) -> None:
        """From self.state to the end of the run (the final evaluation and checkpoint)."""
        st = self.state
        if st.finished:
            return
        for s in self.steps.steps(st.step, self.total):
            if s.epoch != st.epoch:
                self.end_epoch(last=False)
                st.epoch = s.epoch
            self.train_step(s)
            if self.keeper is not None:
                self.keeper.committed(st.step)
                if ctrl_c.requested:
                    raise self.interrupted()
                if self.keeper.due(st.step):
                    self.checkpoint()
            if self.stop is not None and self.stop():
                self.total = st.step
                break
        self.end_epoch(last=True)
        st.finished = True
        if self.keeper is not None:
            self.checkpoint(finished=True)


def _start(run: _Run, keeper: Keeper, resume: Checkpoint | None) -> None:
    """Both sides to the run's first state: a checkpoint's (resume), or step 0 — whatever
    weights the board holds (at boot, the export's) and a fresh numbering of steps."""
    from tinysplit.host.training.checkpoint import MAX_RECOVERIES_WITHOUT_PROGRESS

    link = run.recoverable
    for _ in range(MAX_RECOVERIES_WITHOUT_PROGRESS):
        try:
            if resume is not None:
                keeper.last = resume
                keeper.restore(link, run.server, resume)
                run.go_back(resume)
            else:
                run.state.last_weights_crc = link.sync(0).weights_crc
                run.checkpoint()
            return
        except (BoardReset, StepLost) as error:
            keeper.say(f"{error}; starting over")
            link.hello(keeper.expected_hash)
    raise ProtocolError("the board kept rebooting before the run could start")


def _name_checkpoint(error: TinysplitError, keeper: Keeper | None) -> None:
    """Adds to the error's one line where the run can be resumed from."""
    from tinysplit.host.training.checkpoint import CheckpointError

    if keeper is None or keeper.run is None or keeper.last is None:
        return
    if isinstance(error, CheckpointError) or len(error.args) != 1:
        return
    path, step = keeper.run.path, keeper.last.step
    if isinstance(error, NonFiniteGradient):  # resuming would meet the same numbers again
        hint = f"last checkpoint: step {step} in {path}"
    else:
        hint = f"last checkpoint: step {step}; resume with `tinysplit train --resume {path}`"
    error.args = (f"{error.args[0]} ({hint})",)


def split_train(
    link: SplitClient,
    server: ServerSegment,
    cfg: TrainConfig,
    *,
    progress: bool = True,
    eval_every_epoch: bool = True,
    max_steps: int | None = None,
    log_to_stderr: bool = False,
    keeper: Keeper | None = None,
    resume: Checkpoint | None = None,
    stop: Callable[[], bool] | None = None,
) -> TrainResult:
    """Trains for cfg.epochs (or max_steps); returns per-epoch loss and accuracy.

    With a keeper (the link must then be a ClientLink), the run is checkpointed and survives
    board reboots; with `resume` (a checkpoint of this run), it goes on from there. `stop` is
    asked after each step whether to end the run early (the soak's clock)."""
    n_train = link.n_train
    steps = Schedule(n_train, cfg.batch, cfg.epochs, cfg.seed)
    total = len(steps) if max_steps is None else min(len(steps), max_steps)
    bar = tqdm(
        total=total,
        desc="split training",
        unit="step",
        disable=None if progress else True,  # None: only on a terminal
        dynamic_ncols=True,
        leave=False,
    )

    def log(text: str) -> None:
        if progress:
            bar.write(text, file=sys.stderr if log_to_stderr else sys.stdout)

    run = _Run(link, server, cfg, steps, total, keeper, bar, log, eval_every_epoch, stop)
    started = time.monotonic()
    try:
        if keeper is not None:
            _start(run, keeper, resume)
        first_step = run.state.step
        with _CtrlC().installed(keeper is not None) as ctrl_c:
            while True:
                try:
                    run.run(ctrl_c)
                    break
                except (BoardReset, StepLost) as error:
                    if keeper is None:
                        raise
                    run.go_back(keeper.recover(run.recoverable, server, error))
                    run.result.recoveries += 1
                except TinysplitError as error:
                    _name_checkpoint(error, keeper)
                    raise
    finally:
        bar.close()
    result = run.result
    st = run.state
    result.history = st.history
    result.steps = st.step
    result.steps_run = st.step - first_step
    result.device_cycles = st.device_cycles
    result.last_weights_crc = st.last_weights_crc
    result.checkpoints = keeper.events.checkpoints if keeper is not None else 0
    result.train_seconds = time.monotonic() - started - run.eval_seconds
    return result
