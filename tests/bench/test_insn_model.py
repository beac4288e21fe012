"""The per-kernel instruction cost model (host/costmodel/model.py): its trip counts, its
contract with
the bench firmware, and that the committed coefficients still describe the kernels."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest

from tinysplit.core.paths import source_root
from tinysplit.host.costmodel.model import (
    CASES,
    FIT_BOARDS,
    FITTED,
    KINDS,
    Case,
    case_macs,
    conv_trip_counts,
    features,
    kernel_insns,
    measure_cases,
)


def test_kinds_are_the_bench_enum_in_order() -> None:
    """bench_cases.h names kinds by the C enum: Python and C must list the same, in order."""
    src = (source_root() / "firmware/bench/kernel_bench.c").read_text()
    enum = src[src.index("typedef enum {\n    BK_") : src.index("BK_N_KINDS")]
    assert re.findall(r"^\s+BK_(\w+),", enum, re.M) == [k.upper() for k in KINDS]
    names = src[
        src.index("k_kind_names[BK_N_KINDS] = {") : src.index("};", src.index("k_kind_names"))
    ]
    assert re.findall(r'"(\w+)"', names) == list(KINDS)
    assert {c.kind for c in CASES} == set(KINDS)  # every kernel is measured


def test_trip_counts() -> None:
    # valid padding: every tap is in the image, MACs are the textbook count
    f = conv_trip_counts(Case("conv_forward", 13, 13, 8, 16, 3, 3, 1, 1, 0))
    assert f["mac"] == 11 * 11 * 16 * 9 * 8 and f["out"] == 11 * 11 * 16
    # same padding: the border windows lose taps (28x28, 3x3: 26 rows of 3 taps + 2 of 2)
    f = conv_trip_counts(Case("conv_forward", 28, 28, 1, 8, 3, 3, 1, 1, 1))
    assert f["tap"] == 8 * (26 * 3 + 2 * 2) ** 2 < 28 * 28 * 8 * 9
    # the filter gradient visits the same (output, tap) pairs as the forward
    b = conv_trip_counts(Case("conv_backward_weights", 28, 28, 1, 8, 3, 3, 1, 1, 1))
    assert (
        b["mac"] == f["mac"] == case_macs(Case("conv_backward_input", 28, 28, 1, 8, 3, 3, 1, 1, 1))
    )
    # a 2x2/2 pool over 26x26 covers every input exactly once
    p = features(Case("max_pool_backward", 26, 26, 8, 8, 2, 2, 2, 2, 0))
    assert p["tap"] == p["in"] == 26 * 26 * 8 and "in_overlap" not in p


def test_optimized_kernels_trip_counts() -> None:
    """The trip counts of the optimized kernels' own loops (firmware/kernels/*_fast.c)."""
    # a 1-channel 3x3 first layer takes the pairs path (T = 3 rows x 2 pairs, unrolled); an
    # 8-channel layer the column path, in 2 x 2 tiles of 72 taps (18 groups of four)
    first = features(Case("conv_forward", 28, 28, 1, 8, 3, 3, 1, 1, 0))
    assert first["p6_px"] == 26 * 26 and first["p6_out"] == 26 * 26 * 8 and "c_tiles" not in first
    cols = features(Case("conv_forward", 13, 13, 8, 16, 3, 3, 1, 1, 0))
    assert cols["c_tiles"] == -(-121 // 2) * 8 and cols["c_tk4"] == cols["c_tiles"] * 18
    # a window over TS_CONV_FAST_MAX_TAPS runs the reference: its trip counts, renamed
    big = features(Case("conv_forward", 6, 6, 32, 8, 3, 3, 1, 1, 1))
    assert set(big) == {
        "ref_" + k for k in conv_trip_counts(Case("conv_forward", 6, 6, 32, 8, 3, 3, 1, 1, 1))
    }
    # the input gradient runs its channel loops for nonzero gradient elements only
    dense = features(Case("conv_backward_input", 13, 13, 8, 16, 3, 3, 1, 1, 0, 1000))
    sparse = features(Case("conv_backward_input", 13, 13, 8, 16, 3, 3, 1, 1, 0, 250))
    assert sparse["blk8_ch"] == dense["blk8_ch"] / 4 and sparse["in"] == dense["in"] == 13 * 13 * 8
    # the filter gradient skips (four-pixel group, channel) pairs without a nonzero gradient
    w = features(Case("conv_backward_weights", 13, 13, 8, 16, 3, 3, 1, 1, 0, 1000))
    assert w["nz_ch"] == w["g_ch"] == 31 * 16 and w["nz_k"] == w["nz_ch"] * 72
    none = features(Case("conv_backward_weights", 13, 13, 8, 16, 3, 3, 1, 1, 0, 0))
    assert none["nz_ch"] == none["built"] == 0
    # FC: four rows at a time, the weight gradient only for nonzero rows
    fc = features(Case("fc_forward", c=64, c_out=30))
    assert fc["quads"] == 7 and fc["q_k4"] == 7 * 16 and fc["rows"] == 2
    assert features(Case("fc_backward_weights", c=64, c_out=32, density=500))["nz_k"] == 16 * 64


def test_first_layers_cost_more_per_mac() -> None:
    """The shape dependence a constant per MAC would miss (KERNEL-ANCHORS.md): a 1-channel
    first layer spends more instructions per MAC than the 8-channel one after it (about 2.4
    times with the optimized kernels; 4 times with the reference ones)."""
    first = Case("conv_forward", 28, 28, 1, 8, 3, 3, 1, 1, 0)
    second = Case("conv_forward", 13, 13, 8, 16, 3, 3, 1, 1, 0)
    per_mac = [kernel_insns(c, "cortex-m4f") / case_macs(c) for c in (first, second)]
    assert per_mac[0] > 2 * per_mac[1]


@pytest.mark.qemu
def test_committed_coefficients_match_the_kernels_today(tmp_path: Path) -> None:
    """A fresh count of the reference workloads' kernel calls on the emulated M4 is what the
    committed model predicts: after a kernel changes, run `python -m tinysplit.host.costmodel.model
    --fit` and commit host/costmodel/fitted.json."""
    shapes = {(28, 28, 1), (13, 13, 8), (26, 26, 8), (11, 11, 16)}
    cases = [
        c for c in CASES if (c.h, c.w, c.c) in shapes or (c.kind.startswith("fc") and c.c == 64)
    ]
    assert len(cases) > 20
    counts = measure_cases(FIT_BOARDS["cortex-m4f"], cases, tmp_path)
    for case, n in zip(cases, counts, strict=True):
        pred = kernel_insns(case, "cortex-m4f")
        assert math.isclose(pred, n, rel_tol=0.03), (case, n, pred)
    assert set(FITTED) == set(FIT_BOARDS)
