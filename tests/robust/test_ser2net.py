"""A board at another site: reached through a real ser2net (Debian's, RFC 2217 on loopback)
with the native board's pty behind it, and the fault proxy between the host and ser2net. The
run is exactly-once and ends bit-identical to a run on the local pty."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tinysplit.host.board.launch import ser2net_board
from tinysplit.host.training.session import Export
from tinysplit.host.training.soak import (
    QEMU_TIMEOUTS,
    board_factory,
    identical,
    lost_steps,
    train_through_proxy,
)
from tinysplit.host.training.trainer import TrainConfig
from tinysplit.host.transport.faults import FRAME_KINDS, FaultRates

STEPS = 20
CFG = TrainConfig(epochs=1, batch=32, lr=0.1, seed=5)


@pytest.mark.skipif(
    shutil.which("ser2net") is None and not Path("/usr/sbin/ser2net").is_file(),
    reason="ser2net not installed (scripts/setup.sh installs it: apt-get install ser2net)",
)
def test_run_over_ser2net_with_faults_equals_a_local_run(
    digits_export: Path, robust_native: Path, tmp_path: Path
) -> None:
    export = Export.load(digits_export)
    local = train_through_proxy(board_factory("native", robust_native), export, CFG,
                                rates=FaultRates(), seed=0, timeouts=QEMU_TIMEOUTS,
                                max_steps=STEPS, eval_every_epoch=False)  # fmt: skip
    remote = train_through_proxy(
        lambda: ser2net_board(robust_native, tmp_path), export, CFG,
        rates=FaultRates.uniform(0.02, reset=0.0), seed=9, timeouts=QEMU_TIMEOUTS,
        max_steps=STEPS, eval_every_epoch=False, reset_at=(50,),
    )  # fmt: skip
    print(f"\nfaults {remote.faults}; host link {remote.link}")
    assert local.error is None and remote.error is None, remote.error
    assert sum(remote.faults[k] for k in FRAME_KINDS) > 0 and remote.faults["reset"] >= 1
    assert remote.steps == local.steps == STEPS
    assert lost_steps(remote, local) == 0
    assert identical(remote, local), "client state or server weights differ from the local run"
