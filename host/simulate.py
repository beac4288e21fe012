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
from tinysplit.codegen.golden import client_forward, client_train_step
from tinysplit.host.errors import BadInput
from tinysplit.host.link import SmashedBatch
from tinysplit.host.protocol import StepDone


@dataclass
class _Pending:
    indices: npt.NDArray[np.int64]
    lr: float


class GoldenClient:
    """Implements tinysplit.host.trainer.SplitClient with the golden model."""

    def __init__(self, state: ClientState, *, frozen_ranges: bool = False) -> None:
        if len(state.layers) != 1:
            raise BadInput("the in-process simulation supports one client layer so far")
        self.state = state
        self.layer = state.layers[0]
        self.frozen_ranges = frozen_ranges
        self._pending: _Pending | None = None

    @property
    def n_train(self) -> int:
        return len(self.state.x_train)

    @property
    def n_test(self) -> int:
        return len(self.state.x_test)

    def _smashed(self, xs: npt.NDArray[np.int8], ys: npt.NDArray[np.uint8]) -> SmashedBatch:
        acts = client_forward(self.layer, xs)
        return SmashedBatch(
            acts, ys.astype(np.int64), float(self.layer.out_scale), int(self.layer.out_zp)
        )

    def forward(self, step: int, lr: float, indices: npt.NDArray[np.int64]) -> SmashedBatch:
        self._pending = _Pending(np.asarray(indices), lr)
        return self._smashed(self.state.x_train[indices], self.state.y_train[indices])

    def backward(
        self, step: int, grads: npt.NDArray[np.int8], scales: npt.NDArray[np.float32]
    ) -> StepDone:
        assert self._pending is not None, "forward() first"
        p, self._pending = self._pending, None
        client_train_step(
            self.layer,
            self.state.x_train[p.indices],
            grads,
            scales,
            p.lr,
            update_range=not self.frozen_ranges,
        )
        return StepDone(0, float(self.layer.range_min), float(self.layer.range_max), 0)

    def evaluate(self, split: int, start: int, count: int, request_id: int) -> SmashedBatch:
        x, y = (
            (self.state.x_train, self.state.y_train)
            if split == 0
            else (self.state.x_test, self.state.y_test)
        )
        return self._smashed(x[start : start + count], y[start : start + count])
