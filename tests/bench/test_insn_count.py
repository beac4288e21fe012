"""Instruction counts of the int8 kernels on QEMU mps2-an386 (host/costmodel/count.py, issue #6).

`pytest tests/bench -s` prints the table next to the KERNEL-ANCHORS.md figures.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tinysplit.host.costmodel.count import ANCHORS, count_kernels, format_table

pytestmark = pytest.mark.qemu

BACKWARD = {
    ("conv2d_backward_weights", "14x14x8->16,3x3,same"),
    ("conv2d_backward_input", "14x14x8->16,3x3,same"),
    ("fc_backward_weights", "64->32"),
    ("fc_backward_input", "64->32"),
}


def test_counts_are_repeatable_and_plausible(tmp_path: Path) -> None:
    first = count_kernels("mps2_an386", tmp_path / "a")
    second = count_kernels("mps2_an386", tmp_path / "b")
    print("\n" + format_table(first))

    # Exact counts: a second build and run gives the same number for every kernel.
    assert [(r["kernel"], r["shape"], r["instructions"]) for r in first] == [
        (r["kernel"], r["shape"], r["instructions"]) for r in second
    ]
    assert {(r["kernel"], r["shape"]) for r in first} == (
        set(ANCHORS) | BACKWARD | {(f"{k}_fast", s) for k, s in BACKWARD}
    )
    reference = {(r["kernel"], r["shape"]): r["per_mac"] for r in first}
    for r in first:
        where = f"{r['kernel']} {r['shape']}"
        if r["kernel"].endswith("_fast"):
            # An optimized kernel: fewer instructions than its reference on the same call,
            # and no fewer than one per MAC (SMLAD does two, but loads and stores remain).
            assert 1.0 < r["per_mac"] < reference[(r["kernel"][:-5], r["shape"])], where
            continue
        # Scalar reference kernels: at least a load, a multiply-accumulate and a loop step per
        # MAC, and not wildly more than anything a plain C loop would spend.
        assert 3.0 < r["per_mac"] < 100.0, f"{where}: {r['per_mac']:.2f} instructions/MAC"
        anchor = r["anchor_per_mac"]
        if anchor is not None:
            # Never below CMSIS-NN's DSP path (the reference is scalar C); near plain C's figure.
            assert r["per_mac"] > anchor["cmsis_nn_dsp"], where
            assert 0.3 < r["ratio"]["straightforward_c"] < 3.0, where
