"""`tinysplit bench`, section 1: kernel efficiency on the emulated cores.

Exact counts (QEMU TCG plugin, firmware/bench/kernel_bench.c, instructions between two markers
around each kernel call), of the optimized kernels (firmware/kernels/*_fast.c, what the boards
run) beside the reference ones:

- the reference workloads' own shapes on the M4: every forward and backward kernel call their
  client layers make in training, built from each export's golden ops (insn_model.op_case) and
  run as one case table (insn_model.measure_cases), with each kernel kind's build;
- the six KERNEL-ANCHORS.md shapes (insn_count.count_kernels) on every emulated core, with the
  ratio to each anchor (CMSIS-NN's DSP path on the M4, its M0+ figures on the M0+);
- one training step of each workload on the M4, every sample's forward and backward counted
  between the firmware's markers, built with the reference kernels and with the optimized ones.

MACs count every window tap, padded ones included, as KERNEL-ANCHORS.md does. Cycles are not
measured: the estimate is a stated cost model on top of the exact counts.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tinysplit.host.bench import markdown as md
from tinysplit.host.costmodel.model import CYCLES_PER_INSN

BOARD = "mps2_an386"  # Cortex-M4F: the core the anchors were counted on
#: Every emulated core, and the board it is counted on.
CORE_BOARDS = (
    ("Cortex-M0+", "mps2_an385_m0plus"),
    ("Cortex-M3", "mps2_an385"),
    ("Cortex-M4F", "mps2_an386"),
    ("Cortex-M7", "mps2_an500"),
    ("Cortex-M33", "mps2_an505"),
    ("Cortex-M55", "mps3_an547"),
)

# The cost model (an estimate, not a measurement), from the Cortex-M4 TRM's instruction timings
# applied to the inner loop every reference kernel spends its time in (arm-none-eabi-objdump of
# ts_fc_forward and ts_conv2d_forward, gcc -O2): LDRSB, LDRSB, SUB, CMP, MLA, BNE. Two loads back
# to back take 3 cycles (N + 1), SUB, CMP and MLA one each, a taken branch 1 + P with a pipeline
# refill P of 2 (1-3): 9 cycles for 6 instructions. Every instruction is charged that average,
# with flash at zero wait states (or hits in a flash accelerator such as ST's ART).
CYCLES_PER_INSTRUCTION = CYCLES_PER_INSN["cortex-m4f"]  # the planner's figure, one model
COST_MODEL = (
    f"estimated cycles = instructions x {CYCLES_PER_INSTRUCTION}, the Cortex-M4 TRM's timings "
    "applied to the inner "
    "loop the reference kernels spend their time in (gcc -O2: LDRSB, LDRSB, SUB, CMP, MLA, BNE): "
    "two back-to-back loads 3 cycles, SUB, CMP, MLA 1 each, a taken branch 1 + 2 (pipeline "
    "refill) = 9 cycles for 6 instructions; flash at zero wait states. An estimate for "
    "comparison, not a measurement: only the instruction counts are exact."
)
# SMLAD: two 16x16 multiply-accumulates per cycle, the M4's peak for int8 (after SXTB16).
PEAK_MACS_PER_CYCLE = 2.0

# Kernel names of the two benches -> (family, pass). The anchor suite names conv kernels
# conv2d_*, the case table conv_* / dw_*.
_FAMILIES = {"fc": "fc", "conv": "conv", "conv2d": "conv", "dw": "dw", "depthwise": "dw"}


def split_kernel(kernel: str) -> tuple[str, str]:
    """'conv2d_backward_weights' -> ('conv', 'backward_weights'); 'max_pool_forward' ->
    ('max_pool', 'forward')."""
    if "_pool_" in kernel:
        family, _, pass_ = kernel.rpartition("_")
        return family, pass_
    head, _, rest = kernel.partition("_")
    return _FAMILIES.get(head, head), rest


def _efficiency(instructions: float, macs: int | None) -> dict[str, float | None]:
    per_mac = instructions / macs if macs else None
    cycles = per_mac * CYCLES_PER_INSTRUCTION if per_mac is not None else None
    return {
        "instructions_per_mac": per_mac,
        "est_cycles_per_mac": cycles,
        # x slower than the SMLAD peak (1 = at the peak)
        "ratio_to_peak": md.ratio(cycles, 1.0 / PEAK_MACS_PER_CYCLE),
    }


# ---- the reference workloads' kernel calls --------------------------------------------------


def _layer(op: Any) -> dict[str, Any] | None:
    """Family, padded MACs and a readable shape of a golden op with a kernel (else None)."""
    from tinysplit.core.golden import ConvLayer, FCLayer
    from tinysplit.core.golden.conv_layer import PADDING_SAME
    from tinysplit.core.golden.ops import PoolOp

    if isinstance(op, FCLayer):
        k, c = op.in_features, op.out_features
        return {"family": "fc", "macs": k * c, "shape": f"{k}->{c}"}
    if isinstance(op, ConvLayer):
        (h, w, c), (oh, ow, oc) = op.in_dims, op.out_dims
        pad = "same" if op.padding == PADDING_SAME else "valid"
        macs = oh * ow * oc * op.kh * op.kw * (1 if op.depthwise else c)
        if h == 1 and op.kh == 1:  # a Conv1D: a 1 x W convolution
            stride = f"/{op.stride_w}" if op.stride_w > 1 else ""
            shape = f"{w}x{c}->{ow}x{oc},k{op.kw}{stride},{pad}"
        else:
            stride = f"/{op.stride_h}" if op.stride_h > 1 else ""
            shape = f"{h}x{w}x{c}->{oh}x{ow}x{oc},{op.kh}x{op.kw}{stride},{pad}"
        return {"family": "dw" if op.depthwise else "conv", "macs": macs, "shape": shape}
    if isinstance(op, PoolOp):
        p = op.params
        (h, w, c), (oh, ow, _) = p.in_dims, p.out_dims
        shape = f"{h}x{w}x{c}->{oh}x{ow}x{c},{p.kh}x{p.kw}"
        return {"family": f"{op.kind}_pool", "macs": None, "shape": shape}
    return None


def workload_calls(workload: str, export_dir: Path) -> list[dict[str, Any]]:
    """Every kernel call one training sample makes through the export's client layers: the
    forward, the filter gradient, and the input gradient of every layer after the first
    trainable one (pools: their backward)."""
    from tinysplit.codegen.export import load_client_state
    from tinysplit.host.costmodel.model import op_case

    calls: list[dict[str, Any]] = []
    trainable_seen = False
    number = 0
    for op in load_client_state(export_dir).ops:
        layer = _layer(op)
        if layer is None:
            continue
        number += 1
        family = layer["family"]
        if family.endswith("_pool"):
            passes = ["forward"] + (["backward"] if trainable_seen else [])
        else:
            passes = ["forward", "backward_weights"] + (
                ["backward_input"] if trainable_seen else []
            )
            trainable_seen = True
        for pass_ in passes:
            calls.append(
                {
                    **layer,
                    "kernel": f"{family}_{pass_}",
                    "pass": pass_,
                    "used_by": [f"{workload} L{number}"],
                    "case": op_case(op, f"{family}_{pass_}"),
                }
            )
    return calls


def _workload_rows(
    build_dir: Path, workloads: Sequence[tuple[str, Path]], anchors: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    from tinysplit.host.costmodel.model import measure_cases

    calls = [c for w, path in workloads for c in workload_calls(w, path)]
    counts = measure_cases(BOARD, [c["case"] for c in calls], build_dir / "fast")
    reference = measure_cases(
        BOARD, [c["case"] for c in calls], build_dir / "reference", kernels="reference"
    )
    rows = []
    for call, instructions, ref in zip(calls, counts, reference, strict=True):
        row = {k: v for k, v in call.items() if k not in ("case", "family")}
        row["instructions"] = instructions
        row["reference_instructions"] = ref
        row["x_reference"] = instructions / ref if ref else None
        row.update(_efficiency(instructions, call["macs"]))
        same = _same_shape(call, anchors)
        row["anchor_per_mac"] = same["anchor_per_mac"] if same else None
        row["ratio_to_anchor"] = (
            {k: row["instructions_per_mac"] / v for k, v in same["anchor_per_mac"].items()}
            if same and row["instructions_per_mac"] is not None
            else None
        )
        rows.append(row)
    return rows


def _same_shape(call: dict[str, Any], anchors: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The anchor-suite row of the same kernel and size as a workload call, if it has an
    anchor figure (digits-mlp's FC 64->32 is an anchor shape)."""
    for r in anchors:
        if (
            r["anchor_per_mac"]
            and split_kernel(r["kernel"]) == (call["family"], call["pass"])
            and r["macs"] == call["macs"]
        ):
            return r
    return None


