"""`tinysplit bench`: every figure of BENCHMARKS.md, measured in one run, beside its reference.

    tinysplit bench [--quick] [--out DIR] [--workload NAME ...]

Writes DIR/BENCHMARKS.md and DIR/BENCHMARKS.json (DIR: the repository root by default):

1. kernel efficiency on the emulated Cortex-M4: exact instructions/MAC of each forward and
   backward kernel vs KERNEL-ANCHORS.md, estimated cycles/MAC vs the SMLAD peak (bench_kernels)
2. link efficiency: payload and wire bytes per sample each way, framing overhead, a step's time
   on the wire at 115200 / 921600 / 2,000,000 baud vs the host's time per step (bench_sections)
3. host overhead: steps/s on the native build vs the golden model in-process
4. accuracy: split-trained vs centralized float Keras, same data/epochs/batch/seed
5. memory: client RAM and flash, planned and linked, per workload and board (bench_memory)

The full run trains every reference workload for its reference epochs on the emulated board
(mps2_an386, QEMU) for the accuracy table: it is what the README's results come from. --quick
(CI, under 3 minutes) trains on the native build for at most ~100 steps per workload and sizes
the real boards and mps2_an386 only. A workload that fails in a section is reported there as
"not run: <reason>"; the other figures are still measured.

BENCHMARKS.json: {"bench": how and where it ran, "kernels": {..., "rows": [...]}, "link",
"host_overhead", "accuracy", "memory": {..., "workloads": [{"workload": NAME, "status": "ok" or
"not run", "reason" when not run, the figures when ok}]}}; ratios are plain numbers
(measured / reference), times in seconds, sizes in bytes.
"""

from __future__ import annotations

import json
import math
import os
import platform
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tinysplit.host.bench import markdown as md

if TYPE_CHECKING:
    from tinysplit.host.bench.runs import Prepared, RunMeasure

ACCURACY_BOARD = "mps2_an386"  # the full run's split training, as `tinysplit demo`
LINK_BOARD = "native"  # link and host-overhead runs: the native build over a pty
# Workloads whose accuracy is the mean over several seeds: BasicMotions has 40 test samples
# (one sample is 2.5 points), so one seed says little.
ACCURACY_SEEDS: dict[str, tuple[int, ...]] = {"motion-cnn1d": (0, 1, 2)}
MD_NAME, JSON_NAME = "BENCHMARKS.md", "BENCHMARKS.json"


def write_report(report: dict[str, Any], out_dir: Path) -> tuple[Path, Path]:
    """Writes BENCHMARKS.md and BENCHMARKS.json into out_dir; returns their paths."""
    merge_wire_rows(report)
    (out_dir / JSON_NAME).write_text(json.dumps(_finite(report), indent=2) + "\n")
    (out_dir / MD_NAME).write_text(markdown(report))
    return out_dir / MD_NAME, out_dir / JSON_NAME


# ---- the run -------------------------------------------------------------------------------


def _attempt(say: Callable[[str], None], what: str, fn: Callable[..., Any], *args: Any) -> Any:
    """fn(*args), or a `not run` entry with the first line of whatever it raised."""
    try:
        return fn(*args)
    except Exception as e:  # a section must not stop the others (the conv firmware is young)
        say(f"{what}: not run: {md.first_line(e)}")
        return md.not_run(md.first_line(e))


