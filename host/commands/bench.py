"""`tinysplit bench`: kernels, link, host overhead, accuracy and memory, as BENCHMARKS.md/.json."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from tinysplit.codegen.models import REGISTRY
from tinysplit.core.errors import BadInput
from tinysplit.core.paths import source_root
from tinysplit.host.bench.markdown import Progress
from tinysplit.host.bench.report import run_bench, write_report


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "bench",
        help="measure kernels, link, host overhead, accuracy and memory; write BENCHMARKS.md",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="CI run, under 3 minutes: native build, at most ~100 training steps per workload",
    )
    p.add_argument(
        "--out", type=Path, help="where BENCHMARKS.md and .json go (default: the repository root)"
    )
    p.add_argument(
        "--soak",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="also run `tinysplit soak` this long on the native build (reference: 600)",
    )
    p.add_argument(
        "--fleet-only",
        action="store_true",
        help="measure only section 7 (several paced boards) and update BENCHMARKS.md/.json",
    )
    p.add_argument(
        "--seal-only",
        action="store_true",
        help="measure only section 8 (what sealing the link costs the board) and update "
        "BENCHMARKS.md/.json",
    )
    p.add_argument(
        "--overlap-only",
        action="store_true",
        help="measure only section 9 (time per sample and link busy share on the paced, "
        "rate-fixed emulated board) and update BENCHMARKS.md/.json",
    )
    p.add_argument(
        "--wire-only",
        action="store_true",
        help="measure only section 10 (bytes per sample and accuracy per wire format) and "
        "update BENCHMARKS.md/.json",
    )
    p.add_argument(
        "--workload",
        action="append",
        metavar="NAME",
        help="only this reference workload (repeatable; default: every bundled one)",
    )


def run(args: argparse.Namespace) -> None:
    workloads = list(args.workload or REGISTRY)
    unknown = [w for w in workloads if w not in REGISTRY]
    if unknown:
        raise BadInput(
            f"unknown workload {unknown[0]!r}: choose from {', '.join(sorted(REGISTRY))}"
        )
    out_dir: Path = args.out if args.out is not None else source_root()
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise BadInput(f"cannot write to {out_dir}: {e.strerror or e}") from None
    if not out_dir.is_dir():
        raise BadInput(f"--out {out_dir} is not a directory")

    if args.soak < 0:
        raise BadInput(f"--soak {args.soak:g}: give seconds >= 0")
    if args.fleet_only or args.seal_only or args.overlap_only or args.wire_only:
        _one_section(args, workloads, out_dir)
        return
    report = run_bench(
        quick=args.quick, workloads=workloads, say=Progress(), soak_seconds=args.soak
    )
    md_path, json_path = write_report(report, out_dir)
    print(f"wrote {md_path} and {json_path} ({report['bench']['seconds']:.0f} s)")


def _one_section(args: argparse.Namespace, workloads: list[str], out_dir: Path) -> None:
    """Section 7 (--fleet-only), 8 (--seal-only), 9 (--overlap-only) and/or 10 (--wire-only)
    alone, merged into
    the BENCHMARKS.json already there (the other sections and their provenance unchanged), and
    BENCHMARKS.md rendered again from it."""
    import json
    import tempfile

    from tinysplit.host.bench.report import (
        JSON_NAME,
        run_fleet,
        run_overlap,
        run_sealing,
        run_wire,
    )

    path = out_dir / JSON_NAME
    flag = next(
        f"--{name.replace('_', '-')}"
        for name in ("fleet_only", "seal_only", "overlap_only", "wire_only")
        if getattr(args, name)
    )
    try:
        report = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise BadInput(f"{flag} updates {path}, which cannot be read ({e}): run a full "
                       "`tinysplit bench` first") from None  # fmt: skip
    done = []
    with tempfile.TemporaryDirectory(prefix="tinysplit-section-") as tmp:
        if args.fleet_only:
            report["fleet"] = run_fleet(Path(tmp) / "fleet", workloads, Progress(), args.quick)
            done.append("7")
        if args.seal_only:
            report["sealing"] = run_sealing(Path(tmp) / "sealing", workloads, Progress())
            done.append("8")
        if args.overlap_only:
            report["overlap"] = run_overlap(
                Path(tmp) / "overlap", workloads, Progress(), args.quick
            )
            done.append("9")
        if args.wire_only:
            report["wire"] = run_wire(Path(tmp) / "wire", workloads, Progress(), args.quick)
            done.append("10")
    md_path, json_path = write_report(report, out_dir)
    print(f"wrote section {' and '.join(done)} into {md_path} and {json_path}")