# ---- the section ----------------------------------------------------------------------------


def measure(
    build_dir: Path, workloads: Sequence[tuple[str, Path]], quick: bool = False
) -> dict[str, Any]:
    """Counts the KERNEL-ANCHORS.md shapes, then the workloads' own kernel calls, on BOARD;
    unless quick, the anchor shapes on every emulated core and one training step of each
    workload with each kind of kernel too."""
    from tinysplit.host.costmodel.count import count_kernels

    anchors = []
    for r in count_kernels(BOARD, build_dir / "anchors"):
        _, pass_ = split_kernel(str(r["kernel"]))
        anchors.append(
            {
                "kernel": r["kernel"],
                "shape": r["shape"],
                "pass": pass_,
                "macs": r["macs"],
                "instructions": r["instructions"],
                **_efficiency(r["instructions"], r["macs"]),
                "anchor_per_mac": r["anchor_per_mac"],
                "ratio_to_anchor": r["ratio"],
            }
        )
    section: dict[str, Any] = {
        "status": "ok",
        "board": BOARD,
        "counting": "exact: QEMU TCG plugin, instructions between two markers around each call",
        "cost_model": {
            "cycles_per_instruction": CYCLES_PER_INSTRUCTION,
            "peak_macs_per_cycle": PEAK_MACS_PER_CYCLE,
            "text": COST_MODEL,
        },
        "anchor_rows": anchors,
    }
    try:
        section["workload_rows"] = _workload_rows(build_dir / "workloads", workloads, anchors)
    except Exception as e:  # the anchors stand on their own
        section["workload_rows"] = []
        section["workload_rows_not_run"] = md.first_line(e)
    if not quick:
        section["cores"] = _cores(build_dir / "cores")
        section["steps"] = _steps(build_dir / "steps", workloads)
        section["goals"] = _goals(anchors, section["cores"], section["steps"])
    return section