def run_bench(
    *, quick: bool, workloads: list[str], say: Callable[[str], None], soak_seconds: float = 0.0
) -> dict[str, Any]:
    from tinysplit.host.bench import kernels

    started, t0 = time.strftime("%Y-%m-%d %H:%M:%S %Z"), time.monotonic()
    seconds: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="tinysplit-bench-") as tmp:
        work = Path(tmp)

        t = time.monotonic()
        preps: dict[str, list[Prepared] | dict[str, Any]] = {}
        for w in workloads:
            seeds = ACCURACY_SEEDS.get(w, (0,))
            plural = "s" if len(seeds) > 1 else ""
            say(f"exporting {w} (seed{plural} {', '.join(map(str, seeds))}) ...")
            preps[w] = _attempt(say, f"export {w}", _prepare, w, seeds, work, quick)
        ok = {w: p for w, p in preps.items() if isinstance(p, list)}
        seconds["exports"] = time.monotonic() - t

        t = time.monotonic()
        say("kernels: building the bench and counting instructions under QEMU ...")
        exports = [(w, p[0].path) for w, p in ok.items()]
        kernels = _attempt(say, "kernels", kernels.measure, work / "kernels", exports, quick)
        seconds["kernels"] = time.monotonic() - t

        t = time.monotonic()
        link, overhead, board_runs = _link_and_overhead(preps, work, say)
        seconds["link_and_overhead"] = time.monotonic() - t

        t = time.monotonic()
        accuracy = _accuracy(preps, board_runs, work, quick, say)
        seconds["accuracy"] = time.monotonic() - t

        t = time.monotonic()
        memory = _memory(preps, work, quick, say)
        seconds["memory"] = time.monotonic() - t

        t = time.monotonic()
        soak = _soak(soak_seconds, say)
        seconds["soak"] = time.monotonic() - t

        t = time.monotonic()
        fleet = run_fleet(work / "fleet", workloads, say, quick)
        seconds["fleet"] = time.monotonic() - t

        t = time.monotonic()
        sealing = run_sealing(work / "sealing", workloads, say)
        seconds["sealing"] = time.monotonic() - t

        t = time.monotonic()
        overlap = run_overlap(work / "overlap", workloads, say, quick)
        seconds["overlap"] = time.monotonic() - t

        t = time.monotonic()
        wire = run_wire(work / "wire", workloads, say, quick)
        seconds["wire"] = time.monotonic() - t

    seconds["total"] = time.monotonic() - t0
    return {
        "bench": {
            "mode": "quick" if quick else "full",
            "command": "tinysplit bench"
            + (" --quick" if quick else "")
            + (f" --soak {soak_seconds:g}" if soak_seconds else ""),
            "started": started,
            "seconds": seconds["total"],
            "section_seconds": seconds,
            "workloads": workloads,
            **_provenance(),
            "training": _training_text(preps, quick),
        },
        "kernels": kernels,
        "link": link,
        "host_overhead": overhead,
        "accuracy": accuracy,
        "memory": memory,
        "soak": soak,
        "fleet": fleet,
        "sealing": sealing,
        "overlap": overlap,
        "wire": wire,
    }


def run_sealing(work: Path, workloads: list[str], say: Callable[[str], None]) -> dict[str, Any]:
    """Section 8, with its own provenance (`tinysplit bench --seal-only` runs it alone)."""
    from tinysplit.host.bench import sealing

    started = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    section = _attempt(say, "sealing", sealing.measure, work, workloads, say)
    if section.get("status") != "not run":
        section["started"] = started
        section["commit"] = _provenance().get("commit")
    return dict(section)


def run_overlap(
    work: Path, workloads: list[str], say: Callable[[str], None], quick: bool
) -> dict[str, Any]:
    """Section 9, with its own provenance (`tinysplit bench --overlap-only` runs it alone)."""
    from tinysplit.host.bench import overlap

    started = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    section = _attempt(say, "overlap", overlap.measure, work, workloads, say, quick)
    if section.get("status") != "not run":
        section["started"] = started
        section["commit"] = _provenance().get("commit")
    return dict(section)


def run_wire(
    work: Path, workloads: list[str], say: Callable[[str], None], quick: bool
) -> dict[str, Any]:
    """Section 10, with its own provenance (`tinysplit bench --wire-only` runs it alone)."""
    from tinysplit.host.bench import wire

    started = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    # The link board, as section 2 (whose rows these runs also are): the native build trains
    # bit for bit as the emulated M4 does in every format (tests/e2e/test_wire_formats.py),
    # some 20x faster, so every format and seed runs the reference epochs.
    section = _attempt(say, "wire", wire.measure, work, workloads, say, quick, LINK_BOARD)
    if section.get("status") != "not run":
        section["started"] = started
        section["commit"] = _provenance().get("commit")
    return dict(section)


def merge_wire_rows(report: dict[str, Any]) -> None:
    """Section 2's link rows: today's (int8, the link board's run) named `wire` int8, then one
    row per workload and wire format from section 10 (`wire`, `accuracy`)."""
    from tinysplit.host.bench import wire

    link = report.get("link", {})
    if not isinstance(link.get("workloads"), list):
        return
    coded = wire.link_rows(report.get("wire", {}))
    int8 = {r["workload"]: r for r in coded if r["wire"] == "int8"}
    rows = [r for r in link["workloads"] if r.get("wire", "int8") == "int8"]
    for r in rows:
        r["wire"] = "int8"
        if r["workload"] in int8:  # the same training: its accuracy from section 10's run
            r["accuracy"] = int8[r["workload"]]["accuracy"]
    link["workloads"] = rows + [r for r in coded if r["wire"] != "int8"]


