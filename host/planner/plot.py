"""The planner's picture: device time per training sample against client RAM, one bubble per cut
(area proportional to the bytes a sample puts on the wire), Pareto-optimal cuts highlighted,
cuts that do not fit the board greyed, the board's RAM as a line."""

from __future__ import annotations

import math
from pathlib import Path

from tinysplit.host.planner.plan import PlanReport

#: Bubble area (points^2) of the largest bytes-per-sample among the cuts.
MAX_AREA = 2400.0


def plot_plan(report: PlanReport, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cuts = report.cuts
    most = max(c.bytes_per_sample for c in cuts)
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    y_span = max(1000 * c.device_s for c in cuts) or 1.0
    placed: list[tuple[float, float, int]] = []  # (x, y, side) of the labels so far
    for c in cuts:
        x, y = c.ram / 1024, 1000 * c.device_s
        area = max(40.0, MAX_AREA * c.bytes_per_sample / most)
        if not c.fits:
            style = dict(color="lightgrey", edgecolor="grey", zorder=2)
        elif c.pareto:
            style = dict(color="tab:orange", edgecolor="black", linewidth=1.5, zorder=3)
        else:
            style = dict(color="tab:blue", edgecolor="black", zorder=3)
        ax.scatter([x], [y], s=area, alpha=0.75, **style)  # type: ignore[arg-type]
        label = f"cut {c.cut} (after {c.after})\n{c.bytes_per_sample:,.0f} B/sample"
        if c.recommended:
            label = "recommended: " + label
        if not c.fits:
            label += f"\n{c.why_not()}"
        box = dict(boxstyle="round,pad=0.2", fc="white", ec="none", alpha=0.8)
        # Bubbles close together (similar RAM and time) get their labels on alternate sides.
        near = [s for px, py, s in placed if abs(px - x) < 25 and abs(py - y) < 0.15 * y_span]
        side = -1 if near.count(1) > near.count(-1) else 1
        placed.append((x, y, side))
        ax.annotate(label, (x, y), xytext=(side * (0.6 * math.sqrt(area) + 4), 0),
                    textcoords="offset points", va="center", ha="left" if side > 0 else "right",
                    fontsize=8, bbox=box,
                    fontweight="bold" if c.recommended else "normal")  # fmt: skip
    if report.board.ram_bytes is not None:
        ax.axvline(report.board.ram_bytes / 1024, color="red", ls="--", lw=1)
        ax.annotate(f"{report.board.name} RAM", (report.board.ram_bytes / 1024, 0),
                    xycoords=("data", "axes fraction"), xytext=(-4, 6),
                    textcoords="offset points", ha="right", color="red", fontsize=8)  # fmt: skip
    xs = [c.ram / 1024 for c in cuts] + (
        [report.board.ram_bytes / 1024] if report.board.ram_bytes is not None else []
    )
    ys = [1000 * c.device_s for c in cuts]
    ax.set_xlim(0, max(xs) * 1.6)  # room for the labels right of the bubbles
    ax.set_ylim(0, max(ys) * 1.3)
    ax.set(
        xlabel="client peak RAM (KiB, the export's memory plan)",
        ylabel="device time per training sample (ms)",
        title=f"{report.model} on {report.board.name}: where to cut "
        f"(bubble area = bytes per sample at {report.baud:,} baud)",
    )
    ax.title.set_fontsize(10)
    ax.grid(alpha=0.3)
    handles = [
        plt.scatter([], [], s=80, color="tab:orange", edgecolor="black", label="Pareto-optimal"),
        plt.scatter([], [], s=80, color="tab:blue", edgecolor="black", label="fits, dominated"),
        plt.scatter([], [], s=80, color="lightgrey", edgecolor="grey", label="does not fit"),
    ]
    ax.legend(handles=handles, loc="upper left", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