def _cores(build_dir: Path) -> list[dict[str, Any]]:
    """The anchor shapes on every emulated core: instr/MAC of each kernel, reference and
    optimized."""
    from tinysplit.host.costmodel.count import ANCHORS_M0PLUS, count_kernels

    cores: list[dict[str, Any]] = []
    for core, board in CORE_BOARDS:
        try:
            rows = count_kernels(board, build_dir / board)
        except Exception as e:
            cores.append({"core": core, "board": board, "not_run": md.first_line(e)})
            continue
        per = {(r["kernel"], r["shape"]): r["per_mac"] for r in rows}
        out = []
        for (kernel, shape), fast in per.items():
            if not kernel.endswith("_fast"):
                continue
            ref = per.get((kernel[:-5], shape))
            anchor = None
            if board == "mps2_an385_m0plus":
                anchor = ANCHORS_M0PLUS.get((kernel, shape))
            elif board == BOARD:
                a = next((r["anchor_per_mac"] for r in rows if r["kernel"] == kernel
                          and r["shape"] == shape), None)  # fmt: skip
                anchor = a["cmsis_nn_dsp"] if a else None
            out.append({"kernel": kernel[:-5], "shape": shape, "fast": fast, "reference": ref,
                        "anchor": anchor})  # fmt: skip
        cores.append({"core": core, "board": board, "rows": out})
    return cores


