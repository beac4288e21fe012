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


def test_the_lazy_schedule_is_the_schedule() -> None:
    """split_train walks a Schedule (issue "Careless and hostile input" #9: every step of every
    epoch used to be built before training started): the same steps, also when it goes back
    to an earlier epoch as a resume or a recovery does."""
    from tinysplit.host.training.schedule import Schedule

    for n, batch, epochs, seed in ((100, 32, 3, 0), (64, 64, 2, 5), (7, 3, 4, 9)):
        want = list(schedule(n, batch, epochs, seed))
        sched = Schedule(n, batch, epochs, seed)
        assert len(sched) == len(want)
        got = list(sched.steps(0, len(sched)))
        for a, b in zip(got, want, strict=True):
            assert (a.epoch, a.step) == (b.epoch, b.step) and np.array_equal(a.indices, b.indices)
        for k in (len(want) - 1, 0, len(want) // 2):  # backwards, then forwards again
            assert np.array_equal(sched[k].indices, want[k].indices)
        assert np.array_equal(
            sched.order(1), np.concatenate([s.indices for s in want if s.epoch == 1])
        )


def test_a_long_run_costs_no_memory_up_front() -> None:
    from tinysplit.host.training.schedule import Schedule

    sched = Schedule(1347, 32, 10**9, 0)  # a billion epochs: nothing is drawn yet
    assert len(sched) == 10**9 * 43
    assert sched[0].indices.shape == (32,) and sched[0].step == 1
