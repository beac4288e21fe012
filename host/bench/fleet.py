"""Several boards at once (BENCHMARKS.md section 7): training throughput of K native boards,
each behind a link paced like a real UART (host/transport/pacing.py), splitfed rounds without
averaging or evaluation; and the host's own CPU time per training step per board, from which
follows how many boards one host core serves."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

#: Boards per measurement, and the line rates.
FLEET_CLIENTS = (1, 2, 4, 8)
FLEET_BAUD = 115_200
CORE_BAUDS = (115_200, 921_600)
#: Splitfed rounds measured per workload (each a training step on every board).
ROUNDS = {"digits-mlp": 16, "mnist-cnn": 3, "motion-cnn1d": 6}


def measure_workload(
    workload: str, work: Path, say: Callable[[str], None], clients: Sequence[int] = FLEET_CLIENTS
) -> list[dict[str, Any]]:
    """One row per K: samples per second of K paced native boards, and the host CPU."""
    from tinysplit.codegen.export import export_client
    from tinysplit.host.board.build import build_firmware
    from tinysplit.host.board.launch import native_board, open_port
    from tinysplit.host.commands.federated import template
    from tinysplit.host.commands.runs import RunOptions, hyper
    from tinysplit.host.training.federation import Member, federated_train
    from tinysplit.host.training.schedule import Schedule
    from tinysplit.host.training.server import ServerSegment
    from tinysplit.host.training.session import Export
    from tinysplit.host.transport.link import ClientLink
    from tinysplit.host.transport.pacing import PacedPort

    say(f"fleet: exporting {workload} ...")
    export_client(workload, None, work / workload)
    export = Export.load(work / workload)
    image = build_firmware("native", export.path, work / "build")
    cfg = hyper(RunOptions(), export)
    layers = template(export)
    rounds = ROUNDS.get(workload, 4)
    rows: list[dict[str, Any]] = []
    for k in clients:
        say(f"fleet: {workload} on {k} paced native board(s) at {FLEET_BAUD:,} baud ...")
        with contextlib.ExitStack() as stack:
            links, pacers = [], []
            for _ in range(k):
                url = stack.enter_context(native_board(image))
                paced = stack.enter_context(PacedPort(open_port(url, timeout=0), FLEET_BAUD))
                pacers.append(paced)
                link = ClientLink(paced, **export.link_key())
                link.hello(export.model_hash)
                links.append(link)
            members = [
                Member(i, link, Schedule(link.n_train, cfg.batch, cfg.epochs, cfg.seed + i))
                for i, link in enumerate(links)
            ]
            server = ServerSegment.load(export.path / "server.keras", cfg.lr)
            # one round unmeasured: TensorFlow traces its functions on the first step
            federated_train(members[:1], server, cfg, layers, max_steps=1)
            members = [
                Member(i, link, Schedule(link.n_train, cfg.batch, cfg.epochs, cfg.seed + 7 + i))
                for i, link in enumerate(links)
            ]
            cpu0, wall0 = time.process_time(), time.monotonic()
            pacer_cpu0 = sum(p.cpu_seconds for p in pacers)
            res = federated_train(members, server, cfg, layers, max_steps=rounds, first_step=1)
            wall = time.monotonic() - wall0
            # the proxies' own threads are the harness, not the host: their CPU is taken out
            pacer_cpu = sum(p.cpu_seconds for p in pacers) - pacer_cpu0
            cpu = time.process_time() - cpu0 - pacer_cpu
        wire = sum(link.stats.bytes_to_server + link.stats.bytes_to_client for link in links)
        rows.append(
            {
                "workload": workload,
                "clients": k,
                "baud": FLEET_BAUD,
                "rounds": rounds,
                "batch": cfg.batch,
                "samples": res.samples,
                "seconds": wall,
                "samples_per_s": res.samples / wall,
                "host_cpu_ms_per_step_per_board": 1000.0 * cpu / (rounds * k),
                "server_cpu_ms_per_step": 1000.0 * res.server_seconds / (rounds * k),
                "wire_bytes": wire,
            }
        )
    one = float(rows[0]["samples_per_s"]) if rows and rows[0]["clients"] == 1 else 0.0
    for r in rows:
        speedup = float(r["samples_per_s"]) / one if one else None
        r["speedup"] = speedup
        r["efficiency"] = speedup / int(r["clients"]) if speedup is not None else None
    return rows


def boards_per_core(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """How many boards one host core keeps busy, per workload and line rate: a step's time on
    the wire (one paced board: batch / samples per second, scaled to the rate) over the host's
    CPU time per step per board (median over the K measured)."""
    import statistics

    out = []
    for w in dict.fromkeys(r["workload"] for r in rows):
        mine = [r for r in rows if r["workload"] == w]
        one = next((r for r in mine if r["clients"] == 1), None)
        if one is None:
            continue
        cpu_ms = statistics.median(r["host_cpu_ms_per_step_per_board"] for r in mine)
        step_ms_at_fleet = 1000.0 * one["batch"] / one["samples_per_s"]
        for baud in CORE_BAUDS:
            step_ms = step_ms_at_fleet * FLEET_BAUD / baud
            out.append({
                "workload": w, "baud": baud, "wire_ms_per_step": step_ms,
                "host_cpu_ms_per_step": cpu_ms, "boards_per_core": step_ms / cpu_ms,
            })  # fmt: skip
    return out


def measure(
    work: Path, workloads: Sequence[str], say: Callable[[str], None], quick: bool = False
) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    for w in workloads:
        rows += measure_workload(w, work, say, (1, 2) if quick else FLEET_CLIENTS)
    return {"rows": rows, "boards_per_core": boards_per_core(rows)}


def markdown(section: dict[str, Any]) -> str:
    lines = [
        "## 7. Several boards",
        "",
        f"K native boards, each behind its own link paced at {FLEET_BAUD:,} baud both ways "
        "(host/transport/pacing.py: baud/10 bytes a second, as a real UART), splitfed rounds "
        "(every board one training step per round, links concurrent, the server segment in "
        "turn), no averaging or evaluation in the measured rounds. samples/s over the wall "
        "time of the rounds; speedup = samples/s over one board's, efficiency = speedup / K.",
        "",
        "| workload | K | rounds | samples/s | speedup | efficiency | host CPU ms / step / board |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in section["rows"]:
        sp = "-" if r["speedup"] is None else f"{r['speedup']:.2f}"
        ef = "-" if r["efficiency"] is None else f"{r['efficiency']:.2f}"
        lines.append(
            f"| {r['workload']} | {r['clients']} | {r['rounds']} | {r['samples_per_s']:.1f} | "
            f"{sp} | {ef} | {r['host_cpu_ms_per_step_per_board']:.2f} |"
        )
    lines += [
        "",
        "How many boards one host core serves: a training step's time on the wire (one paced "
        "board's, scaled to the line rate) over the host's CPU time per step per board (this "
        "process: server segment, quantization, framing, the link threads; median over K).",
        "",
        "| workload | baud | wire ms / step | host CPU ms / step | boards per core |",
        "|---|---:|---:|---:|---:|",
    ]
    for r in section["boards_per_core"]:
        lines.append(
            f"| {r['workload']} | {r['baud']:,} | {r['wire_ms_per_step']:.1f} | "
            f"{r['host_cpu_ms_per_step']:.2f} | {r['boards_per_core']:.0f} |"
        )
    return "\n".join(lines) + "\n"