def _steps(build_dir: Path, workloads: Sequence[tuple[str, Path]]) -> list[dict[str, Any]]:
    """One training step of each workload on the M4, reference and optimized kernels: mean
    instructions of a sample's forward and backward between the firmware's markers."""
    from tinysplit.host.costmodel.model import measure_training

    out = []
    for w, path in workloads:
        row: dict[str, Any] = {"workload": w}
        try:
            for kind in ("reference", "fast"):
                got = measure_training(path, BOARD, 1, build_dir / f"{w}-{kind}", kernels=kind)
                n = len(got.forward)
                row[kind] = {"forward": sum(got.forward) / n, "backward": sum(got.backward) / n,
                             "per_sample": got.per_sample}  # fmt: skip
            row["x_fewer"] = row["reference"]["per_sample"] / row["fast"]["per_sample"]
        except Exception as e:
            row["not_run"] = md.first_line(e)
        out.append(row)
    return out


def _geomean(xs: Sequence[float]) -> float | None:
    import math

    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else None


def _goals(
    anchors: list[dict[str, Any]], cores: list[dict[str, Any]], steps: list[dict[str, Any]]
) -> dict[str, Any]:
    """Issue 15's goals, measured: the M4 forward against CMSIS-NN's DSP path (geometric mean
    and worst shape), the first layer's instr/MAC, each backward kernel against our own
    forward on the same shape, the M0+ against CMSIS-NN's M0+ figures, the whole step."""
    fwd = [r for r in anchors if r["kernel"].endswith("_fast") and r["pass"].startswith("forward")
           and r["ratio_to_anchor"]]  # fmt: skip
    ratios = [r["ratio_to_anchor"]["cmsis_nn_dsp"] for r in fwd]
    first = next((r["instructions_per_mac"] for r in fwd if r["shape"].startswith("28x28x1")),
                 None)  # fmt: skip
    per = {(r["kernel"], r["shape"]): r["instructions_per_mac"] for r in anchors}
    backward = []
    for (kernel, shape), v in per.items():
        if kernel.endswith("_fast") and "backward" in kernel:
            family = kernel.split("_")[0]
            forward = per.get((f"{family}_forward_fast", shape))
            backward.append({"kernel": kernel[:-5], "shape": shape, "per_mac": v,
                             "forward_per_mac": forward,
                             "x_forward": v / forward if forward else None})  # fmt: skip
    m0 = next((c for c in cores if c["board"] == "mps2_an385_m0plus" and "rows" in c), None)
    m0_ratios = [r["fast"] / r["anchor"] for r in (m0 or {}).get("rows", []) if r["anchor"]]
    return {
        "m4_forward_geomean_x_cmsis": _geomean(ratios),
        "m4_forward_worst_x_cmsis": max(ratios) if ratios else None,
        "first_layer_per_mac": first,
        "backward": backward,
        "m0plus_forward_geomean_x_cmsis": _geomean(m0_ratios),
        "steps_x_fewer": {s["workload"]: s.get("x_fewer") for s in steps},
    }


