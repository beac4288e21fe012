"""What sealing the link costs the board (host/bench/sealing.py, BENCHMARKS.md section 8):
exact instruction counts on QEMU mps2-an386, and the share of a training step they take."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from tinysplit.host.bench.sealing import REGRESSION_PCT, markdown, measure, step_cost
from tinysplit.host.costmodel.count import count_link

pytestmark = pytest.mark.qemu


def test_seal_and_open_counts_are_exact_and_grow_with_the_payload(tmp_path: Path) -> None:
    first = count_link("mps2_an386", tmp_path / "a")
    second = count_link("mps2_an386", tmp_path / "b")
    assert first == second  # exact: the same build and run count the same
    by = {(r["function"], r["bytes"]): r["instructions"] for r in first}
    sizes = sorted({n for _, n in by})
    # (below a block, a payload of 16 bytes can cost a few instructions less than one of 8:
    # Poly1305 buffers a partial block)
    for a, b in itertools.pairwise([0, *[n for n in sizes if n >= 64]]):
        for f in ("frame_encode", "seal_encode", "seal_open"):
            assert by[(f, a)] < by[(f, b)], (f, a, b)
    for n in sizes:  # sealing is more work than framing in clear, and less than 4x at 2 KB
        assert by[("seal_encode", n)] > by[("frame_encode", n)]
    assert by[("seal_encode", 2048)] < 4 * by[("frame_encode", 2048)]
    # ChaCha20 works in 64-byte blocks and Poly1305 in 16-byte ones: past the fixed cost of a
    # frame, opening costs the same per byte from 256 B to 1 KB as from 1 KB to 2 KB (5%)
    per = [
        (by[("seal_open", b)] - by[("seal_open", a)]) / (b - a)
        for a, b in ((256, 1024), (1024, 2048))
    ]
    assert abs(per[0] - per[1]) / per[1] < 0.05, per
    # the step model: a frame the board sends costs seal - clear, one it receives costs open
    one = step_cost(first, batch=1, cut_size=32)
    assert one["frames_sent"] == 2 and one["frames_received"] == 3
    assert one["instructions"] == pytest.approx(one["seal_instructions"] + one["open_instructions"])


def test_sealing_share_of_a_training_step_stays_bounded(tmp_path: Path) -> None:
    section = measure(tmp_path, ["digits-mlp"], lambda s: None)
    print("\n" + markdown(section))
    (row,) = section["workloads"]
    # digits-mlp is the reference workload with the least compute per byte on the wire. Issue
    # 12's 5% held against the reference kernels' step; the optimized kernels made the step
    # 2.7x cheaper, so sealing's share is now ~9% (host/bench/sealing.py): bounded here until a
    # faster AEAD brings it back under 5%.
    assert 0 < row["share_pct"] < REGRESSION_PCT, row
