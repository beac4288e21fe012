"""The data order of a run: which training samples each step uses.

Split training and the centralized baseline take their minibatches from here, so "same data,
epochs, batch and seed" holds by construction. Keras' `fit(shuffle=True)` would draw its own order.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True)
class Step:
    epoch: int
    step: int  # global step id, from 1
    indices: npt.NDArray[np.int64]


def steps_per_epoch(n_train: int, batch: int) -> int:
    return -(-n_train // batch)


class Schedule:
    """The run's steps without holding them: step k (from 0) is computed when asked for, from
    its epoch's permutation (the last one drawn is kept), so memory does not grow with the
    number of epochs. The same steps as `schedule`, in the same order."""

    def __init__(self, n_train: int, batch: int, epochs: int, seed: int) -> None:
        self.n_train, self.batch, self.epochs, self.seed = n_train, batch, epochs, seed
        self.per_epoch = steps_per_epoch(n_train, batch)
        self._rng = np.random.default_rng(seed)
        self._epoch = -1
        self._order = np.zeros(0, np.int64)

    def __len__(self) -> int:
        return self.epochs * self.per_epoch

    def order(self, epoch: int) -> npt.NDArray[np.int64]:
        """Epoch `epoch`'s permutation of the training samples."""
        if epoch < self._epoch:  # going back (a resume, a recovery): draw again from the seed
            self._rng, self._epoch = np.random.default_rng(self.seed), -1
        while self._epoch < epoch:
            self._order = self._rng.permutation(self.n_train).astype(np.int64)
            self._epoch += 1
        return self._order

    def __getitem__(self, k: int) -> Step:
        if not 0 <= k < len(self):
            raise IndexError(k)
        epoch, i = divmod(k, self.per_epoch)
        first = i * self.batch
        return Step(epoch, k + 1, self.order(epoch)[first : first + self.batch])

    def steps(self, start: int, stop: int) -> Iterator[Step]:
        """Steps start..stop-1 (positions from 0), in order."""
        for k in range(start, min(stop, len(self))):
            yield self[k]


def schedule(n_train: int, batch: int, epochs: int, seed: int) -> Iterator[Step]:
    """Each epoch a fresh permutation; the last minibatch of an epoch may be smaller."""
    sched = Schedule(n_train, batch, epochs, seed)
    return sched.steps(0, len(sched))