def _table(rows: list[dict[str, Any]], *, used_by: bool) -> str:
    cells = []
    for r in rows:
        a, q = r["anchor_per_mac"] or {}, r["ratio_to_anchor"] or {}
        cells.append(
            [
                f"`{r['kernel']}`",
                r["shape"],
                *([", ".join(r["used_by"])] if used_by else []),
                md.num(r["macs"]),
                md.num(r["instructions"]),
                md.num(r["instructions_per_mac"]),
                *(
                    [md.num(r.get("reference_instructions")), md.num(r.get("x_reference"))]
                    if used_by
                    else []
                ),
                md.num(a.get("straightforward_c")),
                md.num(q.get("straightforward_c")),
                md.num(a.get("cmsis_nn_dsp")),
                md.num(q.get("cmsis_nn_dsp")),
                md.num(r["est_cycles_per_mac"]),
                md.num(r["ratio_to_peak"], 1),
            ]
        )
    head = ["kernel", "shape", *(["layer"] if used_by else []), "MACs", "instructions"]
    head += ["instr/MAC", *(["reference kernel: instructions", "x reference"] if used_by else [])]
    head += ["anchor: plain C", "x plain C", "anchor: CMSIS-NN DSP", "x CMSIS-NN"]
    head += ["est. cycles/MAC", "x SMLAD peak"]
    first = 3 if used_by else 2
    return md.table(head, cells, right=range(first, len(head)))


def markdown(section: dict[str, Any]) -> str:
    out = ["## 1. Kernel efficiency on the emulated cores", ""]
    if section.get("status") != "ok":
        return "\n".join([*out, f"Not run: {section.get('reason')}", ""])
    cm = section["cost_model"]
    out += [
        f"Instructions executed by one call of each int8 kernel on QEMU `{section['board']}` "
        "(Cortex-M4F), counted exactly (QEMU TCG plugin around each call), per "
        "multiply-accumulate (every window tap, padded ones included), next to the figures of "
        "KERNEL-ANCHORS.md where the shape has one (x: ours / theirs; below 1 is fewer "
        "instructions). No library has int8 backward kernels: those rows have no anchor.",
        "",
        "The reference workloads' own kernel calls, per training sample (L = client layer with "
        "a kernel; the first trainable layer needs no input gradient), with the optimized "
        "kernels the boards run and, beside them, the reference kernel of the same call (a "
        "dense gradient: the optimized backward kernels skip zeros, which training has many "
        "of):",
        "",
    ]
    if section.get("workload_rows_not_run"):
        out.append(f"Not run: {section['workload_rows_not_run']}")
    else:
        out.append(_table(section["workload_rows"], used_by=True))
    out += [
        "",
        "The six shapes of KERNEL-ANCHORS.md (`python -m tinysplit.host.costmodel.count`), "
        "the reference kernel and the optimized one (`_fast`) of each:",
        "",
        _table(section["anchor_rows"], used_by=False),
        "",
        f"Cycles: {cm['text']} *x SMLAD peak*: estimated cycles/MAC over the "
        f"{1 / cm['peak_macs_per_cycle']:.1f} cycles/MAC of the M4's peak "
        f"({cm['peak_macs_per_cycle']:.0f} MACs/cycle with SMLAD).",
        "",
    ]
    out += _cores_markdown(section.get("cores", []))
    out += _steps_markdown(section.get("steps", []))
    out += _goals_markdown(section.get("goals"))
    return "\n".join(out)