def run_fleet(
    work: Path, workloads: list[str], say: Callable[[str], None], quick: bool
) -> dict[str, Any]:
    """Section 7, with its own provenance (`tinysplit bench --fleet-only` runs it alone)."""
    from tinysplit.host.bench import fleet

    started = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    section = _attempt(say, "fleet", fleet.measure, work, workloads, say, quick)
    if section.get("status") != "not run":
        section["started"] = started
        section["commit"] = _provenance().get("commit")
    return dict(section)


def _soak(seconds: float, say: Callable[[str], None]) -> dict[str, Any]:
    """The soak's report (tinysplit soak on the native build), or `not run`."""
    if not seconds:
        return md.not_run("give `tinysplit bench --soak SECONDS` (the reference run: 600)")
    from tinysplit.host.training.soak import soak

    say(f"soak: {seconds:g} s of training through the fault proxy on the native build ...")
    report: dict[str, Any] = _attempt(say, "soak", lambda: soak(seconds, "native", None, say=say))
    return report


def soak_markdown(r: dict[str, Any]) -> str:
    kinds = ", ".join(f"{k} {v:,}" for k, v in r["faults_by_kind"].items())
    verdict = "yes" if r["weights_identical"] and not r["lost"] else "NO"
    return "\n".join([
        "## 6. Robustness: the soak",
        "",
        "`tinysplit soak` on the native build: digits-mlp trained through a proxy that injects "
        "frame faults (drop, duplicate, reorder, truncate, bit flip, garbage) and board resets, "
        "then compared, client state and server weights, with a clean run of the same steps.",
        "",
        md.table(
            ["seconds", "steps", "faults injected", "board resets recovered", "lost",
             "weights identical to the clean run"],
            [[f"{r['seconds']:g}", f"{r['steps']:,}", f"{r['faults_injected']:,}",
              f"{r['recoveries']:,}", f"{r['lost']:,}", verdict]],
            right=(0, 1, 2, 3, 4),
        ),
        "",
        f"Faults by kind: {kinds}.",
        "",
    ])  # fmt: skip


def _prepare(workload: str, seeds: tuple[int, ...], work: Path, quick: bool) -> list[Prepared]:
    from tinysplit.host.bench.runs import prepare

    return [prepare(workload, s, work / workload / f"seed{s}", quick) for s in seeds]


def _link_and_overhead(
    preps: dict[str, list[Prepared] | dict[str, Any]], work: Path, say: Callable[[str], None]
) -> tuple[dict[str, Any], dict[str, Any], dict[str, RunMeasure]]:
    """The native-build run of each workload (first seed) for the link figures, and the same
    run in-process for the host overhead."""
    from tinysplit.host.bench import sections
    from tinysplit.host.bench.runs import RunMeasure, run_board, run_in_process

    link: list[dict[str, Any]] = []
    overhead: list[dict[str, Any]] = []
    board_runs: dict[str, RunMeasure] = {}
    for w, p in preps.items():
        if not isinstance(p, list):
            link.append({"workload": w, **p})
            overhead.append({"workload": w, **p})
            continue
        prep = p[0]
        say(f"{w}: split training on the {LINK_BOARD} build ({_steps_text(prep)}) ...")
        native = _attempt(
            say, f"{w} on {LINK_BOARD}", run_board, prep, LINK_BOARD, work / w / "build-native"
        )
        if not isinstance(native, RunMeasure):
            link.append({"workload": w, **native})
            overhead.append({"workload": w, **native})
            continue
        board_runs[w] = native
        say(f"{w}: {native.steps} steps, {native.steps_per_s:.1f} steps/s; the same in-process ...")
        link.append({"workload": w, **_attempt(say, w, sections.link_entry, prep, native)})
        golden = _attempt(say, f"{w} in-process", run_in_process, prep)
        if isinstance(golden, RunMeasure):
            overhead.append(sections.overhead_entry(prep, native, golden))
        else:
            overhead.append({"workload": w, **golden})
    common = {"board": LINK_BOARD}
    return (
        {**common, "framing": sections.framing_constants(),
         "baud_rates": list(sections.BAUD_RATES), "workloads": link},
        {**common, "workloads": overhead},
        board_runs,
    )  # fmt: skip


