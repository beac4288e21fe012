"""Section 8 of BENCHMARKS.md: what sealing the link costs the board (issue #12).

Counts, on the emulated M4 (mps2_an386, QEMU TCG plugin, exact), the instructions of framing a
payload in clear, sealing it (firmware/protocol/ts_secure.c: ChaCha20-Poly1305 on its way
into the COBS encoder) and opening a sealed one, for payloads of 0 to 2048 bytes
(kernel_bench.c's link suite). Then, per reference workload at its default cut and batch, the
frames one training step moves (core/protocol/spec.py training_step_payloads) give what
sealing adds to a step on the board: for each frame the board sends, seal - clear; for each it
receives, open. Set against the step's own instructions (the planner's cost model, fitted to
and within 5% of the emulator's counts: forward, backward, framing, the commit), the share had
to stay under 5% (issue 12, met against the reference kernels' step: 3.2% on digits-mlp). The
optimized kernels (issue 15) made the step 2.7x cheaper and sealing did not change, so its share
is now about 9% on digits-mlp: REGRESSION_PCT bounds it until a faster AEAD brings it back
under LIMIT_PCT. `tinysplit bench --seal-only` runs this section alone.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

BOARD = "mps2_an386"
LIMIT_PCT = 5.0  # issue 12's goal
REGRESSION_PCT = 10.0  # what the test holds the share to since the optimized kernels


def _interpolate(rows: list[dict[str, Any]], function: str, n: int) -> float:
    """Instructions of `function` on an n-byte payload: exact at the benched sizes, linear
    between them (the work is per 64-byte block and per byte: linear to within a block)."""
    pts = sorted((r["bytes"], r["instructions"]) for r in rows if r["function"] == function)
    for (x0, y0), (x1, y1) in itertools.pairwise(pts):
        if x0 <= n <= x1:
            return float(y0 + (y1 - y0) * (n - x0) / (x1 - x0))
    (x0, y0), (x1, y1) = pts[-2], pts[-1]
    return float(y1 + (y1 - y0) * (n - x1) / (x1 - x0))


def step_cost(
    rows: list[dict[str, Any]], batch: int, cut_size: int, head_size: int = 0
) -> dict[str, Any]:
    """What sealing adds to one training step on the board, frame by frame."""
    from tinysplit.core.protocol import spec

    frames = spec.training_step_payloads(batch, cut_size, head_size)
    sent = [p for m in spec.TO_HOST for p in frames[m]]
    received = [p for m in spec.TO_BOARD for p in frames[m]]
    seal = sum(
        _interpolate(rows, "seal_encode", p) - _interpolate(rows, "frame_encode", p) for p in sent
    )
    open_ = sum(_interpolate(rows, "seal_open", p) for p in received)
    return {
        "frames_sent": len(sent),
        "frames_received": len(received),
        "bytes_sent": sum(sent),
        "bytes_received": sum(received),
        "seal_instructions": seal,
        "open_instructions": open_,
        "instructions": seal + open_,
    }


def measure(
    work: Path, workloads: Sequence[str], say: Callable[[str], None], quick: bool = False
) -> dict[str, Any]:
    from tinysplit.codegen.export import plan_client
    from tinysplit.core.boards import board_profile
    from tinysplit.host.costmodel.count import count_link
    from tinysplit.host.planner.plan import Board, plan_cut

    say(f"sealing: counting seal/open instructions on {BOARD} under QEMU ...")
    rows = count_link(BOARD, work / "link")
    core = board_profile(BOARD).get("core", "cortex-m4")
    out = []
    for w in workloads:
        say(f"sealing: {w}'s training step ...")
        cp = plan_client(w, None, board=BOARD)
        head = 0 if cp.head is None else cp.head.in_features
        step = step_cost(rows, cp.max_batch, cp.cut_size, head)
        plan = plan_cut(cp, "", Board.load(BOARD), 921_600)
        step_insns = plan.insns_total * cp.max_batch
        out.append({
            "workload": w, "cut": cp.cut, "cut_size": cp.cut_size, "batch": cp.max_batch,
            **step, "step_instructions": step_insns,
            "share_pct": 100.0 * step["instructions"] / step_insns,
        })  # fmt: skip
    return {
        "status": "ok",
        "board": BOARD,
        "core": core,
        "counting": "exact: QEMU TCG plugin, instructions between two markers around each call",
        "limit_pct": LIMIT_PCT,
        "calls": rows,
        "workloads": out,
    }


def markdown(section: dict[str, Any]) -> str:
    calls = section["calls"]
    sizes = sorted({r["bytes"] for r in calls})
    by = {(r["function"], r["bytes"]): r["instructions"] for r in calls}
    lines = [
        "## 8. Sealed link",
        "",
        f"Every frame after OPEN is ChaCha20-Poly1305 (RFC 8439) on a paired board. Instructions "
        f"on the emulated {section['core']} ({section['board']}; {section['counting']}):",
        "",
        "| payload | framed in clear | sealed | opened | sealed - clear per byte |",
        "|---:|---:|---:|---:|---:|",
    ]
    for n in sizes:
        clear, seal, open_ = by[("frame_encode", n)], by[("seal_encode", n)], by[("seal_open", n)]
        per = f"{(seal - clear) / n:.1f}" if n else "-"
        lines.append(f"| {n:,} B | {clear:,} | {seal:,} | {open_:,} | {per} |")
    lines += [
        "",
        "What sealing adds to one training step on the board (the frames the step sends sealed "
        "instead of in clear, the frames it receives opened), against the step's own "
        "instructions (the planner's cost model: forward, backward, framing, commit; within 5% "
        f"of the emulator). Limit: {section['limit_pct']:g}% (issue 12), met against the "
        "reference kernels' step (3.2% on digits-mlp); the optimized kernels (section 1) made "
        "the step 2.7x cheaper and sealing did not change, so its share rose above it: a faster "
        "AEAD is open work.",
        "",
        "| workload | cut | batch | frames sent / received | bytes sent / received | "
        "sealing instr/step | step instr | share |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in section["workloads"]:
        lines.append(
            f"| {r['workload']} | {r['cut']} | {r['batch']} | {r['frames_sent']} / "
            f"{r['frames_received']} | {r['bytes_sent']:,} / {r['bytes_received']:,} | "
            f"{r['instructions']:,.0f} | {r['step_instructions']:,.0f} | "
            f"{r['share_pct']:.2f}% |"
        )
    return "\n".join(lines) + "\n"