def _cores_markdown(cores: list[dict[str, Any]]) -> list[str]:
    if not cores:
        return []
    ok = [c for c in cores if "rows" in c]
    out = [
        "Every emulated core (`python -m tinysplit.host.costmodel.count BOARD`): instructions "
        "per MAC of the optimized kernel, and in brackets its ratio to our reference kernel on "
        "that core. The DSP path runs on the cores with the DSP extension (M4, M7, M33, M55: "
        "SXTB16, SMLAD), the portable one on the M0+ and M3. *CMSIS-NN*: its DSP path's figure "
        "on the M4, its M0+ figure on the M0+ (KERNEL-ANCHORS.md); x: ours over it.",
        "",
    ]
    if ok:
        shapes = [(r["kernel"], r["shape"]) for r in ok[0]["rows"]]
        head = ["kernel", "shape", *[f"{c['core']}" for c in ok]]
        head += ["CMSIS-NN M4 DSP", "x (M4)", "CMSIS-NN M0+", "x (M0+)"]
        cells = []
        for kernel, shape in shapes:
            row: list[str] = [f"`{kernel}`", shape]
            by = {c["board"]: {(r["kernel"], r["shape"]): r for r in c["rows"]} for c in ok}
            for c in ok:
                r = by[c["board"]].get((kernel, shape))
                row.append(
                    f"{md.num(r['fast'])} ({md.num(r['fast'] / r['reference'])})"
                    if r and r["reference"]
                    else "-"
                )
            m4 = by.get(BOARD, {}).get((kernel, shape))
            m0 = by.get("mps2_an385_m0plus", {}).get((kernel, shape))
            for r in (m4, m0):
                a = r["anchor"] if r else None
                row += [md.num(a), md.num(r["fast"] / a) if r and a else "-"]
            cells.append(row)
        out += [md.table(head, cells, right=range(2, len(head))), ""]
    for c in cores:
        if "not_run" in c:
            out += [f"{c['core']} ({c['board']}): not run: {c['not_run']}", ""]
    return out


def _steps_markdown(steps: list[dict[str, Any]]) -> list[str]:
    if not steps:
        return []
    cells = []
    for s in steps:
        if "not_run" in s:
            cells.append([s["workload"], f"not run: {s['not_run']}", "", "", "", "", "", ""])
            continue
        r, f = s["reference"], s["fast"]
        cells.append([s["workload"], md.num(r["forward"]), md.num(r["backward"]),
                      md.num(r["per_sample"]), md.num(f["forward"]), md.num(f["backward"]),
                      md.num(f["per_sample"]), md.num(s["x_fewer"])])  # fmt: skip
    head = ["workload", "reference: forward", "backward", "per sample", "optimized: forward",
            "backward", "per sample", "x fewer"]  # fmt: skip
    return [
        "One training step of each workload on the emulated M4 (its batch, the server on the "
        "host; every sample's forward and backward counted between the firmware's markers), "
        "the firmware built with `make KERNELS=reference` and with the optimized kernels "
        "(`python -m tinysplit.host.costmodel.model --check EXPORT --kernels reference|fast`): "
        "mean instructions per sample.",
        "",
        md.table(head, cells, right=range(1, len(head))),
        "",
    ]


def _goals_markdown(goals: dict[str, Any] | None) -> list[str]:
    if not goals:
        return []
    out = ["Issue 15's goals, as measured above:", ""]
    out.append(
        f"- M4 forward, geometric mean over the six anchor shapes: "
        f"{md.num(goals['m4_forward_geomean_x_cmsis'])}x CMSIS-NN's DSP path (goal <= 1.0); "
        f"worst shape {md.num(goals['m4_forward_worst_x_cmsis'])}x (goal < 1.2)."
    )
    out.append(
        f"- The 28x28x1 first layer: {md.num(goals['first_layer_per_mac'])} instructions per "
        "MAC (goal <= 6; CMSIS-NN 14.0)."
    )
    for b in goals["backward"]:
        out.append(
            f"- `{b['kernel']}` {b['shape']}: {md.num(b['per_mac'])} instr/MAC, "
            f"{md.num(b['x_forward'])}x our forward on the shape (goal <= 1.5)."
        )
    out.append(
        f"- M0+ forward, geometric mean: {md.num(goals['m0plus_forward_geomean_x_cmsis'])}x "
        "CMSIS-NN's M0+ figures (goal <= 1.0)."
    )
    steps = ", ".join(f"{w} {md.num(x)}x" for w, x in goals["steps_x_fewer"].items() if x)
    out += [f"- Whole training step, fewer instructions than before: {steps} (goal >= 2.5x).", ""]
    return out
