"""Training through the fault proxy ends bit-identical to a clean run with the same seed.

The proxy (host/transport/faults.py) drops, duplicates, reorders, truncates, bit-flips and pads
frames
with garbage both ways, and resets the board mid-step; the link retries, the board answers
repeats without applying them twice, and after a reset both sides go back to the last
checkpoint. `tinysplit soak` runs the same for longer.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from robust_support import tinysplit

from tinysplit.host.training.session import Export
from tinysplit.host.training.soak import (
    LOCAL_TIMEOUTS,
    QEMU_TIMEOUTS,
    Outcome,
    board_factory,
    identical,
    lost_steps,
    train_through_proxy,
)
from tinysplit.host.training.trainer import TrainConfig
from tinysplit.host.transport.faults import FRAME_KINDS, FaultRates

STEPS = 60  # past the end of epoch 1 (43 steps): an evaluation through the faults too
CFG = TrainConfig(epochs=2, batch=32, lr=0.1, seed=3)


@pytest.fixture(scope="module")
def clean(digits_export: Path, robust_native: Path) -> Outcome:
    out = train_through_proxy(
        board_factory("native", robust_native),
        Export.load(digits_export),
        CFG,
        rates=FaultRates(),
        seed=0,
        timeouts=LOCAL_TIMEOUTS,
        max_steps=STEPS,
    )
    assert out.error is None and out.steps == STEPS
    assert sum(out.faults.values()) == 0 and out.link["retransmits"] == 0
    return out


def assert_same(faulty: Outcome, clean: Outcome) -> None:
    assert faulty.error is None, faulty.error
    assert faulty.steps == clean.steps
    assert lost_steps(faulty, clean) == 0
    assert identical(faulty, clean), "client state or server weights differ from the clean run"
    assert faulty.result is not None and clean.result is not None
    assert faulty.result.history == clean.result.history


def test_native_run_through_every_fault_ends_bit_identical(
    digits_export: Path, robust_native: Path, clean: Outcome
) -> None:
    faulty = train_through_proxy(
        board_factory("native", robust_native),
        Export.load(digits_export),
        CFG,
        # resets only where placed, so the board's counters (since its last boot) cover the
        # ~half of the run after the second one
        rates=FaultRates.uniform(0.02, reset=0.0),
        seed=7,
        timeouts=LOCAL_TIMEOUTS,
        max_steps=STEPS,
        reset_at=(40, 220),  # two resets mid-run, mid-step
    )
    print(f"\nfaults {faulty.faults}; host link {faulty.link}; board {faulty.board}")
    assert_same(faulty, clean)
    assert all(faulty.faults[k] > 0 for k in FRAME_KINDS), faulty.faults
    assert faulty.faults["reset"] >= 2 and faulty.link["resets"] >= 1
    assert faulty.result is not None and faulty.result.recoveries >= 1
    assert faulty.recovered == sum(faulty.faults.values())  # the run went on past every one
    # the board saw the damage too, and answered repeats without applying them
    assert faulty.board["duplicates"] > 0 and faulty.board["resyncs"] > 0


@pytest.mark.qemu
def test_qemu_run_through_faults_and_a_reset_ends_bit_identical(
    digits_export: Path, robust_qemu: Path, robust_native: Path
) -> None:
    """The same proxy in front of the emulated Cortex-M4: QEMU is stopped and started again
    mid-step; the run ends with the weights of a clean run (on the native build: same bits)."""
    steps = 12
    export = Export.load(digits_export)
    faulty = train_through_proxy(
        board_factory("mps2_an386", robust_qemu),
        export,
        CFG,
        rates=FaultRates.uniform(0.01, reset=0.0),
        seed=11,
        timeouts=QEMU_TIMEOUTS,
        max_steps=steps,
        checkpoint_every=5,
        eval_every_epoch=False,
        reset_at=(45,),
    )
    clean = train_through_proxy(
        board_factory("native", robust_native),
        export,
        CFG,
        rates=FaultRates(),
        seed=0,
        timeouts=LOCAL_TIMEOUTS,
        max_steps=steps,
        eval_every_epoch=False,
    )
    print(f"\nfaults {faulty.faults}; host link {faulty.link}")
    assert faulty.faults["reset"] == 1 and faulty.link["resets"] + faulty.link["stale"] > 0
    assert_same(faulty, clean)


def test_soak_command_reports_no_loss(digits_export: Path) -> None:
    out = tinysplit(
        "soak", "--seconds", "2", "--board", "native", "--model-dir", str(digits_export),
        "--fault-rate", "0.02", "--reset-rate", "0.005", "--json",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    report = json.loads(out.stdout)
    assert report.keys() >= {"faults_injected", "recovered", "lost", "weights_identical"}
    assert report["faults_injected"] > 0 and report["recovered"] == report["faults_injected"]
    assert report["lost"] == 0 and report["weights_identical"] is True
    assert report["steps"] > 0
