"""Section 10 of BENCHMARKS.md: the wire formats (`tinysplit export --wire`, issue #16).

For every reference workload at its default cut and every wire format (core/protocol/wire.py:
int8, sparse, int4, sparse-int4), the same split training (export seed, data order, epochs,
batch, learning rate: the reference run's) on one board, metered: framed bytes per training
sample each way as the link counted them, and the test accuracy at the end (the mean over the
workload's seeds). On the native build, as section 2: it trains bit for bit as the emulated
M4 does in every format (tests/e2e/test_wire_formats.py), fast enough for every format and
seed at the reference epochs (--quick: fewer epochs, one seed).
Each run is also a row of section 2's link rows in BENCHMARKS.json, with `wire` and `accuracy`.
`tinysplit bench --wire-only` runs this section alone.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

#: Seeds per workload (each sets the initial weights and the data order; accuracy is their
#: mean): mnist-cnn's 122 and motion-cnn1d's 40 test samples make one sample 0.8 and 2.5 points.
SEEDS: dict[str, tuple[int, ...]] = {"mnist-cnn": (0, 1, 2), "motion-cnn1d": (0, 1, 2)}

#: The goal: bytes per sample at most this share of int8's, for the conv workloads, losing at
#: most GOAL_POINTS of accuracy.
GOAL_RATIO = 0.5
GOAL_POINTS = 0.5


def measure(
    work: Path, workloads: list[str], say: Callable[[str], None], quick: bool, board: str
) -> dict[str, Any]:
    from tinysplit.core.protocol.wire import NAMES
    from tinysplit.host.bench import sections
    from tinysplit.host.bench.runs import prepare, run_board

    rows: list[dict[str, Any]] = []
    for w in workloads:
        seeds = SEEDS.get(w, (0,)) if not quick else (0,)
        base: dict[str, Any] | None = None
        for name in NAMES:
            accs, entry = [], None
            for seed in seeds:
                out = work / w / name / f"seed{seed}"
                prep = prepare(w, seed, out, quick, wire=name)
                say(f"{w} --wire {name}: seed {seed}: split training on {board} ...")
                run = run_board(prep, board, out / "build")
                accs.append(run.test_accuracy)
                if entry is None:
                    entry = sections.link_entry(prep, run)
            assert entry is not None
            row = {
                **entry,
                "wire": name,
                "accuracy": statistics.fmean(accs),
                "accuracy_seeds": accs,
                "seeds": list(seeds),
            }
            per_sample = row["to_server"]["wire_per_sample"] + row["to_client"]["wire_per_sample"]
            row["wire_per_sample"] = per_sample
            if base is None:
                base = row
            row["to_int8"] = per_sample / base["wire_per_sample"]
            row["points_vs_int8"] = 100.0 * (row["accuracy"] - base["accuracy"])
            say(f"{w} --wire {name}: {per_sample:,.0f} B per sample ({row['to_int8']:.2f}x "
                f"int8), accuracy {row['accuracy']:.4f}")  # fmt: skip
            rows.append(row)
    return {"board": board, "quick": quick, "workloads": rows}


def markdown(section: dict[str, Any]) -> str:
    rows = section["workloads"]
    out = [
        "## 10. Wire formats",
        "",
        "`tinysplit export --wire FORMAT`: the same split training (export, data order, epochs, "
        f"batch, learning rate) in each wire format on the {section['board']} build"
        + (" (--quick: fewer epochs, one seed)" if section.get("quick") else "")
        + " (bit for bit the training the emulated M4 does in every format: "
        "tests/e2e/test_wire_formats.py)"
        + ". *int8*: SMASHED and GRAD as ever; *sparse*: a bitmap of the activations that are "
        "not zero and only those, and only their gradients (the board's ReLU stops the others: "
        "the same weights as int8, bit for bit); *int4*: 4-bit activations (16 levels from the "
        "zero point) and 4-bit gradients (in [-7, 7], scale max|g|/7); *sparse-int4*: both. "
        "Bytes: framed, both ways, per training sample, as the link counted them (training "
        "steps only). Accuracy: test accuracy at the end (the mean over the seeds listed). "
        f"Goal: at most {GOAL_RATIO:g}x int8's bytes for mnist-cnn and motion-cnn1d, at most "
        f"{GOAL_POINTS:g} points of accuracy lost.",
        "",
        "| workload | wire | up B / sample | down B / sample | B / sample | x int8 | accuracy "
        "| vs int8 (points) | seeds |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        if r.get("status") == "not run":
            out.append(f"| {r['workload']} | {r.get('wire', '?')} | not run: {r['reason']} "
                       "| | | | | | |")  # fmt: skip
            continue
        out.append(
            f"| {r['workload']} | {r['wire']} | {r['to_server']['wire_per_sample']:,.1f} "
            f"| {r['to_client']['wire_per_sample']:,.1f} | {r['wire_per_sample']:,.1f} "
            f"| {r['to_int8']:.2f} | {r['accuracy']:.4f} | {r['points_vs_int8']:+.2f} "
            f"| {', '.join(map(str, r['seeds']))} |"
        )
    return "\n".join(out) + "\n"


def link_rows(section: dict[str, Any]) -> list[dict[str, Any]]:
    """The section's runs as section 2's link rows (for BENCHMARKS.json's `link.workloads`)."""
    return [r for r in section.get("workloads", []) if r.get("status") == "ok"]
