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


def schedule(n_train: int, batch: int, epochs: int, seed: int) -> Iterator[Step]:
    """Each epoch a fresh permutation; the last minibatch of an epoch may be smaller."""
    rng = np.random.default_rng(seed)
    step = 0
    for epoch in range(epochs):
        order = rng.permutation(n_train)
        for first in range(0, n_train, batch):
            step += 1
            yield Step(epoch, step, order[first : first + batch])
