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

from tinysplit.host.protocol.spec import MAX_ENCODED, MAX_PAYLOAD, MAX_RAW

Section = Literal["ram", "flash"]

ALIGN = 16

#: sizeof(ts_fc_layer_t) on a 32-bit target (tests/codegen checks it with arm-none-eabi-gcc).
FC_LAYER_STRUCT_BYTES = 68

#: sizeof(ts_frame_decoder_t) (firmware/protocol/ts_frame.h, TS_FRAME_DECODER_SIZE): it decodes
#: COBS as bytes arrive, so it holds one raw frame (4-aligned) and 44 bytes of state/counters.
#: The one place this size lives; tests/codegen checks it against the C struct.
FRAME_DECODER_BYTES = 44 + -(-MAX_RAW // 4) * 4

#: Kernels + protocol + board support at -O2. An estimate: a build's .map file has the truth.
CODE_ESTIMATE_BYTES = 16 * 1024

#: Bytes of the model hash in flash.
MODEL_HASH_BYTES = 8


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


@dataclass(frozen=True)
class MemoryPlan:
    rows: tuple[PlanRow, ...]
    layers: tuple[LayerShape, ...]
    max_batch: int
    stack_bytes: int

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
            out.append(
                {
                    "layer": i,
                    "kind": shape.kind,
                    "in": shape.in_features,
                    "out": shape.out_features,
                    **parts,
                    "ram": sum(parts.values()),
                }
            )
        return out

    def to_json(self) -> dict[str, Any]:
        """The plan as JSON-ready data (plan.json)."""
        return {
            "max_batch": self.max_batch,
            "stack_bytes": self.stack_bytes,
            "ram_peak": self.ram_peak,
            "flash": self.flash,
            "rows": [asdict(r) for r in self.rows],
            "per_layer": self.per_layer(),
        }

    def format_table(self, ram_limit: int | None = None, flash_limit: int | None = None) -> str:
        """A printable table: name | bytes | what, RAM then flash, totals, the board's limits,
        then the RAM of each client layer."""
        per_layer = self.per_layer()
        labels = [f"layer{p['layer']} {p['kind']} {p['in']}->{p['out']}" for p in per_layer]
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
        lines.append("per client layer (RAM): tensors + master + grad + kept activations")
        for label, p in zip(labels, per_layer, strict=True):
            parts = " + ".join(f"{p[k]:,}" for k in ("tensors", "master", "grad", "kept_acts"))
            lines.append(f"  {label:<{width - 2}}{p['ram']:>9,}  {parts}")
        return "\n".join(lines)


def plan_memory(
    layers: Sequence[LayerShape],
    *,
    input_size: int,
    n_train: int,
    n_test: int,
    max_batch: int,
    stack_bytes: int,
) -> MemoryPlan:
    """The plan for a client of fully connected layers (the layout emit_c writes)."""
    rows: list[PlanRow] = []
    for i, s in enumerate(layers):
        k, c = s.in_features, s.out_features
        rows += [
            PlanRow(
                f"layer{i}.tensors",
                "ram",
                align(c * k) + 4 * align(4 * c),
                f"int8 weights [{c}][{k}], int32 bias, float scales, Q31 multipliers, shifts",
                i,
                initialized=True,
            ),
            PlanRow(
                f"layer{i}.master",
                "ram",
                align(4 * c * k) + align(4 * c),
                f"float32 master weights [{c}][{k}] + bias",
                i,
                initialized=True,
            ),
            PlanRow(
                f"layer{i}.grad",
                "ram",
                align(4 * c * k) + align(4 * c),
                "float32 gradient sums of a minibatch (.bss)",
                i,
            ),
            PlanRow(
                f"layer{i}.kept_acts",
                "ram",
                max_batch * c,
                f"int8 outputs kept for backward [{max_batch}][{c}] (in ts_kept_acts)",
                i,
            ),
        ]
    n = len(layers)
    kept = max_batch * sum(s.out_features for s in layers)
    if align(kept) != kept:
        rows.append(
            PlanRow("kept_acts.align", "ram", align(kept) - kept, "padding of ts_kept_acts")
        )
    max_features = max(max(s.in_features, s.out_features) for s in layers)
    rows += [
        PlanRow(
            "layer_structs",
            "ram",
            align(FC_LAYER_STRUCT_BYTES * n),
            f"{n} x ts_fc_layer_t (quantization moves at run time)",
            initialized=True,
        ),
        PlanRow(
            "scratch",
            "ram",
            align(4 * max_features) + align(2 * max_features),
            f"int32 scratch [{max_features}] + int8 gradient ping-pong [2][{max_features}]",
        ),
        PlanRow(
            "frame_decoder",
            "ram",
            FRAME_DECODER_BYTES,
            f"RX frame decoder: one raw frame ({MAX_RAW} bytes) + state, counters",
        ),
        PlanRow("frame_tx", "ram", MAX_ENCODED, "TX: one COBS-encoded frame"),
        PlanRow("payload", "ram", MAX_PAYLOAD, "payload assembly buffer"),
        PlanRow("stack", "ram", stack_bytes, "main stack (--stack-bytes)"),
    ]
    init = sum(r.bytes for r in rows if r.initialized)
    rows += [
        PlanRow(
            "data.train",
            "flash",
            align(n_train * input_size) + align(n_train),
            f"training shard: int8 [{n_train}][{input_size}] + u8 labels",
        ),
        PlanRow(
            "data.test",
            "flash",
            align(n_test * input_size) + align(n_test),
            f"test shard: int8 [{n_test}][{input_size}] + u8 labels",
        ),
        PlanRow("model_hash", "flash", MODEL_HASH_BYTES, "model hash (HELLO)"),
        PlanRow(".data", "flash", init, "initial values of the RAM tensors, master copies"),
        PlanRow("code", "flash", CODE_ESTIMATE_BYTES, "ESTIMATE: kernels, protocol, board"),
    ]
    return MemoryPlan(tuple(rows), tuple(layers), max_batch, stack_bytes)
