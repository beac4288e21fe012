"""`tinysplit bench`, section 1: kernel efficiency on the emulated Cortex-M4.

The counts come from host/insn_count.py (exact, QEMU TCG plugin, firmware/bench/kernel_bench.c):
instructions per MAC of each forward and backward kernel call the bench makes, with the ratio
to each KERNEL-ANCHORS.md figure where the shape has one. Each row also names the reference
workload layers it is the shape of (matched by kernel family and MAC count, so the bench may
name its shapes as it likes), and the section lists the workload layers the bench does not
count yet.

Cycles are not measured: the estimate below is a stated cost model on top of the exact counts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tinysplit.host import bench_md as md

BOARD = "mps2_an386"  # Cortex-M4F: the core the anchors were counted on

# The cost model (an estimate, not a measurement): a Cortex-M4 issues one instruction per cycle
# (3-stage pipeline, single-cycle MUL/MLA/SMLAD/SXTB16); a load costs one cycle more unless it is
# pipelined with the next, a taken branch 1-3 more (pipeline refill); flash at zero wait states
# (or hits in a flash accelerator). Scalar int8 loops spend roughly one load per four
# instructions and one taken branch per ten: 1.25 cycles per instruction on average.
CYCLES_PER_INSTRUCTION = 1.25
COST_MODEL = (
    "estimated cycles = instructions x 1.25. A Cortex-M4 issues one instruction per cycle "
    "(MUL, MLA, SMLAD, SXTB16 are single-cycle); a load costs 1 cycle more unless pipelined "
    "with the next one, a taken branch 1-3 more; flash at zero wait states. Scalar int8 loops "
    "spend about one load per 4 instructions and one taken branch per 10, hence 1.25 on average. "
    "An estimate for comparison, not a measurement: only the instruction counts are exact."
)
# SMLAD: two 16x16 multiply-accumulates per cycle, the M4's peak for int8 (after SXTB16).
PEAK_MACS_PER_CYCLE = 2.0

_FAMILIES = {"fc": "fc", "conv": "conv", "conv1d": "conv", "conv2d": "conv", "depthwise": "dw"}


def _split_kernel(kernel: str) -> tuple[str, str]:
    """'conv2d_backward_weights' -> ('conv', 'backward_weights'); pools keep their own name."""
    head, _, rest = kernel.partition("_")
    if "pool" in kernel:
        for pass_ in ("forward", "backward"):
            if kernel.endswith(pass_):
                return kernel[: -len(pass_) - 1], pass_
    return _FAMILIES.get(head, head), rest


def _dims(v: Any) -> list[int]:
    return [int(x) for x in v] if isinstance(v, list) else [1, 1, int(v)]


def workload_layers(name: str, manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """The client layers with MACs of an export's manifest: workload, index, family, MACs and
    a readable shape; `first` marks the layer whose input gradient is never needed."""
    out: list[dict[str, Any]] = []
    for layer in manifest.get("layers", []):
        kind = layer.get("kind")
        if kind == "fc":
            k, c = int(layer["in"]), int(layer["out"])
            out.append({"family": "fc", "macs": k * c, "shape": f"fc {k}->{c}"})
        elif kind in ("conv", "depthwise"):
            (h, w, c), (oh, ow, oc) = _dims(layer["in"]), _dims(layer["out"])
            kh, kw = (int(x) for x in layer["kernel"])
            sh, sw = (int(x) for x in layer.get("stride", [1, 1]))
            macs = oh * ow * oc * kh * kw * (1 if kind == "depthwise" else c)
            if h == 1 and kh == 1:  # a Conv1D, run as a 1 x W convolution
                shape = f"conv1d {w}x{c}->{ow}x{oc}, k{kw}" + (f"/{sw}" if sw > 1 else "")
            else:
                shape = f"{kind} {h}x{w}x{c}->{oh}x{ow}x{oc}, {kh}x{kw}" + (
                    f"/{sh}" if sh > 1 else ""
                )
            shape += f" {layer.get('padding', '')}".rstrip()
            fam = "conv" if kind == "conv" else "dw"
            out.append({"family": fam, "macs": macs, "shape": shape})
        elif kind in ("max_pool", "avg_pool"):
            (h, w, c), (oh, ow, oc) = _dims(layer["in"]), _dims(layer["out"])
            # pools have no MACs: matched by the elements they read or write
            out.append(
                {
                    "family": kind,
                    "macs": None,
                    "elements": {h * w * c, oh * ow * oc},
                    "shape": f"{kind} {h}x{w}x{c}->{oh}x{ow}x{oc}",
                }
            )
    for i, layer in enumerate(out):
        layer.update(workload=name, layer=i + 1, first=i == 0)
    return out


def _uses(row: dict[str, Any], layers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    family, _ = _split_kernel(str(row["kernel"]))

    def same_size(layer: dict[str, Any]) -> bool:
        if layer["macs"] is None:  # a pool: by the elements it reads or writes
            return row["macs"] in layer["elements"]
        return bool(layer["macs"] == row["macs"])

    return [layer for layer in layers if layer["family"] == family and same_size(layer)]


def _expected(layer: dict[str, Any]) -> list[str]:
    """The passes training needs of a layer with MACs: no input gradient for the first."""
    if layer["macs"] is None:
        return ["forward", "backward"]
    return ["forward", "backward_weights"] + ([] if layer["first"] else ["backward_input"])


def measure(build_dir: Path, layers: list[dict[str, Any]]) -> dict[str, Any]:
    """Counts every kernel of the bench on BOARD; pairs rows with the workload layers."""
    from tinysplit.host.insn_count import count_kernels

    counted = count_kernels(BOARD, build_dir)
    rows = []
    for r in counted:
        _, pass_ = _split_kernel(str(r["kernel"]))
        per_mac = r["per_mac"] if r["macs"] else None
        cycles = per_mac * CYCLES_PER_INSTRUCTION if per_mac is not None else None
        rows.append(
            {
                "kernel": r["kernel"],
                "shape": r["shape"],
                "pass": pass_,
                "macs": r["macs"],
                "instructions": r["instructions"],
                "instructions_per_mac": per_mac,
                "anchor_per_mac": r["anchor_per_mac"],
                "ratio_to_anchor": r["ratio"],
                "est_cycles_per_mac": cycles,
                # x slower than the SMLAD peak (1 = at the peak)
                "ratio_to_peak": md.ratio(cycles, 1.0 / PEAK_MACS_PER_CYCLE),
                "used_by": [f"{u['workload']} L{u['layer']}" for u in _uses(r, layers)],
            }
        )
    missing = []
    for layer in layers:
        have = {_split_kernel(str(r["kernel"]))[1] for r in counted if layer in _uses(r, layers)}
        for pass_ in _expected(layer):
            if pass_ not in have:
                missing.append(
                    {
                        "workload": layer["workload"],
                        "layer": layer["layer"],
                        "shape": layer["shape"],
                        "pass": pass_,
                    }
                )
    return {
        "status": "ok",
        "board": BOARD,
        "counting": "exact: QEMU TCG plugin, instructions between two markers around each call",
        "cost_model": {
            "cycles_per_instruction": CYCLES_PER_INSTRUCTION,
            "peak_macs_per_cycle": PEAK_MACS_PER_CYCLE,
            "text": COST_MODEL,
        },
        "rows": rows,
        "missing": missing,
    }


def markdown(section: dict[str, Any]) -> str:
    out = ["## 1. Kernel efficiency on the emulated Cortex-M4", ""]
    if section.get("status") != "ok":
        return "\n".join([*out, f"Not run: {section.get('reason')}", ""])
    out += [
        f"Instructions executed per multiply-accumulate by one call of each int8 kernel on QEMU "
        f"`{section['board']}` (Cortex-M4F), counted exactly (QEMU TCG plugin; "
        "`python -m tinysplit.host.insn_count`), next to the figures of "
        "KERNEL-ANCHORS.md (x: ours / theirs; below 1 is fewer instructions). "
        "*Used by*: the reference workload layers (L = client layer) of that shape.",
        "",
    ]
    rows = []
    for r in section["rows"]:
        a, q = r["anchor_per_mac"] or {}, r["ratio_to_anchor"] or {}
        rows.append(
            [
                f"`{r['kernel']}`",
                r["shape"],
                ", ".join(r["used_by"]) or "-",
                md.num(r["macs"]),
                md.num(r["instructions"]),
                md.num(r["instructions_per_mac"]),
                md.num(a.get("straightforward_c")),
                md.num(q.get("straightforward_c")),
                md.num(a.get("cmsis_nn_dsp")),
                md.num(q.get("cmsis_nn_dsp")),
                md.num(r["est_cycles_per_mac"]),
                md.num(r["ratio_to_peak"], 1),
            ]
        )
    out.append(
        md.table(
            [
                "kernel",
                "shape",
                "used by",
                "MACs",
                "instructions",
                "instr/MAC",
                "anchor: plain C",
                "x plain C",
                "anchor: CMSIS-NN DSP",
                "x CMSIS-NN",
                "est. cycles/MAC",
                "x SMLAD peak",
            ],
            rows,
            right=range(3, 12),
        )
    )
    cm = section["cost_model"]
    out += [
        "",
        f"Cycles: {cm['text']} *x SMLAD peak*: estimated cycles/MAC over the "
        f"{1 / cm['peak_macs_per_cycle']:.1f} cycles/MAC of the M4's peak "
        f"({cm['peak_macs_per_cycle']:.0f} MACs/cycle with SMLAD).",
    ]
    if section["missing"]:
        miss = "; ".join(
            f"{m['workload']} L{m['layer']} ({m['shape']}): {m['pass']}" for m in section["missing"]
        )
        out += ["", f"Not counted yet (no case in firmware/bench/kernel_bench.c): {miss}."]
    return "\n".join([*out, ""])
