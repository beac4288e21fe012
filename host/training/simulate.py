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
from tinysplit.core.golden.head import head_commit, head_predict, head_train
from tinysplit.core.golden.noise import with_noise
from tinysplit.core.golden.step import cut_quant, ops_forward, ops_train_step
from tinysplit.core.protocol import HeadMode, StepDone
from tinysplit.core.protocol.wire import on_the_wire
from tinysplit.host.training.weights import load_state_image, state_image
from tinysplit.host.transport.link import HeadResult, SmashedBatch


@dataclass
class _Pending:
    indices: npt.NDArray[np.int64]
    lr: float


@dataclass
class _Eval:
    request_id: int
    labels: npt.NDArray[np.uint8]


class GoldenClient:
    """Implements tinysplit.host.training.trainer.SplitClient with the golden model."""

    def __init__(self, state: ClientState, *, frozen_ranges: bool = False) -> None:
        if not state.ops:
            raise BadInput("the export has no client ops to simulate")
        self.state = state
        self.ops = state.ops
        self.frozen_ranges = frozen_ranges
        self.head_layer = state.head  # U-shaped: the board's head
        self._pending: _Pending | None = None
        self._eval: _Eval | None = None

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
        wire = self.state.wire
        if wire:  # what the host reads back from SMASHED_PACKED (4-bit levels with ACTS4)
            acts = on_the_wire(acts, zp, wire)
        labels = None if self.head_layer is not None else ys.astype(np.int64)
        return SmashedBatch(acts, labels, float(scale), zp, wire)

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
        if self.head_layer is not None:
            head_commit(self.head_layer, p.lr)
        _, _, rmin, rmax = cut_quant(self.ops)
        return StepDone(0, float(rmin), float(rmax), 0)

    def pull_state(self) -> bytes:
        """The state image a board holding this client's state would send."""
        return state_image(self.state.layers)

    def push_state(self, image: bytes, step: int, weights_crc: int) -> None:
        """Takes a state image as a board does (PUT_WEIGHTS)."""
        self._pending = None
        load_state_image(self.state.layers, image)

    def head(
        self,
        step: int,
        mode: HeadMode,
        scales: npt.NDArray[np.float32],
        acts: npt.NDArray[np.int8],
    ) -> HeadResult:
        """The board's head (firmware/client/msg_head.c) on a whole batch."""
        head = self.head_layer
        if head is None:
            raise BadInput("this export keeps its labels on the host: it has no head")
        if mode == HeadMode.EVAL:
            assert self._eval is not None and self._eval.request_id == step
            pred = head_predict(head, acts, scales)
            return HeadResult(int(np.sum(pred == self._eval.labels)), 0.0)
        assert self._pending is not None, "forward() first"
        idx = self._pending.indices
        ans = head_train(head, acts, scales, self.state.y_train[idx], len(idx))
        return HeadResult(ans.correct, float(ans.loss_sum), ans.dh, ans.s_dh)

    def evaluate(self, split: int, start: int, count: int, request_id: int) -> SmashedBatch:
        x, y = (
            (self.state.x_train, self.state.y_train)
            if split == 0
            else (self.state.x_test, self.state.y_test)
        )
        self._eval = _Eval(request_id, y[start : start + count])
        return self._smashed(x[start : start + count], y[start : start + count], request_id)
