"""`tinysplit plan`: where to cut a model for a board, from the export's own memory plan and the
measured instruction cost of every kernel.

    tinysplit plan mnist-cnn --board mps2_an386 [--baud 115200] [--plot plan.png] [--json]

For every layer boundary whose output is a flat vector (a cut the exporter accepts), the
planner reports what an export for the board would hold and cost:

- flash and peak RAM: `codegen.export.plan_client`, the exporter's own planning (equal to the
  plan `tinysplit export` writes: kept or recomputed activations chosen to fit the board's RAM,
  the data shard cut to fit its flash);
- MACs and instructions per training sample: host/costmodel/model.py's per-kernel cost model,
  fitted to exact counts on the emulated core, for the kernel calls the firmware makes;
- device time per sample: those instructions (plus framing the sample's frames and a share of
  the step's commit) x the core's cycles per instruction / the board's clock;
- bytes per sample each way on the wire, framed (COBS worst case, CRC, header, delimiters):
  SMASHED up, GRAD down, plus a share of the step's STEP_DONE up and TRAIN_STEP and COMMIT
  down; wire time at the baud (8N1: 10 bits per byte);
- whether the cut fits: RAM, flash, and one sample's cut in one SMASHED and one GRAD frame.

Pareto-optimal cuts (no other fitting cut is at least as good in device time, RAM and bytes
and better in one) are marked; the recommended cut is the fitting one with the least time per
training sample as the boards run it, kernels and wire overlapping (ties: less RAM).
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tinysplit.core.errors import BadInput, TinysplitError, UnsupportedLayer
from tinysplit.core.protocol.spec import MAX_PAYLOAD

if TYPE_CHECKING:
    from tinysplit.codegen.export import ClientPlan
    from tinysplit.codegen.memory_plan import MemoryPlan

RECOMMENDATION_RULE = (
    "the fitting cut with the least time per training sample as the board runs it (kernels and "
    "wire overlapping: overlap ms); ties: less RAM"
)


@dataclass(frozen=True)
class Board:
    """What the planner needs of boards/<name>/profile.json."""

    name: str
    core: str
    clock_hz: int
    ram_bytes: int | None
    flash_bytes: int | None
    uart_baud: int | None

    @classmethod
    def load(cls, name: str) -> Board:
        from tinysplit.core.boards import board_profile, boards
        from tinysplit.host.costmodel.model import CYCLES_PER_INSN, FITTED

        modelled = FITTED.keys() & CYCLES_PER_INSN.keys()
        usable = [b for b in boards() if board_profile(b).get("core") in modelled]
        try:
            profile = board_profile(name)
        except TinysplitError:
            raise BadInput(f"unknown board {name!r}: choose one of {', '.join(usable)}") from None
        core = str(profile.get("core"))
        if name not in usable:
            raise BadInput(
                f"board {name} ({core}) has no instruction cost model: choose one of "
                f"{', '.join(usable)}"
            )
        ram, flash = profile.get("ram_bytes"), profile.get("flash_bytes")
        baud = profile.get("uart_baud")
        return cls(
            name,
            core,
            int(profile["clock_hz"]),
            None if ram is None else int(ram),
            None if flash is None else int(flash),
            None if baud is None else int(baud),
        )


@dataclass(frozen=True)
class Wire:
    """Framed bytes per sample each way, for a cut size and batch (core/protocol/spec.py)."""

    up: float  # board -> host: SMASHED, and 1/batch of STEP_DONE
    down: float  # host -> board: GRAD, and 1/batch of TRAIN_STEP and COMMIT
    smashed_payload: float  # per sample: SMASHED payload share (what the board frames)
    grad_payload: float  # per sample: GRAD payload share (what the board decodes)
    fits_frame: bool  # one sample's cut fits a SMASHED and a GRAD frame

    frames_up: int = 1  # SMASHED (or SMASHED_PACKED) frames per step
    frames_down: int = 1  # GRAD (or GRAD_PACKED) frames per step

    @classmethod
    def of(
        cls,
        cut_size: int,
        batch: int,
        head_size: int = 0,
        *,
        sealed: bool = True,
        wire: int = 0,
        zero_share: tuple[float, float] = (0.0, 0.0),
    ) -> Wire:
        """sealed: a paired board's frames (the default export) carry a counter and a tag.
        wire: a coded format (core/protocol/wire.py bits); its samples are as large as a
        sample with zero_share (int8, after ACTS4's levels) of its activations at the zero point."""
        from tinysplit.core.protocol import spec
        from tinysplit.core.protocol import wire as codec

        seal = spec.SEAL_OVERHEAD if sealed else 0

        def framed(payload: float) -> int:
            # a 0x00 before the frame, COBS(header | payload | crc) at worst, the 0x00 after
            raw = spec.HEADER_SIZE + payload + seal + spec.CRC_SIZE
            return 1 + spec.cobs_max_encoded(math.ceil(raw)) + 1

        frames: dict[spec.MsgType, list[float]] = {
            m: [float(p) for p in ps]
            for m, ps in spec.training_step_payloads(batch, cut_size, head_size).items()
        }
        per_up, per_down = spec.smashed_per_frame(cut_size), spec.grad_per_frame(cut_size)
        smashed, grad = spec.MsgType.SMASHED, spec.MsgType.GRAD
        if wire:
            per_up = codec.smashed_per_frame(cut_size, wire)
            per_down = codec.grad_per_frame(cut_size, wire)
            zero = zero_share[1] if wire & codec.ACTS4 else zero_share[0]
            sent = cut_size * (1.0 - zero) if wire & codec.SPARSE else float(cut_size)
            frames[smashed], frames[grad] = codec.frame_payloads(
                [sent] * batch, cut_size, wire, labelled=not head_size
            )
        fits = per_up >= 1 and per_down >= 1
        up = sum(framed(p) for m in spec.TO_HOST for p in frames[m])
        down = sum(framed(p) for m in spec.TO_BOARD for p in frames[m])
        s_pay, g_pay = sum(frames[smashed]), sum(frames[grad])
        return cls(up / batch, down / batch, s_pay / batch, g_pay / batch, fits,
                   len(frames[smashed]), len(frames[grad]))  # fmt: skip


@dataclass(frozen=True)
class CutPlan:
    """One candidate cut: what an export at it holds and what a training sample costs."""

    cut: int  # layers on the client, as `tinysplit export --cut` counts them
    after: str  # the last client layer
    cut_size: int  # int8 values per sample at the cut
    flash: int
    ram: int
    n_train: int  # training samples of the shard that fits the board's flash
    macs: int  # multiply-accumulates per training sample, forward and backward
    insns: float  # forward + backward (what the firmware's markers bracket)
    insns_total: float  # + framing this sample's frames + its share of the step's commit
    device_s: float
    up_bytes: float
    down_bytes: float
    wire_s: float
    overlap_s: float  # a sample's share of a step whose kernels and wire overlap
    fits_ram: bool
    fits_flash: bool
    fits_frame: bool
    recomputed: tuple[str, ...]  # ops whose outputs the backward recomputes
    fits_wire: bool = True  # the --wire format can carry this cut (a ReLU's output)
    coded: tuple[str, ...] = ()  # ops whose outputs backward keeps as codes (argmax, mask)
    pareto: bool = False
    recommended: bool = False
    memory: MemoryPlan | None = field(default=None, compare=False, repr=False)  # the export's

    @property
    def fits(self) -> bool:
        return self.fits_ram and self.fits_flash and self.fits_frame and self.fits_wire

    @property
    def bytes_per_sample(self) -> float:
        return self.up_bytes + self.down_bytes

    @property
    def time_s(self) -> float:
        """Device and wire time of a training sample, one after the other (an upper bound:
        overlap_s is what the board's interrupt-driven UART achieves)."""
        return self.device_s + self.wire_s

    def to_json(self) -> dict[str, Any]:
        out = asdict(replace(self, memory=None))
        del out["memory"]
        return {**out, "fits": self.fits, "time_s": self.time_s}

    def why_not(self) -> str:
        parts = [
            what
            for ok, what in (
                (self.fits_ram, "RAM"),
                (self.fits_flash, "flash"),
                (self.fits_frame, "frame"),
                (self.fits_wire, "wire"),
            )
            if not ok
        ]
        return "no: " + ", ".join(parts) if parts else "yes"


@dataclass(frozen=True)
class Skipped:
    """A layer boundary that is not a usable cut, and why."""

    cut: int
    after: str
    reason: str


@dataclass(frozen=True)
class WireRow:
    """One wire format at the recommended cut: framed bytes, times, and the accuracy cost
    `tinysplit bench` measured (section 10; None where it has no figure)."""

    wire: str
    fits: bool  # the cut can carry it (a ReLU's output)
    up_bytes: float
    down_bytes: float
    wire_s: float
    overlap_s: float
    to_int8: float  # bytes per sample over int8's
    points: float | None = None  # accuracy vs int8, points (bench section 10)
    measured_to_int8: float | None = None  # bytes vs int8 as the bench's link counted them


@dataclass(frozen=True)
class PlanReport:
    model: str
    board: Board
    baud: int
    batch: int
    cuts: tuple[CutPlan, ...]
    skipped: tuple[Skipped, ...]
    #: cut -> {"dcor", "ssim"} from a `tinysplit audit` of the model (plan --audit FILE)
    privacy: dict[int, dict[str, float]] = field(default_factory=dict)
    labels: str = "host"  # "client": U-shaped (the head and the loss on the board)
    wire: str = "int8"  # --wire: the format every cut is priced in
    wire_rows: tuple[WireRow, ...] = ()  # every format at the recommended cut
    zero_share: float | None = None  # at the recommended cut, initial weights

    @property
    def recommended(self) -> CutPlan | None:
        return next((c for c in self.cuts if c.recommended), None)

    def to_json(self) -> dict[str, Any]:
        rec = self.recommended
        return {
            "model": self.model,
            "board": asdict(self.board),
            "baud": self.baud,
            "batch": self.batch,
            "labels": self.labels,
            "cycles_per_insn": _cpi(self.board.core),
            "cuts": [self._cut_json(c) for c in self.cuts],
            "skipped": [asdict(s) for s in self.skipped],
            "recommended": None if rec is None else rec.cut,
            "rule": RECOMMENDATION_RULE,
            "wire": self.wire,
            "wire_formats": [asdict(w) for w in self.wire_rows],
            "zero_share": self.zero_share,
        }

    def _cut_json(self, c: CutPlan) -> dict[str, Any]:
        out = c.to_json()
        if c.cut in self.privacy:
            out["privacy"] = self.privacy[c.cut]
        return out


def overlapped_step_s(
    *,
    forward_s: float,
    backward_s: float,
    commit_s: float,
    up_s: float,
    down_s: float,
    frames_up: int,
    frames_down: int,
) -> float:
    """Seconds of one training step when the board computes while its frames move (its UART
    works by interrupt both ways, boards/README.md): the forward pass streams SMASHED frames as
    they fill, so uplink and forward overlap but for one frame's worth of the shorter of the
    two; likewise the backward pass runs on each GRAD frame as it arrives; the commit (and its
    STEP_DONE) comes after both. All arguments are per step (device and wire seconds).
    """
    up = max(forward_s, up_s) + min(forward_s, up_s) / max(1, frames_up)
    down = max(backward_s, down_s) + min(backward_s, down_s) / max(1, frames_down)
    return up + down + commit_s


def _cpi(core: str) -> float:
    from tinysplit.host.costmodel.model import CYCLES_PER_INSN

    return CYCLES_PER_INSN[core]


def privacy_columns(audit_json: dict[str, Any], model: str) -> dict[int, dict[str, float]]:
    """cut -> dCor and the known-weights attacker's SSIM, from `tinysplit audit --json` of the
    same model (its noise-free rows)."""
    if not isinstance(audit_json, dict) or not isinstance(audit_json.get("cuts"), list):
        raise BadInput("--audit: not the JSON `tinysplit audit --json` prints")
    if Path(str(audit_json.get("model", ""))).stem != Path(model).stem:
        raise BadInput(
            f"--audit is an audit of {audit_json.get('model')}, not of {model}: audit this model"
        )
    out: dict[int, dict[str, float]] = {}
    for c in audit_json["cuts"]:
        if c.get("noise_scale", 0) == 0:
            out[int(c["cut"])] = {
                "dcor": float(c["dcor"]),
                "ssim": float(c["known_weights"]["ssim"]),
            }
    return out


def parse_baud(text: str | int | None, board: Board) -> int:
    """--baud: a positive whole number; default the board's UART baud (115200 if none)."""
    if text is None:
        return board.uart_baud or 115_200
    try:
        baud = int(str(text).replace("_", ""))
    except ValueError:
        baud = 0
    if baud <= 0:
        raise BadInput(f"--baud must be a positive whole number of bits per second, not {text!r}")
    return baud


def candidate_cuts(model: str | Path, seed: int = 0) -> tuple[list[tuple[int, str]], list[Skipped]]:
    """(cut, last layer name) of every distinct boundary whose client layers the firmware runs,
    and why the others are not candidates. A cut whose output is not flat is one (the exporter
    flattens it, and reshapes it back on the server); a boundary right after a Flatten or Reshape
    is the same client as the one before it, and a client without a Dense or conv layer would
    send the raw input."""
    from tinysplit.codegen.export import chain_layers, input_offset, quiet
    from tinysplit.codegen.models import load_model

    with quiet():
        layers = chain_layers(load_model(model, seed))
    ok, skipped = _candidates(layers)
    # Cuts count the model's own layers, as export's --cut does.
    offset = input_offset(layers)
    return [(c - offset, name) for c, name in ok], [
        replace(s, cut=s.cut - offset) for s in skipped if s.cut > offset
    ]


def _candidates(layers: Sequence[Any]) -> tuple[list[tuple[int, str]], list[Skipped]]:
    from tinysplit.codegen.client_ops import check_layers, reshape_layer, trainable_layer

    ok: list[tuple[int, str]] = []
    skipped: list[Skipped] = []
    for cut in range(1, len(layers)):
        last = layers[cut - 1]
        if not any(trainable_layer(x) for x in layers[:cut]):
            skipped.append(Skipped(cut, last.name, "no Dense or conv layer on the client: the "
                                   "board would send its raw input"))  # fmt: skip
            continue
        if reshape_layer(last) and ok and ok[-1][0] == _same_as(layers, cut):
            skipped.append(Skipped(cut, last.name, f"the same client as cut {ok[-1][0]} "
                                   "(a Flatten or Reshape adds no work on the board)"))  # fmt: skip
            continue
        try:
            check_layers(layers[:cut])
        except UnsupportedLayer as e:
            skipped.append(Skipped(cut, last.name, str(e).split(";")[0]))
            continue
        ok.append((cut, last.name))
    return ok, skipped


def _same_as(layers: Sequence[Any], cut: int) -> int:
    """The cut before the trailing Flatten/Reshape layers of layers[:cut]."""
    from tinysplit.codegen.client_ops import reshape_layer

    while cut > 1 and reshape_layer(layers[cut - 1]):
        cut -= 1
    return cut


def plan_cut(
    cp: ClientPlan, after: str, board: Board, baud: int, cut: int | None = None, wire_bits: int = 0
) -> CutPlan:
    """Costs of one cut from its client plan; cut: the boundary as asked for (the exporter's
    own count is one more when it put a Flatten at the cut). wire_bits: a coded --wire (a cut
    that is no ReLU's output cannot carry it: fits_wire False, priced as int8)."""
    from tinysplit.core.golden.ops import op_kind
    from tinysplit.host.costmodel.model import client_stats, predict_training

    head = cp.head
    coded = wire_bits if cp.relu_cut else 0
    wire = Wire.of(
        cp.cut_size,
        cp.max_batch,
        0 if head is None else head.in_features,
        wire=coded,
        zero_share=cp.zero_share,
    )
    cost = predict_training(
        cp.ops,
        cp.layout,
        board.core,
        smashed_share=wire.smashed_payload,
        grad_share=wire.grad_payload,
        stats=None if cp.inputs is None else client_stats(cp.ops, cp.inputs),
    )
    total = cost.per_sample_amortized(cp.max_batch)
    macs = cost.macs
    head_insns = 0.0
    if head is not None:  # U-shaped: the head's logits, weight and input gradient per sample
        from tinysplit.host.costmodel.model import kernel_insns, op_case

        kinds = ("fc_forward", "fc_backward_weights", "fc_backward_input")
        head_insns = sum(kernel_insns(op_case(head, k), board.core) for k in kinds)
        total += head_insns
        macs += 3 * head.in_features * head.out_features

    rate = board.clock_hz / _cpi(board.core)  # instructions per second
    batch = cp.max_batch
    step_s = overlapped_step_s(
        forward_s=batch * (cost.forward + cost.link / 2) / rate,
        backward_s=batch * (cost.backward + cost.link / 2 + head_insns) / rate,
        commit_s=cost.commit / rate,
        up_s=batch * wire.up * 10 / baud,
        down_s=batch * wire.down * 10 / baud,
        frames_up=wire.frames_up,
        frames_down=wire.frames_down,
    )
    return CutPlan(
        cut=cp.cut if cut is None else cut,
        after=after,
        cut_size=cp.cut_size,
        flash=cp.plan.flash,
        ram=cp.plan.ram_peak,
        n_train=cp.n_train,
        macs=macs,
        insns=cost.per_sample,
        insns_total=total,
        device_s=total * _cpi(board.core) / board.clock_hz,
        up_bytes=wire.up,
        down_bytes=wire.down,
        wire_s=(wire.up + wire.down) * 10 / baud,
        overlap_s=step_s / batch,
        fits_ram=board.ram_bytes is None or cp.plan.ram_peak <= board.ram_bytes,
        fits_flash=board.flash_bytes is None or cp.plan.flash <= board.flash_bytes,
        fits_frame=wire.fits_frame,
        fits_wire=coded == wire_bits,
        coded=tuple(
            f"op{i} {op_kind(op)}"
            for i, (op, c) in enumerate(zip(cp.ops, cp.layout.coded, strict=True))
            if c
        ),
        recomputed=tuple(
            f"op{i} {op_kind(op)}"
            for i, (op, r) in enumerate(zip(cp.ops, cp.layout.recompute, strict=True))
            if r
        ),
        memory=cp.plan,
    )


def mark(cuts: Sequence[CutPlan]) -> list[CutPlan]:
    """Marks the Pareto-optimal fitting cuts (device time, RAM, bytes per sample: no other
    fitting cut is as good in all three and better in one) and the recommended one."""
    fitting = [c for c in cuts if c.fits]

    def key(c: CutPlan) -> tuple[float, float, float]:
        return (c.device_s, float(c.ram), c.bytes_per_sample)

    def dominated(c: CutPlan) -> bool:
        return any(
            all(a <= b for a, b in zip(key(o), key(c), strict=True)) and key(o) != key(c)
            for o in fitting
        )

    best = min(fitting, key=lambda c: (c.overlap_s, c.ram), default=None)
    return [
        replace(
            c,
            pareto=c.fits and not dominated(c),
            recommended=best is not None and c.cut == best.cut,
        )
        for c in cuts
    ]


def plan_model(
    model: str | Path,
    board_name: str,
    baud: str | int | None = None,
    data: Path | None = None,
    seed: int = 0,
    say: Callable[[str], None] | None = None,
    labels: str = "host",
    ram_budget: int | None = None,
    wire: str = "int8",
) -> PlanReport:
    """Plans every candidate cut of `model` for `board_name`. labels "client": U-shaped (the
    model's last Dense and the loss on the board too: its RAM, compute and extra hop). wire:
    the format every cut is priced in; the report also prices every format at the
    recommended cut (wire_rows)."""
    from tinysplit.codegen.export import plan_client
    from tinysplit.core.protocol import wire as codec

    try:
        bits = codec.wire_bits(wire)
    except ValueError as e:
        raise BadInput(f"--wire: {e}") from None
    board = Board.load(board_name)
    rate = parse_baud(baud, board)
    candidates, skipped = candidate_cuts(model, seed)
    if not candidates:
        why = f": {skipped[0].reason}" if skipped else ""
        raise UnsupportedLayer(f"model {model} has no layer boundary the client can run{why}")
    cuts: list[CutPlan] = []
    plans: dict[int, tuple[ClientPlan, str]] = {}
    refused: list[BadInput] = []
    batch = 0
    for cut, after in candidates:
        if say is not None:
            say(f"planning the cut after {after} (cut {cut}) ...")
        try:
            cp = plan_client(model, cut, data=data, seed=seed, board=board_name, labels=labels,
                             ram_budget=ram_budget, wire=bits)  # fmt: skip
        except BadInput as e:  # e.g. this client leaves no flash for a data shard
            skipped.append(Skipped(cut, after, str(e)))
            refused.append(e)
            continue
        batch = cp.max_batch
        plans[cut] = (cp, after)
        cuts.append(plan_cut(cp, after, board, rate, cut, bits))
    if not cuts:  # the same reason for every cut (no data set, ...): the exporter's own words
        raise refused[0]
    name = str(model) if not isinstance(model, Path) else model.name
    marked = mark(cuts)
    rec = next((c for c in marked if c.recommended), None)
    rows: tuple[WireRow, ...] = ()
    zero = None
    if rec is not None:
        cp, after = plans[rec.cut]
        rows = wire_rows(cp, after, board, rate, rec.cut, name)
        zero = cp.zero_share[0] if cp.relu_cut else None
    return PlanReport(
        name, board, rate, batch, tuple(marked), tuple(sorted(skipped, key=lambda s: s.cut)),
        labels=labels, wire=wire, wire_rows=rows, zero_share=zero,
    )  # fmt: skip


def wire_rows(
    cp: ClientPlan, after: str, board: Board, baud: int, cut: int, model: str
) -> tuple[WireRow, ...]:
    """Every wire format at one cut, with the accuracy cost `tinysplit bench` measured."""
    from tinysplit.core.protocol import wire as codec

    measured = bench_wire_figures(model, cp.cut_size)
    base = plan_cut(cp, after, board, baud, cut, 0)
    out = []
    for name, bits in codec.NAMES.items():
        c = plan_cut(cp, after, board, baud, cut, bits)
        m = measured.get(name, {})
        ratio = c.bytes_per_sample / base.bytes_per_sample
        row = WireRow(name, c.fits_wire, c.up_bytes, c.down_bytes, c.wire_s, c.overlap_s, ratio,
                      m.get("points"), m.get("to_int8"))  # fmt: skip
        out.append(row)
    return tuple(out)


def bench_wire_figures(model: str, cut_size: int) -> dict[str, dict[str, float]]:
    """Section 10 of the checkout's BENCHMARKS.json for a bundled model at the cut the bench
    ran (its default): per wire format, its accuracy vs int8 (points) and bytes vs int8; {}
    without one (an installed package, another cut, a model the bench does not run)."""
    import json

    from tinysplit.core.paths import is_checkout, source_root

    try:
        if not is_checkout():
            return {}
        report = json.loads((source_root() / "BENCHMARKS.json").read_text())
        rows = report.get("wire", {}).get("workloads", [])
        return {
            str(r["wire"]): {"points": float(r["points_vs_int8"]), "to_int8": float(r["to_int8"])}
            for r in rows
            if r.get("workload") == model
            and r.get("status") == "ok"
            and r.get("cut_bytes") == cut_size
        }
    except (OSError, ValueError, KeyError, TypeError, RuntimeError):
        return {}


# ---- output ---------------------------------------------------------------------------------


def _si(n: float) -> str:
    """1234567 -> 1.23M."""
    for unit, div in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= div:
            return f"{n / div:.3g}{unit}"
    return f"{n:.3g}"


def _ms(s: float) -> str:
    return f"{1000 * s:,.1f}" if s < 100 else f"{1000 * s:,.0f}"


def format_table(r: PlanReport) -> str:
    """The plan as a table, its legend, the skipped boundaries and the recommendation."""
    b = r.board
    head: tuple[str, ...] = (
        "cut", "after", "cut B", "flash", "RAM", "MACs", "insns", "device ms", "up B", "down B",
        "wire ms", "total ms", "overlap ms", "fits", "pareto",
    )  # fmt: skip
    if r.privacy:
        head = (*head, "dCor", "SSIM")
    rows: list[tuple[str, ...]] = [head]
    for c in r.cuts:
        row: tuple[str, ...] = (
            f"{c.cut}{'*' if c.recommended else ''}", c.after, f"{c.cut_size:,}", f"{c.flash:,}",
            f"{c.ram:,}", _si(c.macs), _si(c.insns_total), _ms(c.device_s),
            f"{c.up_bytes:,.0f}", f"{c.down_bytes:,.0f}", _ms(c.wire_s), _ms(c.time_s),
            _ms(c.overlap_s), c.why_not(), "yes" if c.pareto else "",
        )  # fmt: skip
        if r.privacy:
            p = r.privacy.get(c.cut)
            row = (*row, f"{p['dcor']:.3f}" if p else "-", f"{p['ssim']:.3f}" if p else "-")
        rows.append(row)
    left = {1, 13, 14}
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    lines = [
        "  ".join(
            cell.ljust(w) if i in left else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in rows
    ]
    ram = f"{b.ram_bytes:,}" if b.ram_bytes is not None else "unlimited"
    flash = f"{b.flash_bytes:,}" if b.flash_bytes is not None else "unlimited"
    title = (
        f"{r.model} on {b.name} ({b.core}, {b.clock_hz / 1e6:g} MHz, RAM {ram} B, flash "
        f"{flash} B), {r.baud:,} baud 8N1, batch {r.batch}"
        + (", labels on the board (U-shaped: its head and loss included)"
           if r.labels == "client" else "")
    )  # fmt: skip
    legend = [
        "per training sample: MACs forward + backward; insns = instructions (cost model fitted "
        f"to exact counts on the emulated {b.core}), with framing and 1/{r.batch} of the step's "
        f"commit; device ms at {_cpi(b.core)} cycles per instruction; up/down B = framed bytes "
        "each way (SMASHED + GRAD, with shares of TRAIN_STEP, COMMIT, STEP_DONE); wire ms at "
        f"{r.baud:,} baud; total = device + wire, one after the other; overlap = the board "
        "computing while its frames move (UART by interrupt: forward while SMASHED leaves, "
        "backward as GRAD arrives; per phase one frame's worth of the shorter is not hidden; "
        "the commit after both); flash includes the data shard fitted to the board; fits: no when "
        "the plan exceeds the board's RAM or flash, or one sample's cut output exceeds a frame "
        f"({MAX_PAYLOAD:,} B payload)"
        + (
            "; dCor, SSIM: from the audit (distance correlation raw <-> smashed; SSIM of what a "
            "server that knows the client weights reconstructs): lower leaks less"
            if r.privacy
            else ""
        ),
    ]
    for c in r.cuts:
        extra = [f"{c.n_train:,} training samples on the board"]
        if c.recomputed:
            extra.append(f"backward recomputes {', '.join(c.recomputed)}")
        if c.coded:
            extra.append(f"backward keeps {', '.join(c.coded)} as codes (pool argmax, ReLU mask)")
        lines_extra = "; ".join(extra)
        legend.append(f"cut {c.cut}: {lines_extra}")
    for s in r.skipped:
        legend.append(f"cut {s.cut} (after {s.after}): not a candidate: {s.reason}")
    rec = r.recommended
    if rec is None:
        legend.append("no cut fits this board: a board with more RAM or flash, or a smaller model")
    else:
        legend.append(
            f"recommended: cut {rec.cut} (after {rec.after}): {_ms(rec.overlap_s)} ms per sample "
            f"({_ms(rec.device_s)} device and {_ms(rec.wire_s)} wire overlapping; "
            f"{_ms(rec.time_s)} in turn), RAM {rec.ram:,} B; rule: {RECOMMENDATION_RULE}"
        )
    wrapped = [textwrap.fill(x, width=100, subsequent_indent="  ") for x in legend]
    return "\n".join([title, *lines, *wrapped, *_wire_table(r)])


def _wire_table(r: PlanReport) -> list[str]:
    """Every wire format at the recommended cut: bytes, times, and the bench's accuracy cost."""
    rec = r.recommended
    if rec is None or not r.wire_rows:
        return []
    head = ("wire", "up B", "down B", "wire ms", "overlap ms", "x int8", "bench x int8",
            "accuracy vs int8")  # fmt: skip
    rows: list[tuple[str, ...]] = [head]
    for w in r.wire_rows:
        if not w.fits:
            rows.append((w.wire, "-", "-", "-", "-", "-", "-", "no: the cut is not a ReLU's"))
            continue
        rows.append((
            f"{w.wire}{' <' if w.wire == r.wire else ''}", f"{w.up_bytes:,.0f}",
            f"{w.down_bytes:,.0f}", _ms(w.wire_s), _ms(w.overlap_s), f"{w.to_int8:.2f}",
            "-" if w.measured_to_int8 is None else f"{w.measured_to_int8:.2f}",
            "-" if w.points is None else f"{w.points:+.2f} points",
        ))  # fmt: skip
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    table = [
        "  ".join(
            cell.ljust(wd) if i in (0, 7) else cell.rjust(wd)
            for i, (cell, wd) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in rows
    ]
    zeros = (
        f"{r.zero_share:.0%} of the cut's activations are zero at the initial weights (64 "
        "training samples): the sparse formats' bytes assume that share; training moves it"
        if r.zero_share is not None
        else "this cut is no ReLU's output: only int8 carries it"
    )
    note = (
        f"wire formats at cut {rec.cut} (tinysplit export --wire FORMAT; < the one priced "
        f"above): framed bytes per training sample each way and times at {r.baud:,} baud; "
        f"{zeros}. bench x int8 and accuracy: measured by `tinysplit bench` (BENCHMARKS.md "
        "section 10: the same training in each format, the mean over its seeds); '-' where it "
        "has no figure"
    )
    return ["", *table, textwrap.fill(note, width=100, subsequent_indent="  ")]
