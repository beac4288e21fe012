"""The data order is shared by split and centralized training: it must be a fixed function of the
seed and visit every sample once per epoch."""

import numpy as np

from tinysplit.host.training.schedule import schedule, steps_per_epoch


def test_every_sample_once_per_epoch_and_partial_last_batch() -> None:
    steps = list(schedule(n_train=70, batch=32, epochs=3, seed=5))
    assert len(steps) == 3 * steps_per_epoch(70, 32) == 9
    assert [len(s.indices) for s in steps[:3]] == [32, 32, 6]
    for epoch in range(3):
        idx = np.concatenate([s.indices for s in steps if s.epoch == epoch])
        assert sorted(idx.tolist()) == list(range(70))
    assert [s.step for s in steps] == list(range(1, 10))


def test_same_seed_same_order_other_seed_other_order() -> None:
    a = [s.indices.tolist() for s in schedule(100, 10, 2, seed=1)]
    b = [s.indices.tolist() for s in schedule(100, 10, 2, seed=1)]
    c = [s.indices.tolist() for s in schedule(100, 10, 2, seed=2)]
    assert a == b
    assert a != c
