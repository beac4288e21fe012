"""Static memory plan of the client firmware: every buffer, where it lives and why.

Nothing on the board is allocated at run time, so the plan is exact for everything codegen
emits (model_data.c) and for the fixed protocol buffers; only the code size is an estimate until
a build's .map file replaces it. Sizes are for a 32-bit Cortex-M target, and every array
codegen emits is `_Alignas(16)`, so array sizes here are rounded up to 16 bytes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

from tinysplit.core.protocol.spec import (
    MAX_ENCODED,
    MAX_PAYLOAD,
    MAX_RAW,
    PAIR_KEY_SIZE,
    STEP_DONE_FIXED_SIZE,
    smashed_per_frame,
)

Section = Literal["ram", "flash"]

ALIGN = 16

#: sizeof(ts_fc_layer_t) on a 32-bit target (tests/codegen checks it with arm-none-eabi-gcc).
FC_LAYER_STRUCT_BYTES = 76
#: sizeof(ts_conv_layer_t), sizeof(ts_pool_params_t) (firmware/include/ts_kernels.h) and
#: sizeof(ts_model_op_t) (model_data.h) on a 32-bit target; checked the same way.
CONV_LAYER_STRUCT_BYTES = 92
POOL_PARAMS_STRUCT_BYTES = 20
MODEL_OP_STRUCT_BYTES = 28

#: Extra code of the conv, depthwise and pool kernels at -O2, reference and optimized (an
#: estimate, as the rest: motion-cnn1d's image has 43.7 KB of .text in all).
CONV_CODE_ESTIMATE_BYTES = 22 * 1024
#: Flash kept free when the data shard is sized to the board (code estimate error, vectors).
FLASH_HEADROOM_BYTES = 16 * 1024

#: sizeof(ts_frame_decoder_t) (firmware/protocol/ts_frame.h, TS_FRAME_DECODER_SIZE): it decodes
#: COBS as bytes arrive, so it holds one raw frame (4-aligned) and 44 bytes of state/counters.
#: The one place this size lives; tests/codegen checks it against the C struct.
FRAME_DECODER_BYTES = 44 + -(-MAX_RAW // 4) * 4

#: Kernels (reference and optimized FC) + protocol + board support at -O2. An estimate: a
#: build's .map file has the truth.
CODE_ESTIMATE_BYTES = 20 * 1024

#: Bytes of the model hash in flash.
MODEL_HASH_BYTES = 8


def client_state_bytes(max_batch: int, n_ops: int) -> int:
    """sizeof(ts_client_t) (firmware/client/client_internal.h) on a 32-bit target: 30 bytes of
    scalars, u16 index[max_batch], u32 grad_crc, f32 batch_min/max[n_ops], u32 step_cycles, the
    cached STEP_DONE and 4 flags, 4 u32 of SYNC/PUT state, 13 u32 counters. tests/e2e checks it
    against the linked symbol."""

    def a4(n: int) -> int:
        return -(-n // 4) * 4

    return a4(a4(30 + 2 * max_batch) + 4 + 8 * n_ops + 4 + STEP_DONE_FIXED_SIZE + 4) + 16 + 52


#: boards/cortex_m/cm_rx_ring.c: the UART's RX ring, filled by interrupt on every Cortex-M board
#: (one whole encoded frame and a free slot), and its head and tail indices.
RX_RING_BYTES = -(-(MAX_ENCODED + 2) // 4) * 4 + 8

#: firmware/client/pairing.c's state: the session (ts_secure_t, 52 B), the challenge and the
#: accepted OPEN (24 B), with padding.
PAIRING_STATE_BYTES = 84


def client_rows(cut_size: int, max_batch: int, n_ops: int, wire: int = 0) -> list[PlanRow]:
    """The client's own RAM besides the model and the frame buffers: its state and the buffers
    sized by the cut (firmware/client/msg_train_step.c, msg_grad.c); a SPARSE --wire adds the
    minibatch's bitmaps of the activations sent (msg_train_step.c, ts_sent_mask)."""
    from tinysplit.core.protocol.wire import SPARSE

    per = smashed_per_frame(cut_size)
    mask = (
        [PlanRow("sent_mask", "ram", align(max_batch * ((cut_size + 7) // 8)),
                 f"--wire sparse: which activations each sample sent [{max_batch}]"
                 f"[{(cut_size + 7) // 8}] (GRAD_PACKED's positions)")]
        if wire & SPARSE
        else []
    )  # fmt: skip
    return [
        *mask,
        PlanRow("client_state", "ram", client_state_bytes(max_batch, n_ops),
                f"ts_client_t: minibatch indices [{max_batch}], ranges [{n_ops}] x 2, counters"),
        PlanRow("smashed_frame", "ram", per * cut_size + per,
                f"SMASHED assembly: {per} samples x {cut_size} B + labels"),
        PlanRow("grad_row", "ram", cut_size, f"one sample's cut gradient [{cut_size}]"),
        PlanRow("pairing", "ram", PAIRING_STATE_BYTES,
                "the sealed session: key, counters, replay window, challenge (pairing.c)"),
        PlanRow("uart_rx_ring", "ram", RX_RING_BYTES,
                "bytes received by interrupt: one whole frame waits while a kernel runs"),
    ]  # fmt: skip


def align(n: int) -> int:
    """n rounded up to the array alignment codegen uses."""
    return -(-n // ALIGN) * ALIGN


@dataclass(frozen=True)
class PlanRow:
    """One buffer (or group of buffers) of the firmware image."""

    name: str
    section: Section
    bytes: int
    what: str
    layer: int | None = None  # client layer index, for per-layer rows
    initialized: bool = False  # RAM with initial values: also costs flash (.data)


@dataclass(frozen=True)
class LayerShape:
    """What the plan needs to know of a client layer."""

    kind: str
    in_features: int
    out_features: int
    label: str  # "conv 28x28x1->26x26x8"


@dataclass(frozen=True)
class MemoryPlan:
    rows: tuple[PlanRow, ...]
    layers: tuple[LayerShape, ...]
    max_batch: int
    stack_bytes: int
    ram_limit: int | None = None  # the board's (profile.json), shown by format_table
    flash_limit: int | None = None
    notes: tuple[str, ...] = ()  # printed under the table: data shard, kept vs recomputed
    act_modes: tuple[str, ...] = ()  # per op: kept | recomputed | transient | input | none
    scratch_needs: tuple[int, ...] = ()  # per op: bytes of ts_scratch its backward needs

    @property
    def ram_peak(self) -> int:
        """All RAM rows: nothing is freed or reused, so this is the peak."""
        return sum(r.bytes for r in self.rows if r.section == "ram")

    @property
    def flash(self) -> int:
        return sum(r.bytes for r in self.rows if r.section == "flash")

    def per_layer(self) -> list[dict[str, Any]]:
        """RAM of each client layer by kind of buffer (rows whose `layer` is set)."""
        out: list[dict[str, Any]] = []
        for i, shape in enumerate(self.layers):
            parts = {r.name.split(".", 1)[1]: r.bytes for r in self.rows if r.layer == i}
            entry: dict[str, Any] = {
                "layer": i,
                "kind": shape.kind,
                "in": shape.in_features,
                "out": shape.out_features,
                **parts,
                "ram": sum(parts.values()),
                "label": shape.label,
                "act_mode": self.act_modes[i],
                "scratch_need": self.scratch_needs[i],
            }
            out.append(entry)
        return out

    def to_json(self) -> dict[str, Any]:
        """The plan as JSON-ready data (plan.json)."""
        return {
            "max_batch": self.max_batch,
            "stack_bytes": self.stack_bytes,
            "ram_peak": self.ram_peak,
            "flash": self.flash,
            "ram_limit": self.ram_limit,
            "flash_limit": self.flash_limit,
            "notes": list(self.notes),
            "rows": [asdict(r) for r in self.rows],
            "per_layer": self.per_layer(),
        }

    def format_table(self, ram_limit: int | None = None, flash_limit: int | None = None) -> str:
        """A printable table: name | bytes | what, RAM then flash, totals, the board's limits,
        then the RAM of each client layer."""
        ram_limit = self.ram_limit if ram_limit is None else ram_limit
        flash_limit = self.flash_limit if flash_limit is None else flash_limit
        per_layer = self.per_layer()
        labels = [f"op{p['layer']} {p['label']}" for p in per_layer]
        width = max(len(x) for x in [*(r.name for r in self.rows), *labels, "flash total"]) + 2
        lines = [f"{'name':<{width}}{'bytes':>9}  what"]
        for section, title, total, limit in (
            ("ram", "RAM", self.ram_peak, ram_limit),
            ("flash", "flash", self.flash, flash_limit),
        ):
            lines.append(title)
            lines += [
                f"  {r.name:<{width - 2}}{r.bytes:>9,}  {r.what}"
                for r in self.rows
                if r.section == section
            ]
            note = "peak: nothing is allocated at run time" if section == "ram" else ""
            if limit is not None:
                verdict = "fits" if total <= limit else "DOES NOT FIT"
                note += f"{'; ' if note else ''}board {limit:,}: {100 * total / limit:.1f}%, "
                note += verdict
            lines.append(f"  {title + ' total':<{width - 2}}{total:>9,}  {note}".rstrip())
        lines.append(
            "per client op (RAM): tensors + master + grad + activation (kept for the "
            "minibatch, or one sample: recomputed in backward / transient); scratch need"
        )
        for label, p in zip(labels, per_layer, strict=True):
            parts = " + ".join(f"{p.get(k, 0):,}" for k in ("tensors", "master", "grad", "act"))
            lines.append(
                f"  {label:<{width - 2}}{p['ram']:>9,}  {parts} ({p['act_mode']}); "
                f"scratch {p['scratch_need']:,}"
            )
        lines += self.notes
        return "\n".join(lines)


# ---- the plan: ts_model_ops and its buffers (docs/model-format.md) ---------------------------

#: Where an op's output lives (ts_model_op_t.out_buf).
BUF_INPUT, BUF_KEPT, BUF_ACT = 0, 1, 2


@dataclass(frozen=True)
class OpShape:
    """What the plan needs to know of a client op."""

    kind: str  # fc | conv | depthwise | max_pool | avg_pool | reshape
    in_dims: tuple[int, int, int]
    out_dims: tuple[int, int, int]
    n_weights: int = 0  # C * K of a trainable op
    channels: int = 0  # C of a trainable op
    act: bool = False  # a fused activation whose backward masks with the kept output
    overlapping: bool = False  # a pool whose windows overlap (its backward needs scratch)
    relu6: bool = False  # the activation is ReLU6 (its mask has a top too)
    window: int = 0  # a pool's kh * kw

    @property
    def trainable(self) -> bool:
        return self.kind in ("fc", "conv", "depthwise")

    @property
    def in_bytes(self) -> int:
        return self.in_dims[0] * self.in_dims[1] * self.in_dims[2]

    @property
    def out_bytes(self) -> int:
        return self.out_dims[0] * self.out_dims[1] * self.out_dims[2]

    @property
    def label(self) -> str:
        def d(x: tuple[int, int, int]) -> str:
            return "x".join(str(v) for v in x)

        return f"{self.kind} {d(self.in_dims)}->{d(self.out_dims)}"


def backward_scratch_bytes(s: OpShape) -> int:
    """Scratch of the op's input-gradient kernel: the *_get_buffer_size() formulas of
    firmware/include/ts_conv.h (and the FC kernel's int32 accumulator)."""
    h, w, c = s.in_dims
    if s.kind == "conv":
        return 4 * (h * w * c + s.out_dims[2])  # ts_conv2d_backward_input_get_buffer_size
    if s.kind == "depthwise":
        return 4 * (h * w * c + c)  # ts_depthwise_conv2d_backward_input_get_buffer_size
    if s.kind in ("max_pool", "avg_pool"):
        return 4 * h * w * c if s.overlapping else 0  # ts_{max,avg}_pool2d_backward_...
    if s.kind == "fc":
        return 4 * max(s.in_bytes, s.out_bytes)
    return 0


def filter_scratch_bytes(s: OpShape) -> int:
    """Scratch of the optimized filter-gradient kernel of a conv op
    (ts_conv2d_backward_weights_fast_get_buffer_size): int32 sums [C][K] and an int16 window
    of four output pixels [K][4]."""
    if s.kind != "conv" or not s.channels:
        return 0
    k = s.n_weights // s.channels
    return 4 * s.n_weights + 8 * k


def needed_outputs(shapes: Sequence[OpShape]) -> list[bool]:
    """Which op outputs the backward reads: a trainable op's own output (activation mask), and
    the input of a trainable op (filter gradient) or of a max pool (argmax), seen through
    reshapes. Reshape outputs are never stored (they alias their input)."""
    need = [False] * len(shapes)
    for i, s in enumerate(shapes):
        if s.kind == "reshape":
            continue
        if s.trainable and s.act:
            need[i] = True
        j = i + 1
        while j < len(shapes) and shapes[j].kind == "reshape":
            j += 1
        if j < len(shapes) and (shapes[j].trainable or shapes[j].kind == "max_pool"):
            need[i] = True
    return need


#: How backward gets a coded output back (firmware/client/train.c, ts_model_op_t.rebuild).
CODE_MASK = 1  # its activation mask, 1 bit per value: the output's only reader is the mask
CODE_ARGMAX = 2  # per value of the max pool after it: the window's argmax (3 bits) and mask


def _next_op(shapes: Sequence[OpShape], i: int) -> int | None:
    j = i + 1
    while j < len(shapes) and shapes[j].kind == "reshape":
        j += 1
    return j if j < len(shapes) else None


def code_kind(shapes: Sequence[OpShape], i: int) -> int:
    """How op i's output can be kept in fewer bits for backward (0: it cannot). A trainable
    op's output read only by its own ReLU mask (the next op, through reshapes, is none, or one
    whose backward does not read its input): CODE_MASK. Read also by a max pool with windows
    of at most 8 values that do not overlap: CODE_ARGMAX. A ReLU6, whose mask has a top, and an
    output that a trainable op reads whole are not coded."""
    s = shapes[i]
    if not s.trainable or s.relu6:
        return 0
    j = _next_op(shapes, i)
    nxt = shapes[j] if j is not None else None
    if nxt is None or (not nxt.trainable and nxt.kind != "max_pool"):
        return CODE_MASK if s.act else 0
    if nxt.kind == "max_pool" and not nxt.overlapping and 1 <= nxt.window <= 8:
        return CODE_ARGMAX
    return 0


def code_bytes(shapes: Sequence[OpShape], i: int) -> int:
    """Bytes per sample of op i's coded output (code_kind)."""
    kind = code_kind(shapes, i)
    if kind == CODE_MASK:
        return (shapes[i].out_bytes + 7) // 8
    if kind == CODE_ARGMAX:
        j = _next_op(shapes, i)
        assert j is not None
        return (shapes[j].out_bytes + 1) // 2
    return 0


@dataclass(frozen=True)
class OpLayout:
    """Where every op's output lives and what each backward needs (ts_model_op_t fields)."""

    out_buf: tuple[int, ...]  # BUF_INPUT (alias of the flash sample), BUF_KEPT, BUF_ACT
    out_offset: tuple[int, ...]  # bytes into ts_kept_acts ([MAX_BATCH][out]) or ts_act_buf
    recompute: tuple[bool, ...]  # needed by backward but not kept: recomputed per sample
    input_grad: tuple[bool, ...]  # backward produces the gradient at the op's input
    scratch_bytes: tuple[int, ...]  # this op's backward scratch (0: none or not run)
    kept_bytes: int  # ts_kept_acts
    act_bytes: int  # ts_act_buf (one sample)
    scratch_words: int  # ts_scratch (int32), >= 1
    grad_bytes: int  # each half of ts_grad_buf
    modes: tuple[str, ...]  # per op: kept | recomputed | coded | transient | alias
    coded: tuple[int, ...] = ()  # code_kind of an output kept as codes (ts_code_buf), else 0
    code_bytes: int = 0  # ts_code_buf: [MAX_BATCH][code bytes] per coded op, in op order

    @classmethod
    def make(
        cls,
        shapes: Sequence[OpShape],
        keep: Sequence[bool],
        max_batch: int,
        coded: Sequence[bool] | None = None,
    ) -> OpLayout:
        need = needed_outputs(shapes)
        coded = list(coded) if coded is not None else [False] * len(shapes)
        first_trainable = next((i for i, s in enumerate(shapes) if s.trainable), len(shapes))
        out_buf: list[int] = []
        offset: list[int] = []
        modes: list[str] = []
        kept = act = 0
        for i, s in enumerate(shapes):
            if s.kind == "reshape":
                out_buf.append(out_buf[-1] if i else BUF_INPUT)
                offset.append(offset[-1] if i else 0)
                modes.append("alias")
            elif keep[i]:
                out_buf.append(BUF_KEPT)
                offset.append(kept)
                kept += max_batch * s.out_bytes
                modes.append("kept")
            else:
                out_buf.append(BUF_ACT)
                offset.append(act)
                act += s.out_bytes
                modes.append("coded" if coded[i] else "recomputed" if need[i] else "transient")
        input_grad = [i > first_trainable and s.kind != "reshape" for i, s in enumerate(shapes)]
        scratch = [
            backward_scratch_bytes(s) if g else 0 for s, g in zip(shapes, input_grad, strict=True)
        ]
        # ts_fc_forward also accumulates into ts_scratch: int32 [out_features]; the optimized
        # filter-gradient kernel of a conv op keeps its sums there.
        forward = max([4 * s.out_bytes for s in shapes if s.kind == "fc"] + [0])
        filters = max([filter_scratch_bytes(s) for s in shapes] + [0])
        words = -(-max(*scratch, forward, filters) // 4)
        grad = max(
            [s.out_bytes for i, s in enumerate(shapes) if i >= first_trainable]
            + [s.in_bytes for s, g in zip(shapes, input_grad, strict=True) if g]
            + [1]
        )
        return cls(
            tuple(out_buf), tuple(offset),
            tuple(need[i] and not keep[i] and not coded[i] and shapes[i].kind != "reshape"
                  for i in range(len(shapes))),
            tuple(input_grad), tuple(scratch), kept, act, max(1, words), grad,
            tuple(modes), tuple(code_kind(shapes, i) if c else 0 for i, c in enumerate(coded)),
            sum(max_batch * code_bytes(shapes, i) for i, c in enumerate(coded) if c),
        )  # fmt: skip


def plan_ops(
    shapes: Sequence[OpShape],
    layout: OpLayout,
    *,
    input_size: int,
    n_train: int,
    n_test: int,
    max_batch: int,
    stack_bytes: int,
    ram_limit: int | None = None,
    flash_limit: int | None = None,
    notes: Sequence[str] = (),
    head: tuple[int, int] | None = None,
    wire: int = 0,
) -> MemoryPlan:
    """The plan of an export: exactly the arrays emit_c writes for it, plus the firmware's
    fixed protocol buffers and stack. head: (inputs, classes) of a U-shaped export's head."""
    rows: list[PlanRow] = []
    for i, s in enumerate(shapes):
        if s.trainable:
            c, n = s.channels, s.n_weights
            rows += [
                PlanRow(f"op{i}.tensors", "ram", align(n) + 4 * align(4 * c),
                        f"int8 filter [{n}], int32 bias, float scales, Q31 multipliers, shifts",
                        i, initialized=True),
                PlanRow(f"op{i}.master", "ram", align(4 * n) + align(4 * c),
                        f"float32 master filter [{n}] + bias", i, initialized=True),
                PlanRow(f"op{i}.grad", "ram", align(4 * n) + align(4 * c),
                        "float32 gradient sums of a minibatch (.bss)", i),
            ]  # fmt: skip
        mode = layout.modes[i]
        if mode == "kept":
            rows.append(PlanRow(f"op{i}.act", "ram", max_batch * s.out_bytes,
                                f"int8 output kept for backward [{max_batch}][{s.out_bytes}] "
                                "(in ts_kept_acts)", i))  # fmt: skip
        elif mode in ("recomputed", "transient", "coded"):
            why = {
                "recomputed": "recomputed per sample in backward",
                "coded": "rebuilt from its codes in backward",
            }.get(mode, "forward only")
            rows.append(PlanRow(f"op{i}.act", "ram", s.out_bytes,
                                f"int8 output of one sample [{s.out_bytes}] (in ts_act_buf; "
                                f"{why})", i))  # fmt: skip
        if mode == "coded":
            n = code_bytes(shapes, i)
            what = (
                "1 bit per value"
                if layout.coded[i] == CODE_MASK
                else ("argmax and mask, 4 bits per pooled value")
            )
            rows.append(PlanRow(f"op{i}.codes", "ram", max_batch * n,
                                f"its codes for backward [{max_batch}][{n}] ({what}; in "
                                "ts_code_buf)", i))  # fmt: skip
    for name, n in (
        ("kept_acts", layout.kept_bytes),
        ("act_buf", layout.act_bytes),
        ("code_buf", layout.code_bytes),
    ):
        if align(n) != n:
            rows.append(PlanRow(f"{name}.align", "ram", align(n) - n, f"padding of ts_{name}"))
    n_fc = sum(s.kind == "fc" for s in shapes)
    n_conv = sum(s.kind in ("conv", "depthwise") for s in shapes)
    n_pool = sum(s.kind in ("max_pool", "avg_pool") for s in shapes)
    structs = (align(FC_LAYER_STRUCT_BYTES * n_fc) if n_fc else 0) + (
        align(CONV_LAYER_STRUCT_BYTES * n_conv) if n_conv else 0
    )
    rows += [
        PlanRow("layer_structs", "ram", structs,
                f"{n_fc} x ts_fc_layer_t + {n_conv} x ts_conv_layer_t (quantization moves)",
                initialized=True),
        PlanRow("scratch", "ram",
                align(4 * layout.scratch_words) + align(2 * layout.grad_bytes),
                f"int32 scratch [{layout.scratch_words}] (max over ops) + int8 gradient "
                f"ping-pong [2][{layout.grad_bytes}]"),
        PlanRow("frame_decoder", "ram", FRAME_DECODER_BYTES,
                f"RX frame decoder: one raw frame ({MAX_RAW} bytes) + state, counters"),
        PlanRow("frame_tx", "ram", MAX_ENCODED + 1,
                "TX: a 0x00, then one COBS-encoded frame (sent by interrupt from here)"),
        PlanRow("payload", "ram", MAX_PAYLOAD, "payload assembly buffer"),
        *client_rows(shapes[-1].out_bytes, max_batch, len(shapes), wire),
        PlanRow("stack", "ram", stack_bytes, "main stack (--stack-bytes)"),
    ]  # fmt: skip
    if head is not None:
        rows += head_rows(*head)
    init = sum(r.bytes for r in rows if r.initialized)
    rows += [
        PlanRow("data.train", "flash", align(n_train * input_size) + align(n_train),
                f"training shard: int8 [{n_train}][{input_size}] + u8 labels"),
        PlanRow("data.test", "flash", align(n_test * input_size) + align(n_test),
                f"test shard: int8 [{n_test}][{input_size}] + u8 labels"),
        PlanRow("model_hash", "flash", MODEL_HASH_BYTES, "model hash (HELLO)"),
        PlanRow("pair_key", "flash", PAIR_KEY_SIZE,
                "pairing key, sealed link (none with --insecure: 32 B less)"),
        PlanRow("model_ops", "flash", align(MODEL_OP_STRUCT_BYTES * len(shapes)),
                f"{len(shapes)} x ts_model_op_t (the op table, const)"),
    ]  # fmt: skip
    if n_pool:
        rows.append(PlanRow("pool_params", "flash", align(POOL_PARAMS_STRUCT_BYTES * n_pool),
                            f"{n_pool} x ts_pool_params_t (const)"))  # fmt: skip
    rows += [
        PlanRow(".data", "flash", init, "initial values of the RAM tensors, master copies"),
        PlanRow("code", "flash", CODE_ESTIMATE_BYTES + CONV_CODE_ESTIMATE_BYTES,
                "ESTIMATE: kernels (FC + conv), protocol, board"),
    ]  # fmt: skip
    layers = tuple(LayerShape(s.kind, s.in_bytes, s.out_bytes, s.label) for s in shapes)
    return MemoryPlan(tuple(rows), layers, max_batch, stack_bytes, ram_limit, flash_limit,
                      tuple(notes), layout.modes, layout.scratch_bytes)  # fmt: skip


#: The head's own state in firmware/client/msg_head.c (next position, the last EVAL's request).
HEAD_STATE_BYTES = 16


def head_rows(k: int, c: int) -> list[PlanRow]:
    """A U-shaped export's head (firmware/client/head.c): an FC layer of k inputs and c classes
    with its training state, its struct, the int32 input-gradient scratch and msg_head.c's
    state. Its per-sample work (logits, softmax) is on the stack."""
    n = k * c
    return [
        PlanRow("head.tensors", "ram", align(n) + 4 * align(4 * c),
                f"head: int8 filter [{n}], int32 bias, float scales, Q31 multipliers, shifts",
                initialized=True),
        PlanRow("head.master", "ram", align(4 * n) + align(4 * c),
                f"head: float32 master filter [{n}] + bias", initialized=True),
        PlanRow("head.grad", "ram", align(4 * n) + align(4 * c),
                "head: float32 gradient sums of a minibatch (.bss)"),
        PlanRow("head.struct", "ram", align(FC_LAYER_STRUCT_BYTES), "ts_model_head",
                initialized=True),
        PlanRow("head.scratch", "ram", 4 * k + HEAD_STATE_BYTES,
                f"head: int32 input-gradient scratch [{k}] + HEAD_IN state"),
    ]  # fmt: skip


def choose_kept(
    shapes: Sequence[OpShape], ram_limit: int | None, max_batch: int, **plan_args: Any
) -> tuple[OpLayout, MemoryPlan]:
    """Keeps every output the backward needs for the whole minibatch, then, while the plan
    exceeds the board's RAM, takes the largest kept one out: as codes when it has them
    (code_kind: its ReLU mask, or a max pool's argmax and mask, in a few bits per sample; no
    extra forward), else recomputed (one sample's buffer, the forward re-run from the flash
    sample during backward). When only codes are left, the largest is recomputed instead."""
    keep = needed_outputs(shapes)
    coded = [False] * len(shapes)
    while True:
        layout = OpLayout.make(shapes, keep, max_batch, coded)
        plan = plan_ops(shapes, layout, max_batch=max_batch, ram_limit=ram_limit, **plan_args)
        kept = [i for i, k in enumerate(keep) if k]
        codes = [i for i, c in enumerate(coded) if c]
        if ram_limit is None or plan.ram_peak <= ram_limit or not (kept or codes):
            return layout, plan
        if kept:
            biggest = max(kept, key=lambda i: (shapes[i].out_bytes, i))
            keep[biggest] = False
            coded[biggest] = code_kind(shapes, biggest) != 0
        else:
            biggest = max(codes, key=lambda i: (code_bytes(shapes, i), i))
            coded[biggest] = False
