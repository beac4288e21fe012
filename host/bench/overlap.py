"""Section 9 of BENCHMARKS.md: a training step at the speed of the wire (issue #16).

The board's UART works by interrupt both ways (boards/README.md): it computes the next
samples while a SMASHED frame leaves and back-propagates each GRAD frame as it arrives. This
section measures what that buys where the ratio of compute to wire is a real board's: the
emulated M4 (mps2_an386) with its instruction rate fixed in real time (QEMU `-icount
shift=3,align=on`: 125 M instructions a second, a Cortex-M4 at 180 MHz and 1.44 cycles per
instruction) behind a link paced at 115,200 and 921,600 baud (host/transport/pacing.py).

QEMU's UART models hold one received byte, and QEMU hands the next one over only on its next
main-loop turn (tens of microseconds): they receive at most ~20 KB/s, less than 921,600 baud
carries (92 KB/s). So 921,600 baud is run as the same ratio of compute to wire, slowed down
eightfold: the board at 1/8 of the instruction rate (`-icount shift=6`) behind a link at
115,200; its times are divided by 8. (The host's own time per step does not slow down with
it, so there it weighs 8 times less than it would at 921,600.)

Per workload at its default cut and batch: wall time per training sample (steps after the
first), the share of it the line carried bytes (link busy), and beside them the planner's
prediction for the same instruction rate and baud (host/planner/plan.py: `overlap` when the
kernels and the wire overlap, `in turn` when they take turns). Each workload runs in int8 and
in WIRE (`--wire sparse-g4`, section 10's choice: under half the bytes, no accuracy lost
beyond half a point), whose shorter wire time leaves the kernels more to hide. `tinysplit
bench --overlap-only` runs this section alone.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

BOARD = "mps2_an386"
SHIFT = 3  # -icount shift: one instruction every 2**SHIFT ns
RATE = 1e9 / 2**SHIFT  # instructions per second
#: (baud, -icount shift, the paced line's baud): 921,600 as 115,200 at 1/8 of the rate.
RUNS = ((115_200, SHIFT, 115_200), (921_600, SHIFT + 3, 115_200))
#: The wire formats each workload runs in: today's, and section 10's choice.
WIRES = ("int8", "sparse-g4")
GOAL_BUSY_PCT = 90.0
GOAL_PREDICTION_PCT = 15.0


def _steps(quick: bool) -> int:
    """Measured steps (after one warm-up step)."""
    return 2 if quick else 3


def _run(
    elf: Path, export_dir: Path, baud: int, shift: int, steps: int, batch: int
) -> dict[str, float]:
    from tinysplit.host.board.launch import open_port, qemu_board
    from tinysplit.host.training.schedule import schedule
    from tinysplit.host.training.server import ServerSegment
    from tinysplit.host.training.session import Export
    from tinysplit.host.training.trainer import quantize_cut_gradient
    from tinysplit.host.transport.link import ClientLink
    from tinysplit.host.transport.pacing import PacedPort

    export = Export.load(export_dir)
    server = ServerSegment.load(export_dir / "server.keras", 0.01)
    wall = busy = 0.0
    with qemu_board(elf, "mps2-an386", paced_shift=shift) as url:
        port = PacedPort(open_port(url, timeout=0), baud)
        try:
            link = ClientLink(port, **export.link_key())
            hello = link.hello(export.model_hash)
            for s in schedule(hello.n_train, batch, epochs=1000, seed=0):
                if s.step > steps + 1:
                    break
                t0, b0 = time.monotonic(), port.busy_seconds
                sm = link.forward(s.step, 0.01, s.indices)
                assert sm.labels is not None  # the reference workloads keep labels on the host
                loss, grad, _ = server.train_step(sm.dequantize(), sm.labels)
                q, scales = quantize_cut_gradient(grad, loss, s.step, sm)
                link.backward(s.step, q, scales)
                if s.step > 1:  # the first step warms up (TensorFlow, the link)
                    wall += time.monotonic() - t0
                    busy += port.busy_seconds - b0
        finally:
            port.close()
    return {"wall_s": wall, "busy_s": busy, "samples": float(steps * batch)}


def measure(
    work: Path, workloads: Sequence[str], say: Callable[[str], None], quick: bool = False
) -> dict[str, Any]:
    from tinysplit.codegen.export import export_client, plan_client
    from tinysplit.core.protocol.wire import wire_bits
    from tinysplit.host.board.build import build_firmware
    from tinysplit.host.costmodel.model import CYCLES_PER_INSN
    from tinysplit.host.planner.plan import Board, plan_cut

    emulated = Board.load(BOARD)
    # The planner's board at the emulator's rate: instructions per second = clock / CPI.
    clock = round(RATE * CYCLES_PER_INSN[emulated.core])
    board = dataclasses.replace(emulated, clock_hz=clock)
    rows = []
    # --quick: the smallest workload only (its steps are a fraction of a second on the wire)
    # --quick: int8 only
    for w, wire in [
        (w, wire)
        for w in ([w for w in workloads if w == "digits-mlp"] if quick else workloads)
        for wire in (WIRES[:1] if quick else WIRES)
    ]:
        say(f"overlap: {w} --wire {wire}: export and build for {BOARD} ...")
        export_dir = work / w / wire / "export"
        export_client(w, None, export_dir, seed=0, wire=wire)
        elf = build_firmware(BOARD, export_dir, work / w / wire / "build")
        cp = plan_client(w, None, board=BOARD, wire=wire_bits(wire))
        for baud, shift, line in RUNS:
            steps, scale = _steps(quick), 2 ** (shift - SHIFT)
            say(f"overlap: {w} --wire {wire} at {baud:,} baud, {steps} steps of "
                f"{cp.max_batch} ...")  # fmt: skip
            got = _run(elf, export_dir, line, shift, steps, cp.max_batch)
            plan = plan_cut(cp, "", board, baud, None, wire_bits(wire))
            per = got["wall_s"] / got["samples"] / scale
            rows.append({
                "workload": w, "wire": wire, "cut": cp.cut, "batch": cp.max_batch, "baud": baud,
                "steps": steps, "run_as": f"-icount shift={shift}, line {line:,} baud"
                + (f", times / {scale}" if scale > 1 else ""),
                "time_per_sample_ms": 1e3 * per,
                "link_busy_pct": 100.0 * got["busy_s"] / got["wall_s"],
                "predicted_overlap_ms": 1e3 * plan.overlap_s,
                "predicted_in_turn_ms": 1e3 * plan.time_s,
                "prediction_error_pct": 100.0 * (plan.overlap_s - per) / per,
                "device_ms": 1e3 * plan.device_s, "wire_ms": 1e3 * plan.wire_s,
            })  # fmt: skip
    return {
        "status": "ok",
        "board": BOARD,
        "icount": f"shift={SHIFT},align=on",
        "instructions_per_s": RATE,
        "goal_busy_pct": GOAL_BUSY_PCT,
        "goal_prediction_pct": GOAL_PREDICTION_PCT,
        "rows": rows,
    }


def markdown(section: dict[str, Any]) -> str:
    lines = [
        "## 9. The wire and the kernels overlap",
        "",
        "Every board's UART works by interrupt both ways: the board computes the next samples "
        "while a SMASHED frame leaves and back-propagates each GRAD frame as it arrives (the RX "
        "ring holds the next). Measured on the emulated M4 "
        f"({section['board']}) running at a fixed {section['instructions_per_s'] / 1e6:g} M "
        f"instructions a second in real time (QEMU `-icount {section['icount']}`: a Cortex-M4 "
        "at 180 MHz and 1.44 cycles per instruction), behind a link paced at the baud rate "
        "both ways. Each workload in int8 and in `--wire sparse-g4` (section 10's choice). Per "
        "training sample: the wall time of the steps after the first; *link "
        "busy*: the share of it the line carried bytes; *planned*: `tinysplit plan`'s "
        "prediction for this instruction rate and baud (overlap: kernels and wire at the same "
        "time; in turn: one after the other). Goals: link busy >= "
        f"{section['goal_busy_pct']:g}%, planned within {section['goal_prediction_pct']:g}%.",
        "",
        "QEMU's UART models receive at most ~20 KB/s (one byte per QEMU main-loop turn), less "
        "than 921,600 baud carries: that row runs the same ratio of compute to wire eight times "
        "slower (the board at 1/8 of the rate, the line at 115,200) and divides the times by 8; "
        "the host's own time per step weighs 8 times less there than it would at 921,600.",
        "",
        "| workload | wire | cut | batch | baud | ms / sample | link busy | planned (overlap) "
        "| error | planned (in turn) | device / wire ms |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in section["rows"]:
        lines.append(
            f"| {r['workload']} | {r.get('wire', 'int8')} | {r['cut']} | {r['batch']} | "
            f"{r['baud']:,} | "
            f"{r['time_per_sample_ms']:.1f} | {r['link_busy_pct']:.1f}% | "
            f"{r['predicted_overlap_ms']:.1f} | {r['prediction_error_pct']:+.1f}% | "
            f"{r['predicted_in_turn_ms']:.1f} | {r['device_ms']:.1f} / {r['wire_ms']:.1f} |"
        )
    return "\n".join(lines) + "\n"