def _accuracy(
    preps: dict[str, list[Prepared] | dict[str, Any]],
    native_runs: dict[str, RunMeasure],
    work: Path,
    quick: bool,
    say: Callable[[str], None],
) -> dict[str, Any]:
    """Split vs centralized per workload (mean over its seeds). --quick reuses the native
    runs (first seed) and trains the other seeds on the native build; the full run trains
    every seed on the emulated board."""
    from tinysplit.host.bench import sections

    board = LINK_BOARD if quick else ACCURACY_BOARD
    entries: list[dict[str, Any]] = []
    for w, p in preps.items():
        if not isinstance(p, list):
            entries.append({"workload": w, **p})
            continue
        done = native_runs.get(w) if quick else None  # the first seed's, already trained
        results = _attempt(say, f"{w} accuracy", _accuracy_runs, p, board, done, work, say)
        if isinstance(results, dict):
            entries.append({"workload": w, **results})
            continue
        entries.append(sections.accuracy_entry(p, [r[0] for r in results], [r[1] for r in results]))
    text = "the native build (--quick)" if quick else f"the emulated {ACCURACY_BOARD} (QEMU)"
    return {"board": board, "board_text": text, "workloads": entries}


def _accuracy_runs(
    preps: list[Prepared],
    board: str,
    done: RunMeasure | None,
    work: Path,
    say: Callable[[str], None],
) -> list[tuple[float, float]]:
    """(split, centralized) test accuracy for each seed; `done`: the first seed's split run."""
    from tinysplit.host.bench.runs import centralized_accuracy, run_board

    out = []
    for i, prep in enumerate(preps):
        w = prep.workload
        if i == 0 and done is not None:
            split = done.test_accuracy
        else:
            say(f"{w}: seed {prep.seed}: split training on {board} ({_steps_text(prep)}) ...")
            run = run_board(prep, board, work / w / f"build-{board}-seed{prep.seed}")
            split = run.test_accuracy
        say(f"{w}: seed {prep.seed}: split {split:.4f}; centralized float Keras ...")
        out.append((split, centralized_accuracy(prep)))
    return out


def _memory(
    preps: dict[str, list[Prepared] | dict[str, Any]],
    work: Path,
    quick: bool,
    say: Callable[[str], None],
) -> dict[str, Any]:
    from tinysplit.host.bench import memory

    board_names = memory.boards(quick)
    entries: list[dict[str, Any]] = []
    for w, p in preps.items():
        if not isinstance(p, list):
            entries.append({"workload": w, **p})
            continue
        say(f"{w}: building for {len(board_names)} boards, reading the linker maps ...")
        size_dir = work / w / "size"
        entry = _attempt(say, f"{w} memory", memory.measure, w, p[0].path, board_names, size_dir)
        entries.append({"workload": w, **entry})
    text = ", ".join(board_names) + (
        " (--quick: the real boards and the emulated M4)" if quick else ""
    )
    from tinysplit.codegen.export import DEFAULT_BOARD

    return {
        "boards": board_names,
        "boards_text": text,
        "plan_board": DEFAULT_BOARD,
        "workloads": entries,
    }


def _steps_text(prep: Prepared) -> str:
    from tinysplit.host.training.schedule import steps_per_epoch

    n = steps_per_epoch(int(prep.manifest["n_train"]), prep.cfg.batch) * prep.cfg.epochs
    return f"{prep.cfg.epochs} epochs, {n} steps"


def _training_text(preps: dict[str, list[Prepared] | dict[str, Any]], quick: bool) -> str:
    parts = []
    for w, p in preps.items():
        if isinstance(p, list):
            c = p[0].cfg
            seeds = f", seeds {', '.join(str(x.seed) for x in p)}" if len(p) > 1 else ""
            parts.append(f"{w}: {_steps_text(p[0])}, batch {c.batch}, lr {c.lr:g}{seeds}")
    where = (
        f"--quick: on the {LINK_BOARD} build, whole epochs up to ~100 steps per workload"
        if quick
        else f"accuracy on the emulated {ACCURACY_BOARD}, link and overhead on the {LINK_BOARD} "
        "build, the reference epochs"
    )
    return f"{where}. " + "; ".join(parts)


