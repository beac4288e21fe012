"""Split training with the client run in-process by the numpy golden model instead of a board.

The golden model is bit-exact with the firmware (tests/e2e), so a simulated run reaches the
same weights and accuracy as the board, without the link. It answers questions that would
take the board long: what frozen activation ranges would cost, how much of a run's time the
protocol and transport take.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from tinysplit.codegen.export import ClientState
from tinysplit.core.errors import BadInput
from tinysplit.core.golden.noise import with_noise
from tinysplit.core.golden.step import cut_quant, ops_forward, ops_train_step
from tinysplit.core.protocol import StepDone
from tinysplit.host.transport.link import SmashedBatch


@dataclass
class _Pending:
    indices: npt.NDArray[np.int64]
    lr: float


class GoldenClient:
    """Implements tinysplit.host.training.trainer.SplitClient with the golden model."""

    def __init__(self, state: ClientState, *, frozen_ranges: bool = False) -> None:
        if not state.ops:
            raise BadInput("the export has no client ops to simulate")
        self.state = state
        self.ops = state.ops
        self.frozen_ranges = frozen_ranges
        self._pending: _Pending | None = None

    @property
    def n_train(self) -> int:
        return len(self.state.x_train)

    @property
    def n_test(self) -> int:
        return len(self.state.x_test)

    def _smashed(
        self, xs: npt.NDArray[np.int8], ys: npt.NDArray[np.uint8], step: int
    ) -> SmashedBatch:
        acts = ops_forward(self.ops, xs)
        if self.state.noise is not None:  # what the board adds before the bytes leave
            acts = with_noise(acts, *self.state.noise, step=step)
        scale, zp, _, _ = cut_quant(self.ops)
        return SmashedBatch(acts, ys.astype(np.int64), float(scale), zp)

    def forward(self, step: int, lr: float, indices: npt.NDArray[np.int64]) -> SmashedBatch:
        self._pending = _Pending(np.asarray(indices), lr)
        return self._smashed(self.state.x_train[indices], self.state.y_train[indices], step)

    def backward(
        self, step: int, grads: npt.NDArray[np.int8], scales: npt.NDArray[np.float32]
    ) -> StepDone:
        assert self._pending is not None, "forward() first"
        p, self._pending = self._pending, None
        ops_train_step(
            self.ops,
            self.state.x_train[p.indices],
            grads,
            scales,
            p.lr,
            update_range=not self.frozen_ranges,
        )
        _, _, rmin, rmax = cut_quant(self.ops)
        return StepDone(0, float(rmin), float(rmax), 0)

    def evaluate(self, split: int, start: int, count: int, request_id: int) -> SmashedBatch:
        x, y = (
            (self.state.x_train, self.state.y_train)
            if split == 0
            else (self.state.x_test, self.state.y_test)
        )
        return self._smashed(x[start : start + count], y[start : start + count], request_id)
