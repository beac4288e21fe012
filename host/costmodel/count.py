"""Exact instruction counts of the int8 kernels on an emulated Cortex-M (issue #6, "measure it").

    from tinysplit.host.costmodel.count import count_kernels, format_table
    print(format_table(count_kernels()))          # or: python -m tinysplit.host.costmodel.count

Builds the QEMU TCG plugin scripts/qemu_plugins/insn_count.c (host gcc, plugin.mk) and the bench
app firmware/bench/kernel_bench.c (the Makefile with APP_SRCS=..., no model), runs the bench once
under QEMU with the plugin and `-icount shift=0`, and pairs the plugin's counts with the bench's
UART lines. The bench calls two noinline marker functions around each kernel call (interrupts
masked); the plugin, given their addresses from arm-none-eabi-nm, counts the instructions of the
translation blocks executed between them. Interval 0 is the empty marker pair: its count (the
markers' own instructions) is subtracted from every kernel's. Instructions skipped by a failed IT
condition count as executed, the way the KERNEL-ANCHORS.md figures are counted.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from tinysplit.core.boards import board_profile
from tinysplit.core.errors import BuildError, TinysplitError, ToolMissing
from tinysplit.core.paths import source_root
from tinysplit.host.board.build import build_firmware

BENCH_APP = "firmware/bench/kernel_bench.c"
PLUGIN_MK = "scripts/qemu_plugins/plugin.mk"
QEMU = "qemu-system-arm"
RUN_TIMEOUT_S = 60.0

# /work/shared/KERNEL-ANCHORS.md: instructions per MAC of one forward call on QEMU mps2-an386,
# gcc 12.2 -O2. (kernel, shape) -> {"straightforward_c": ..., "cmsis_nn_dsp": ...}. The backward
# kernels have no anchor (no library has them).
ANCHORS: dict[tuple[str, str], dict[str, float]] = {
    ("conv2d_forward", "28x28x1->8,3x3,same"): {"straightforward_c": 56.8, "cmsis_nn_dsp": 14.00},
    ("conv2d_forward", "14x14x8->16,3x3,same"): {"straightforward_c": 11.6, "cmsis_nn_dsp": 2.88},
    ("conv2d_forward", "100x6->8,k5,valid"): {"straightforward_c": 15.7, "cmsis_nn_dsp": 5.03},
    ("depthwise_forward", "14x14x16,3x3,same"): {"straightforward_c": 41.8, "cmsis_nn_dsp": 8.25},
    ("fc_forward", "64->32"): {"straightforward_c": 7.8, "cmsis_nn_dsp": 2.71},
    ("fc_forward", "1568->32"): {"straightforward_c": 7.0, "cmsis_nn_dsp": 1.91},
}
# CMSIS-NN's figures on the Cortex-M0+ (its pure C path; KERNEL-ANCHORS.md's last column).
ANCHORS_M0PLUS = dict(zip(ANCHORS, (25.45, 8.67, 12.36, 37.78, 7.76, 6.19), strict=True))
# The optimized kernels (firmware/kernels/*_fast.c) are measured against the same anchors.
ANCHORS |= {(f"{k}_fast", s): a for (k, s), a in list(ANCHORS.items())}
ANCHORS_M0PLUS |= {(f"{k}_fast", s): a for (k, s), a in list(ANCHORS_M0PLUS.items())}

_BENCH_LINE = re.compile(r"^bench (\d+) (\S+) (\S+) (\d+)$")
_COUNT_LINE = re.compile(r"^insn_count (\d+) (\d+)$")


class BenchError(TinysplitError):
    """The bench did not run to its end under QEMU, or its output does not pair up."""


def _require(tool: str, package: str) -> str:
    found = shutil.which(tool)
    if found is None:
        raise ToolMissing(f"{tool} not found: run scripts/setup.sh (installs {package})")
    return found


def build_plugin(build_dir: Path) -> Path:
    """scripts/qemu_plugins/insn_count.c -> build_dir/insn_count.so (make -f plugin.mk)."""
    make = _require("make", "make")
    _require("gcc", "gcc")
    build_dir = Path(build_dir).resolve()
    result = subprocess.run(
        [make, "-s", "-C", str(source_root()), "-f", PLUGIN_MK, f"PLUGIN_BUILD_DIR={build_dir}"],
        capture_output=True,
        text=True,
        check=False,
    )
    plugin = build_dir / "insn_count.so"
    if result.returncode != 0 or not plugin.is_file():
        raise BuildError(f"the QEMU plugin did not compile\n{result.stderr}{result.stdout}")
    return plugin


def build_bench(board: str, build_dir: Path) -> Path:
    """The kernel bench image for `board` (the kernels, no model, no client)."""
    return build_firmware(board, None, build_dir, make_vars={"APP_SRCS": BENCH_APP})


def marker_addresses(elf: Path) -> tuple[int, int]:
    """Entry addresses of ts_bench_begin and ts_bench_end (Thumb bit cleared)."""
    nm = _require("arm-none-eabi-nm", "binutils-arm-none-eabi")
    out = subprocess.run([nm, str(elf)], capture_output=True, text=True, check=True).stdout
    found: dict[str, int] = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[2] in ("ts_bench_begin", "ts_bench_end"):
            found[parts[2]] = int(parts[0], 16) & ~1
    if len(found) != 2:
        raise BuildError(f"{elf} lacks the ts_bench_begin/ts_bench_end markers: rebuild the bench")
    return found["ts_bench_begin"], found["ts_bench_end"]


def run_bench(elf: Path, plugin: Path, machine: str, work_dir: Path) -> list[dict[str, Any]]:
    """Runs the bench once; returns its intervals: n, kernel, shape, macs, raw instructions."""
    qemu = _require(QEMU, "qemu-system-arm")
    begin, end = marker_addresses(elf)
    uart = work_dir / "uart.txt"
    counts = work_dir / "counts.txt"
    for f in (uart, counts):
        f.unlink(missing_ok=True)
    argv = [
        qemu,
        "-M", machine,
        "-display", "none",
        "-monitor", "none",
        "-serial", f"file:{uart}",
        "-semihosting-config", "enable=on,target=native",
        "-icount", "shift=0",
        "-plugin", f"{plugin},begin={begin:#x},end={end:#x},out={counts}",
        "-kernel", str(elf),
    ]  # fmt: skip
    try:
        result = subprocess.run(
            argv, capture_output=True, text=True, timeout=RUN_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired as e:
        raise BenchError(f"the bench did not finish within {RUN_TIMEOUT_S:.0f} s") from e
    uart_text = uart.read_text(errors="replace") if uart.is_file() else ""
    if result.returncode != 0 or "bench done" not in uart_text:
        raise BenchError(
            f"the bench did not run to its end (QEMU exit {result.returncode})\n"
            f"UART: {uart_text[-400:]}\nQEMU: {result.stderr[-400:]}"
        )
    benches = [m.groups() for m in map(_BENCH_LINE.match, uart_text.splitlines()) if m]
    raw = {
        int(m.group(1)): int(m.group(2))
        for m in map(_COUNT_LINE.match, counts.read_text().splitlines())
        if m
    }
    if [int(b[0]) for b in benches] != sorted(raw) or not benches:
        raise BenchError(
            f"bench lines and plugin counts do not pair up: {len(benches)} lines, "
            f"{len(raw)} counts\nUART: {uart_text[-400:]}"
        )
    return [
        {"n": int(n), "kernel": k, "shape": s, "macs": int(macs), "raw": raw[int(n)]}
        for n, k, s, macs in benches
    ]


def count_kernels(board: str = "mps2_an386", build_dir: Path | None = None) -> list[dict[str, Any]]:
    """Instructions per MAC of each benched kernel on `board` (an emulated board).

    One dict per kernel call: kernel, shape, macs, instructions (marker overhead subtracted),
    per_mac, anchor_per_mac ({"straightforward_c", "cmsis_nn_dsp"} of KERNEL-ANCHORS.md, or None
    for kernels without an anchor) and ratio (per_mac / each anchor, same keys, or None).
    """
    machine = board_profile(board).get("qemu_machine")
    if not machine:
        raise BenchError(f"board {board} is not emulated by QEMU: the bench needs a qemu board")
    with tempfile.TemporaryDirectory(prefix="tinysplit-insn-") as tmp:
        base = Path(build_dir) if build_dir is not None else Path(tmp)
        plugin = build_plugin(base / "plugin")
        elf = build_bench(board, base / f"bench-{board}")
        intervals = run_bench(elf, plugin, machine, Path(tmp))
    overhead = intervals[0]
    if overhead["kernel"] != "overhead":
        raise BenchError("the bench's first interval is not the marker overhead")
    rows: list[dict[str, Any]] = []
    for it in intervals[1:]:
        instructions = it["raw"] - overhead["raw"]
        per_mac = instructions / it["macs"]
        anchor = ANCHORS.get((it["kernel"], it["shape"]))
        rows.append(
            {
                "kernel": it["kernel"],
                "shape": it["shape"],
                "macs": it["macs"],
                "instructions": instructions,
                "per_mac": per_mac,
                "anchor_per_mac": dict(anchor) if anchor else None,
                "ratio": {k: per_mac / v for k, v in anchor.items()} if anchor else None,
            }
        )
    return rows


#: The link suite's functions (kernel_bench.c built with -DTS_BENCH_LINK).
LINK_FUNCTIONS = ("frame_encode", "seal_encode", "seal_open")


def count_link(board: str = "mps2_an386", build_dir: Path | None = None) -> list[dict[str, Any]]:
    """Instructions of framing one payload in clear (ts_frame_encode), sealed
    (ts_secure_encode) and of opening a sealed one (ts_secure_open), on `board`, for payloads
    of 0 to 2048 bytes: one dict per call with function, bytes, instructions."""
    machine = board_profile(board).get("qemu_machine")
    if not machine:
        raise BenchError(f"board {board} is not emulated by QEMU: the bench needs a qemu board")
    with tempfile.TemporaryDirectory(prefix="tinysplit-link-") as tmp:
        base = Path(build_dir) if build_dir is not None else Path(tmp)
        plugin = build_plugin(base / "plugin")
        elf = build_firmware(board, None, base / f"bench-link-{board}",
                             make_vars={"APP_SRCS": BENCH_APP,
                                        "EXTRA_CFLAGS": "-DTS_BENCH_LINK"})  # fmt: skip
        intervals = run_bench(elf, plugin, machine, Path(tmp))
    overhead = intervals[0]
    if overhead["kernel"] != "overhead":
        raise BenchError("the bench's first interval is not the marker overhead")
    rows = [
        {"function": it["kernel"], "bytes": it["macs"],
         "instructions": it["raw"] - overhead["raw"]}
        for it in intervals[1:]
    ]  # fmt: skip
    if not rows or {r["function"] for r in rows} != set(LINK_FUNCTIONS):
        raise BenchError(f"the link bench reported {sorted({r['function'] for r in rows})}")
    return rows


def format_table(rows: list[dict[str, Any]]) -> str:
    """A Markdown table of count_kernels' rows."""
    lines = [
        "| kernel | shape | MACs | instructions | instr/MAC | straightforward C | CMSIS-NN DSP "
        "| x C | x DSP |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        a, q = r["anchor_per_mac"], r["ratio"]
        cells = (
            [f"{a['straightforward_c']:.2f}", f"{a['cmsis_nn_dsp']:.2f}"] if a else ["-", "-"]
        ) + ([f"{q['straightforward_c']:.2f}", f"{q['cmsis_nn_dsp']:.2f}"] if q else ["-", "-"])
        lines.append(
            f"| {r['kernel']} | {r['shape']} | {r['macs']:,} | {r['instructions']:,} "
            f"| {r['per_mac']:.2f} | " + " | ".join(cells) + " |"
        )
    return "\n".join(lines)


def main() -> int:
    board = sys.argv[1] if len(sys.argv) > 1 else "mps2_an386"
    try:
        print(format_table(count_kernels(board)))
    except TinysplitError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