def _provenance() -> dict[str, Any]:
    from tinysplit.core.paths import source_root

    def cmd(*argv: str) -> str:
        try:
            out = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
        except (OSError, subprocess.TimeoutExpired):
            return ""
        return out.stdout.strip().splitlines()[0] if out.stdout.strip() else ""

    root = str(source_root())
    commit = cmd("git", "-C", root, "rev-parse", "--short", "HEAD")
    dirty = bool(cmd("git", "-C", root, "status", "--porcelain", "--untracked-files=no"))
    return {
        "commit": commit + (" (with local changes)" if commit and dirty else ""),
        "host": f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}",
        "qemu": cmd("qemu-system-arm", "--version"),
    }


def _finite(value: Any) -> Any:
    """NaN and infinities as null: BENCHMARKS.json stays strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


# ---- the report ----------------------------------------------------------------------------


def markdown(report: dict[str, Any]) -> str:
    from tinysplit.host.bench import kernels, memory, sections

    b = report["bench"]
    head = [
        "# tinysplit benchmarks",
        "",
        f"Measured by `{b['command']}` on {b['started']}, commit {b['commit'] or '?'}, "
        f"{b['host']}, {b['qemu'] or 'QEMU ?'}; {b['seconds']:.0f} s in all. Every figure below "
        "comes from this one run; BENCHMARKS.json holds them all.",
        "",
        f"Training: {b['training']}.",
        "",
    ]
    return "\n".join(
        [
            *head,
            kernels.markdown(report["kernels"]),
            _section_or(report["link"], "## 2. Link efficiency", sections.link_markdown),
            _section_or(report["host_overhead"], "## 3. Host overhead", sections.overhead_markdown),
            _section_or(report["accuracy"], "## 4. Accuracy", sections.accuracy_markdown),
            _section_or(report["memory"], "## 5. Memory", memory.markdown),
            _section_or(
                report.get("soak", md.not_run("not measured")),
                "## 6. Robustness: the soak",
                soak_markdown,
            ),
            _section_or(
                report.get("fleet", md.not_run("not measured")), "## 7. Several boards", _fleet_md
            ),
            _section_or(
                report.get("sealing", md.not_run("not measured")), "## 8. Sealed link", _sealing_md
            ),
            _section_or(
                report.get("overlap", md.not_run("not measured")),
                "## 9. The wire and the kernels overlap",
                _overlap_md,
            ),
            _section_or(
                report.get("wire", md.not_run("not measured")), "## 10. Wire formats", _wire_md
            ),
        ]
    )


def _overlap_md(section: dict[str, Any]) -> str:
    from tinysplit.host.bench import overlap

    text = overlap.markdown(section)
    if section.get("started"):
        text += (
            f"\nMeasured on {section['started']}, commit {section.get('commit') or '?'} "
            "(`tinysplit bench --overlap-only` updates this section alone).\n"
        )
    return text


def _wire_md(section: dict[str, Any]) -> str:
    from tinysplit.host.bench import wire

    text = wire.markdown(section)
    if section.get("started"):
        text += (
            f"\nMeasured on {section['started']}, commit {section.get('commit') or '?'} "
            "(`tinysplit bench --wire-only` updates this section alone).\n"
        )
    return text


def _sealing_md(section: dict[str, Any]) -> str:
    from tinysplit.host.bench import sealing

    text = sealing.markdown(section)
    if section.get("started"):
        text += (
            f"\nMeasured on {section['started']}, commit {section.get('commit') or '?'} "
            "(`tinysplit bench --seal-only` updates this section alone).\n"
        )
    return text


def _fleet_md(section: dict[str, Any]) -> str:
    from tinysplit.host.bench import fleet

    text = fleet.markdown(section)
    if section.get("started"):
        text += (
            f"\nMeasured on {section['started']}, commit {section.get('commit') or '?'} "
            "(`tinysplit bench --fleet-only` updates this section alone).\n"
        )
    return text


def _section_or(
    section: dict[str, Any], title: str, render: Callable[[dict[str, Any]], str]
) -> str:
    if section.get("status") == "not run":
        return f"{title}\n\nNot run: {section['reason']}\n"
    return render(section)
