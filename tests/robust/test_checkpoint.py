"""Checkpoint files: atomic, no pickle, and a full disk never costs the previous one."""

from __future__ import annotations

import errno
import json
from pathlib import Path

import numpy as np
import pytest

from tinysplit.core.errors import BadInput
from tinysplit.host.training.checkpoint import Checkpoint, CheckpointError, RunConfig, RunDir

CONFIG = RunConfig("m", "00" * 8, "/x", 1, 32, 0.1, 0, None, 10, False)


def checkpoint(step: int) -> Checkpoint:
    rng = np.random.default_rng(step)
    return Checkpoint(
        step=step,
        progress={"step": step, "losses": [0.1 * step], "history": []},
        server_weights=[rng.random((3, 2), dtype=np.float32), rng.random(2, dtype=np.float32)],
        optimizer=[np.int64(step), np.float32(0.1)],
        client_crc=0xDEADBEEF,
        client_state=bytes(range(256)) * 4,
        weights_size=700,
        order=rng.permutation(10),
    )


def test_round_trip_bit_exact_and_only_two_arrays_files(tmp_path: Path) -> None:
    run = RunDir(tmp_path)
    for step in (1, 2, 3):
        run.save(checkpoint(step), CONFIG)
    got, config = run.load()
    want = checkpoint(3)
    assert config == CONFIG and got.step == 3 and got.client_state == want.client_state
    for a, b in zip(got.server_weights + got.optimizer, want.server_weights + want.optimizer,
                    strict=True):  # fmt: skip
        assert a.dtype == b.dtype and a.tobytes() == b.tobytes()
    assert np.array_equal(got.order, want.order) and got.progress == want.progress
    assert len(list(tmp_path.glob("state-*.npz"))) == 2  # the current and the previous


def test_no_space_left_keeps_the_previous_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = RunDir(tmp_path)
    run.save(checkpoint(4), CONFIG)
    real = RunDir._write_file
    calls = []

    def full_disk(path: Path, data: bytes) -> None:
        calls.append(path.name)
        if len(calls) == 2:  # the arrays went through, checkpoint.json does not
            raise OSError(errno.ENOSPC, "No space left on device")
        real(path, data)

    monkeypatch.setattr(RunDir, "_write_file", staticmethod(full_disk))
    with pytest.raises(CheckpointError, match=r"No space left on device; the previous checkpoint "
                       r"\(step 4\) is intact"):  # fmt: skip
        run.save(checkpoint(8), CONFIG)
    monkeypatch.undo()
    got, _ = run.load()
    assert got.step == 4 and got.client_state == checkpoint(4).client_state


def test_damaged_or_pickled_arrays_are_refused(tmp_path: Path) -> None:
    run = RunDir(tmp_path)
    run.save(checkpoint(1), CONFIG)
    meta = json.loads((tmp_path / "checkpoint.json").read_text())
    arrays = tmp_path / meta["arrays"]
    arrays.write_bytes(arrays.read_bytes()[:-10])
    with pytest.raises(BadInput, match="damaged"):
        run.load()
    # an arrays file holding a pickled object is never unpickled
    np.savez(arrays, order=np.array([{"evil": 1}], dtype=object))
    meta["arrays_sha256"] = __import__("hashlib").sha256(arrays.read_bytes()).hexdigest()
    (tmp_path / "checkpoint.json").write_text(json.dumps(meta))
    with pytest.raises(BadInput, match="cannot read"):
        run.load()
