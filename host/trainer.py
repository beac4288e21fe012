"""Split training: the board runs the client layers in int8, this host the server segment.

Per step: TRAIN_STEP → the board streams the minibatch's cut activations → the server segment
computes the mean loss, its own update and dL/d(cut) → the host quantizes that gradient per
sample (int8, max-abs scale) and sends it back → the board back-propagates, applies SGD to its
layers and answers STEP_DONE.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import numpy.typing as npt
from tqdm import tqdm

from tinysplit.codegen.golden import quantize_gradient
from tinysplit.host.errors import NonFiniteGradient
from tinysplit.host.link import SmashedBatch
from tinysplit.host.protocol import StepDone
from tinysplit.host.schedule import schedule, steps_per_epoch
from tinysplit.host.server import ServerSegment

TRAIN_SPLIT, TEST_SPLIT = 0, 1
EVAL_CHUNK = 256  # samples per EVAL request


class SplitClient(Protocol):
    """The client end of split training: a board behind a ClientLink, or the golden model
    in-process (tinysplit.host.simulate)."""

    @property
    def n_train(self) -> int: ...
    @property
    def n_test(self) -> int: ...
    def forward(self, step: int, lr: float, indices: npt.NDArray[np.int64]) -> SmashedBatch: ...
    def backward(
        self, step: int, grads: npt.NDArray[np.int8], scales: npt.NDArray[np.float32]
    ) -> StepDone: ...
    def evaluate(self, split: int, start: int, count: int, request_id: int) -> SmashedBatch: ...


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
class TrainResult:
    history: list[EpochLog] = field(default_factory=list)
    steps: int = 0
    train_seconds: float = 0.0
    device_cycles: int = 0
    last_weights_crc: int = 0

    @property
    def test_accuracy(self) -> float:
        return self.history[-1].test_accuracy if self.history else float("nan")

    @property
    def steps_per_s(self) -> float:
        return self.steps / self.train_seconds if self.train_seconds > 0 else 0.0


def quantize_cut_gradient(
    grad: npt.NDArray[np.float32], loss: float, step: int
) -> tuple[npt.NDArray[np.int8], npt.NDArray[np.float32]]:
    """int8 per sample with its own max-abs scale; refuses NaN/inf before anything is sent."""
    if not np.isfinite(loss) or not np.all(np.isfinite(grad)):
        raise NonFiniteGradient(
            f"step {step}: the loss or cut gradient is not finite (loss={loss}); nothing was "
            "sent to the board — lower the learning rate (--lr) and restart"
        )
    q = np.empty(grad.shape, dtype=np.int8)
    scales = np.empty(grad.shape[0], dtype=np.float32)
    for i, row in enumerate(grad):
        q[i], scales[i] = quantize_gradient(row)
    return q, scales


def evaluate(
    link: SplitClient, server: ServerSegment, split: int, n: int, request_id: int
) -> float:
    """Accuracy of the split model on a whole split of the board's data shard."""
    correct = 0
    for start in range(0, n, EVAL_CHUNK):
        count = min(EVAL_CHUNK, n - start)
        batch = link.evaluate(split, start, count, request_id)
        logits = server.predict(batch.dequantize())
        correct += int(np.sum(np.argmax(logits, axis=1) == batch.labels))
    return correct / n


def split_train(
    link: SplitClient,
    server: ServerSegment,
    cfg: TrainConfig,
    *,
    progress: bool = True,
    eval_every_epoch: bool = True,
    max_steps: int | None = None,
    log_to_stderr: bool = False,
) -> TrainResult:
    """Trains for cfg.epochs (or max_steps); returns per-epoch loss and accuracy."""
    n_train, n_test = link.n_train, link.n_test
    total = cfg.epochs * steps_per_epoch(n_train, cfg.batch)
    if max_steps is not None:
        total = min(total, max_steps)
    result = TrainResult()
    bar = tqdm(
        total=total,
        desc="split training",
        unit="step",
        disable=not progress,
        dynamic_ncols=True,
        leave=False,
    )
    losses: list[float] = []
    correct = seen = 0
    started = time.monotonic()
    request_id = 0x8000_0000  # eval ids never collide with step ids

    eval_seconds = 0.0  # evaluation is not training: steps/s counts training only

    def end_epoch(epoch: int) -> None:
        nonlocal correct, seen, request_id, eval_seconds
        t0 = time.monotonic()
        request_id += 1
        last = result.steps == total
        test_acc = (
            evaluate(link, server, TEST_SPLIT, n_test, request_id)
            if eval_every_epoch or last
            else float("nan")
        )
        eval_seconds += time.monotonic() - t0
        log = EpochLog(
            epoch + 1,
            float(np.mean(losses)) if losses else float("nan"),
            correct / max(seen, 1),
            test_acc,
        )
        result.history.append(log)
        if progress:
            bar.write(
                file=sys.stderr if log_to_stderr else sys.stdout,
                s=f"epoch {log.epoch:3d}/{cfg.epochs}  loss {log.loss:.4f}  "
                f"train acc {log.train_accuracy:.4f}  test acc {log.test_accuracy:.4f}",
            )
        losses.clear()
        correct = seen = 0

    current_epoch = 0
    try:
        for s in schedule(n_train, cfg.batch, cfg.epochs, cfg.seed):
            if result.steps >= total:
                break
            if s.epoch != current_epoch:
                end_epoch(current_epoch)
                current_epoch = s.epoch
            smashed = link.forward(s.step, cfg.lr, s.indices)
            loss, grad, logits = server.train_step(smashed.dequantize(), smashed.labels)
            q, scales = quantize_cut_gradient(grad, loss, s.step)
            done = link.backward(s.step, q, scales)
            result.steps += 1
            result.device_cycles += done.cycles
            result.last_weights_crc = done.weights_crc
            losses.append(loss)
            correct += int(np.sum(np.argmax(logits, axis=1) == smashed.labels))
            seen += len(smashed.labels)
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.3f}", refresh=False)
        end_epoch(current_epoch)
    finally:
        bar.close()
    result.train_seconds = time.monotonic() - started - eval_seconds
    return result
