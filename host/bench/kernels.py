"""`tinysplit bench`, section 1: kernel efficiency on the emulated Cortex-M4.

Two exact counts (QEMU TCG plugin, firmware/bench/kernel_bench.c, instructions between two
markers around each kernel call):

- the reference workloads' own shapes: every forward and backward kernel call their client
  layers make in training, built from each export's golden ops (insn_model.op_case) and run as
  one case table (insn_model.measure_cases);
- the six KERNEL-ANCHORS.md shapes (insn_count.count_kernels), with the ratio to each anchor.

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
    counts = measure_cases(BOARD, [c["case"] for c in calls], build_dir)
    rows = []
    for call, instructions in zip(calls, counts, strict=True):
        row = {k: v for k, v in call.items() if k not in ("case", "family")}
        row["instructions"] = instructions
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


def measure(build_dir: Path, workloads: Sequence[tuple[str, Path]]) -> dict[str, Any]:
    """Counts the KERNEL-ANCHORS.md shapes, then the workloads' own kernel calls, on BOARD."""
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
    return section


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
                md.num(a.get("straightforward_c")),
                md.num(q.get("straightforward_c")),
                md.num(a.get("cmsis_nn_dsp")),
                md.num(q.get("cmsis_nn_dsp")),
                md.num(r["est_cycles_per_mac"]),
                md.num(r["ratio_to_peak"], 1),
            ]
        )
    head = ["kernel", "shape", *(["layer"] if used_by else []), "MACs", "instructions"]
    head += ["instr/MAC", "anchor: plain C", "x plain C", "anchor: CMSIS-NN DSP", "x CMSIS-NN"]
    head += ["est. cycles/MAC", "x SMLAD peak"]
    first = 3 if used_by else 2
    return md.table(head, cells, right=range(first, len(head)))


def markdown(section: dict[str, Any]) -> str:
    out = ["## 1. Kernel efficiency on the emulated Cortex-M4", ""]
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
        "a kernel; the first trainable layer needs no input gradient):",
        "",
    ]
    if section.get("workload_rows_not_run"):
        out.append(f"Not run: {section['workload_rows_not_run']}")
    else:
        out.append(_table(section["workload_rows"], used_by=True))
    out += [
        "",
        "The six shapes of KERNEL-ANCHORS.md (`python -m tinysplit.host.costmodel.count`):",
        "",
        _table(section["anchor_rows"], used_by=False),
        "",
        f"Cycles: {cm['text']} *x SMLAD peak*: estimated cycles/MAC over the "
        f"{1 / cm['peak_macs_per_cycle']:.1f} cycles/MAC of the M4's peak "
        f"({cm['peak_macs_per_cycle']:.0f} MACs/cycle with SMLAD).",
        "",
    ]
    return "\n".join(out)
