"""The run summary says what the baseline was trained on (issue "Careless and hostile input"
#7: `train --data OTHER.npz` printed its baseline as "same data")."""

from __future__ import annotations

import pytest

from tinysplit.host.commands.runs import print_summary

BASE = {
    "board": "native", "split_accuracy": 0.9, "centralized_accuracy": 0.91, "steps": 10,
    "train_seconds": 1.0, "steps_per_s": 10.0,
}  # fmt: skip


def test_the_boards_own_shard_is_the_same_data(capsys: pytest.CaptureFixture[str]) -> None:
    print_summary({**BASE, "centralized_data": "e/data.npz", "centralized_on_board_shard": True})
    line = next(ln for ln in capsys.readouterr().out.splitlines() if "centralized" in ln)
    assert "same data, minibatches and seed" in line and "-1.00 points" in line


def test_another_data_set_is_named(capsys: pytest.CaptureFixture[str]) -> None:
    print_summary({**BASE, "centralized_data": "other.npz", "centralized_on_board_shard": False})
    line = next(ln for ln in capsys.readouterr().out.splitlines() if "centralized" in ln)
    assert "on other.npz, NOT the board's data" in line and "same data" not in line
