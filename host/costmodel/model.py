"""How many instructions a training sample costs the board: a per-kernel cost model fitted to
exact counts on the emulated cores.

    from tinysplit.host.costmodel.model import predict_training
    cost = predict_training(ops, layout, "cortex-m4f")   # TrainingCost: forward, backward, ...
    python -m tinysplit.host.costmodel.model --check MODEL_DIR   # against the emulator, exactly

Every kernel's instruction count is linear in its loop trip counts (the kernels have no
data-dependent branches worth counting, except the input-gradient kernels, which skip zero
gradient elements: they get the nonzero count as a feature). `features()` gives those trip
counts for a kernel call on a shape: MACs, valid window taps, window rows, output elements,
output pixels, input elements, a constant. `python -m tinysplit.host.costmodel.model --fit` runs
firmware/bench/kernel_bench.c's case table (`CASES`, generated into bench_cases.h) under QEMU with
the instruction-counting plugin on every emulated core, fits each kernel's coefficients by
non-negative least squares and rewrites host/costmodel/fitted.json.

Why trip counts and not instructions/MAC: a first conv layer with one input channel runs 9 MACs
per output pixel and spends most of its instructions on the window and the requantization
around them (~4x the cost per MAC of the 8-channel layer after it); a constant per MAC would be
wrong by that factor on one of the two.

`predict_training` composes the kernel calls firmware/client/train.c makes for one training
sample: the forward with range observation (TRAIN_STEP), then the backward (as its GRAD frame
arrives): the recomputed outputs first (ops 0 to the last one not kept, no observation), then
per op from the cut down to the first trainable op: activation mask, filter gradient, input
gradient (max/avg pool: its backward). Those two are what train.c's ts_bench_begin/end markers
bracket, and what `measure_training` counts exactly on the emulator. Beside them it estimates
the step's commit (SGD, range update, re-quantization, the weights CRC) and the framing of the
sample's share of SMASHED and GRAD frames; the copies between buffers are left out (a few
instructions per cut byte). What the model cannot know is how many gradient elements are zero,
which the input-gradient kernels skip. It assumes a dense cut gradient, that a ReLU passes
P_ACTIVE of its gradients (a unit that is the maximum of a pool window passes unless the whole
window is dead), and that a max pool sends each output's gradient to one input.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tinysplit.core.errors import BadInput, TinysplitError
from tinysplit.core.golden.conv_layer import PADDING_SAME, out_size, pad_before

if TYPE_CHECKING:
    import numpy.typing as npt

    from tinysplit.codegen.memory_plan import OpLayout
    from tinysplit.core.golden.ops import ClientOp

#: Kernel kinds, in the order of kernel_bench.c's bench_kind_t.
KINDS = (
    "conv_forward",
    "conv_forward_observe",
    "conv_backward_weights",
    "conv_backward_input",
    "dw_forward",
    "dw_forward_observe",
    "dw_backward_weights",
    "dw_backward_input",
    "fc_forward",
    "fc_observe",
    "fc_backward_weights",
    "fc_backward_input",
    "max_pool_forward",
    "max_pool_backward",
    "avg_pool_forward",
    "avg_pool_backward",
    "act_backward",
    "relu_backward",
    "conv_sgd",
    "conv_range_update",
    "conv_requantize",
    "fc_sgd",
    "fc_range_update",
    "fc_requantize",
    "frame_encode",
    "frame_decode",
    "crc32",
)

#: The emulated board each core's coefficients are measured on (boards/*/profile.json "core";
#: a real board uses the coefficients of its core).
FIT_BOARDS = {
    "cortex-m4f": "mps2_an386",
    "cortex-m3": "mps2_an385",
    "cortex-m0plus": "mps2_an385_m0plus",
    "cortex-m7": "mps2_an500",
    "cortex-m33": "mps2_an505",
    "cortex-m55": "mps3_an547",
}

#: Cycles per instruction, to turn counts into time: a stated estimate, not a measurement (no
#: emulator here is cycle-accurate). On the M3/M4/M33, the TRM's timings applied to the inner
#: loop the kernels spend their time in (gcc -O2: LDRSB, LDRSB, SUB, CMP, MLA, BNE): two
#: back-to-back loads 3 cycles, SUB, CMP, MLA 1 each, a taken branch 1 + 2 (pipeline refill) =
#: 9 cycles for 6 instructions, flash at zero wait states. The M0+ has no load pipelining and
#: 2-cycle loads and taken branches (~1.8); the M7 dual-issues (~0.8, with its caches on); the
#: M55 issues some pairs of 16-bit instructions together and has a 4-stage pipeline (~1.2).
#: host/bench/kernels.py states the same model for the M4.
CYCLES_PER_INSN = {
    "cortex-m4f": 1.5,
    "cortex-m3": 1.5,
    "cortex-m33": 1.5,
    "cortex-m0plus": 1.8,
    "cortex-m7": 0.8,
    "cortex-m55": 1.2,
}

#: Seconds QEMU gets to open its UART socket.
QEMU_START_TIMEOUT_S = 10.0
_COUNT_LINE = re.compile(r"^insn_count (\d+) (\d+)$")

#: Share of a ReLU's units that pass their gradient (a fresh network's units are about half on),
#: when no data says otherwise (active_shares).
P_ACTIVE = 0.5

#: Training samples active_shares runs through the client.
ACTIVE_SAMPLES = 64


class InsnModelError(TinysplitError):
    """The cost model has no coefficients for a core, or a fit failed."""


@dataclass(frozen=True)
class Case:
    """One kernel call: kernel kind and shape (the fields of kernel_bench.c's bench_case_t).

    conv/depthwise: input [h][w][c] -> c_out channels (depthwise: c), window kh x kw, strides
    sh, sw, padding 0 valid / 1 same. fc: c inputs -> c_out outputs. pools: input [h][w][c],
    window, strides, padding. act/relu backward: the elements of the conv/fc output. frame and
    crc kinds: c payload bytes. density: nonzero gradient elements per 1000.
    """

    kind: str
    h: int = 1
    w: int = 1
    c: int = 1
    c_out: int = 1
    kh: int = 1
    kw: int = 1
    sh: int = 1
    sw: int = 1
    padding: int = 0
    density: int = 1000
    # conv_backward_weights only, from ClientStats (else from density, zeros independent):
    # expected (group, channel) pairs with a nonzero gradient, and groups with any
    nz_ch: float = -1.0
    built: float = -1.0

    def c_struct(self) -> str:
        """The case as a C initializer of bench_case_t."""
        kind = "BK_" + self.kind.upper()
        return (
            f"{{{kind}, {self.h}, {self.w}, {self.c}, {self.c_out}, {self.kh}, {self.kw}, "
            f"{self.sh}, {self.sw}, {self.padding}, {self.density}}}"
        )


# ---- trip counts ----------------------------------------------------------------------------


def _valid(n_in: int, n_out: int, k: int, stride: int) -> tuple[int, list[int]]:
    """Sum over outputs of the window taps inside the image along one axis, and per tap offset
    the outputs whose tap is inside (the same sum counted the other way)."""
    pad = pad_before(n_in, n_out, k, stride)
    per_tap = [sum(0 <= o * stride - pad + t < n_in for o in range(n_out)) for t in range(k)]
    return sum(per_tap), per_tap


def _window_rows(n_in: int, n_out: int, k: int, stride: int) -> list[int]:
    """Per output along one axis: the taps of its window clipped to the image (pools)."""
    pad = pad_before(n_in, n_out, k, stride)
    return [min(o * stride - pad + k, n_in) - max(o * stride - pad, 0) for o in range(n_out)]


def _out_dims(case: Case) -> tuple[int, int]:
    return (
        out_size(case.padding, case.h, case.kh, case.sh),
        out_size(case.padding, case.w, case.kw, case.sw),
    )


def features(case: Case) -> dict[str, float]:
    """The trip counts a kernel call's instruction count is linear in (always with "one"): the
    loops of the kernels a firmware build runs, the optimized ones (firmware/kernels/*_fast.c)
    where there is one, else the reference ones."""
    k = case.kind
    if k in FAST_FEATURES:
        return {kk: float(v) for kk, v in FAST_FEATURES[k](case).items()}
    if k.startswith(("conv_", "dw_")) and not k.endswith(("sgd", "requantize", "range_update")):
        return conv_trip_counts(case)
    if k.startswith("fc_") and not k.endswith(("sgd", "requantize", "range_update")):
        return fc_trip_counts(case)
    if "pool" in k:
        return _pool_features(case)
    if k in ("act_backward", "relu_backward"):
        n = case.c_out if k == "relu_backward" else math.prod(_out_dims(case)) * case.c_out
        return {"one": 1.0, "n": float(n)}
    if k.endswith(("sgd", "requantize")):
        c_out = case.c if k.startswith("dw_") else case.c_out
        taps = case.kh * case.kw
        n_w = case.c * case.c_out if k.startswith("fc_") else taps * case.c * c_out
        return {"one": 1.0, "weights": float(n_w), "channels": float(case.c_out)}
    if k.endswith("range_update"):
        return {"one": 1.0}
    return {"one": 1.0, "bytes": float(case.c)}  # frame_encode, frame_decode, crc32


def conv_trip_counts(case: Case) -> dict[str, float]:
    dw = case.kind.startswith("dw_")
    oh, ow = _out_dims(case)
    c_out = case.c if dw else case.c_out
    c_in = 1 if dw else case.c
    rows, _ = _valid(case.h, oh, case.kh, case.sh)  # sum over oy of in-image window rows
    cols, _ = _valid(case.w, ow, case.kw, case.sw)
    px, out = oh * ow, oh * ow * c_out
    f: dict[str, float] = {"one": 1.0}
    if case.kind.endswith(("forward", "forward_observe")):
        f |= {
            "px": px,
            "out": out,
            "ky": out * case.kh,
            "kx": c_out * rows * ow * case.kw,
            "tap": c_out * rows * cols,
        }
        if not dw:
            f["mac"] = c_out * rows * cols * c_in
    elif case.kind.endswith("backward_weights"):
        taps = c_out * case.kh * case.kw * c_in  # one float update (and oy loop) each
        f |= {
            "channels": c_out,
            "out": out,
            "taps": taps,
            "oy": taps * oh,
            "ox": c_out * c_in * rows * ow * case.kw,
            "mac": c_out * c_in * rows * cols,
        }
    else:  # backward_input: the tap loops run only for nonzero gradient elements
        nz = out * case.density // 1000
        f |= {
            "in": case.h * case.w * case.c,
            "in_div": case.h * case.w * case.c if nz else 0,  # ts_grad_requantize's divisions
            "channels": c_out,
            "px": px,
            "out": out,
            "nz": nz,
            "nz_ky": nz * case.kh,
            "nz_kx": nz * (rows / oh) * case.kw,
            "nz_tap": nz * (rows / oh) * (cols / ow),
        }
        if not dw:
            f["nz_mac"] = nz * (rows / oh) * (cols / ow) * c_in
    return {k: float(v) for k, v in f.items()}


def fc_trip_counts(case: Case) -> dict[str, float]:
    k_in, c = case.c, case.c_out
    if case.kind == "fc_observe":
        return {"one": 1.0, "out": float(c)}
    if case.kind == "fc_backward_input":
        nz = c * case.density // 1000
        # With no nonzero gradient the int64 divisions of the re-quantization are skipped.
        div = k_in if nz else 0
        return {"one": 1.0, "in": k_in, "in_div": div, "out": c, "nz": nz, "nz_mac": nz * k_in}
    return {"one": 1.0, "out": float(c), "mac": float(c * k_in)}  # forward, backward_weights


def _pool_features(case: Case) -> dict[str, float]:
    oh, ow = _out_dims(case)
    rows = _window_rows(case.h, oh, case.kh, case.sh)
    cols = _window_rows(case.w, ow, case.kw, case.sw)
    c = case.c
    px, out = oh * ow, oh * ow * c
    row = c * sum(rows) * ow  # window-row loop trips
    tap = c * sum(rows) * sum(cols)
    f: dict[str, float] = {"one": 1.0, "px": px, "out": out, "row": row, "tap": tap}
    if case.kind.endswith("backward"):
        overlap = case.sh < case.kh or case.sw < case.kw
        n_in = case.h * case.w * c
        f["in"] = n_in
        if overlap:
            f["in_overlap"] = n_in
        elif case.kind.startswith("avg"):  # the second pass, per window, without overlap
            f |= {"px_pass2": px, "out_pass2": out, "tap_pass2": tap}
            f["tap"] = 0
    return {k: float(v) for k, v in f.items()}


# ---- the optimized kernels' loops (firmware/kernels/*_fast.c) --------------------------------
# Mirrors of the kernels' own choices (which path, which channel blocks) and trip counts. A
# zero-skipping loop gets the expected count for a gradient whose elements are nonzero with
# probability density / 1000, independently (the bench's gradients are that: random positions).

#: ts_kernels.h TS_CONV_FAST_MAX_TAPS; ts_fast.h TS_FAST_CHANNELS_MAX; conv2d_fast.c ROWS_MAX,
#: PAIRS_W_MAX, PAIRS_MAX.
_MAX_TAPS, _MAX_CH, _ROWS_MAX, _PAIRS_W_MAX, _PAIRS_MAX = 192, 32, 320, 224, 32


def _pairs_t(case: Case) -> int:
    """conv2d_fast.c pairs_fit: the window's int16 pairs T, or 0 for the column path."""
    _, ow = _out_dims(case)
    pad_l = pad_before(case.w, ow, case.kw, case.sw)
    pad_r = max(0, (ow - 1) * case.sw + case.kw - case.w - pad_l)
    row_len = (case.w + pad_l + pad_r) * case.c + 1
    t = case.kh * ((case.kw * case.c + 1) // 2)
    fits = (
        case.c <= 3
        and t <= _PAIRS_MAX
        and (case.kh + 1) * row_len <= _ROWS_MAX
        and t * 2 * case.c_out <= _PAIRS_W_MAX
    )
    return t if fits else 0


def _conv_forward_fast(case: Case) -> dict[str, float]:
    k = case.kh * case.kw * case.c
    if k > _MAX_TAPS or case.c_out > _MAX_CH:  # ts_conv2d_forward_fast runs the reference
        return {f"ref_{n}": v for n, v in conv_trip_counts(case).items()}
    oh, ow = _out_dims(case)
    px, c_out = oh * ow, case.c_out
    t = _pairs_t(case)
    if t:
        per_row = t // case.kh
        pad = pad_before(case.h, oh, case.kh, case.sh)
        rows = {oy * case.sh - pad + ky for oy in range(oh) for ky in range(case.kh)}
        used = sum(0 <= r < case.h for r in rows)
        f: dict[str, float] = {
            "one": 1, "ch": c_out, "p_w": c_out * case.kh * 2 * per_row,
            "p_zero": (case.kh + 1) * ((case.w + 2 * case.kw) * case.c + 1),
            "p_rows": oh * case.kh, "p_offs": oh * t, "p_widen": used * case.w * case.c,
        }  # fmt: skip
        if t == 6:  # unrolled
            return f | {"p6_px": px, "p6_out": px * c_out}
        return f | {"pg_px": px, "pg_pxt": px * t, "pg_out": px * c_out, "pg_outt": px * c_out * t}
    n_px = 2 * -(-px // 2)
    tiles = -(-px // 2) * -(-c_out // 2)
    k4 = k & ~3
    # im2col: per pixel and window row, the whole row at once or, on the border, tap by tap
    pad_t = pad_before(case.h, oh, case.kh, case.sh)
    pad_l = pad_before(case.w, ow, case.kw, case.sw)
    partial = 0
    for oy in range(oh):
        for ky in range(case.kh):
            if not 0 <= oy * case.sh - pad_t + ky < case.h:
                continue
            partial += sum(
                not (ox * case.sw - pad_l >= 0 and ox * case.sw - pad_l + case.kw <= case.w)
                for ox in range(ow)
            )
    return {
        "one": 1, "ch": c_out, "c_px": n_px, "c_rows": n_px * case.kh, "c_el": n_px * k,
        "c_ptaps": partial * case.kw, "c_tiles": tiles, "c_tk4": tiles * k4 // 4,
        "c_ttail": tiles * (k - k4),
    }  # fmt: skip


def _dw_forward_fast(case: Case) -> dict[str, float]:
    oh, ow = _out_dims(case)
    c = case.c
    taps = case.kh * case.kw
    blocks = [min(_MAX_CH, c - b) for b in range(0, c, _MAX_CH)]
    quads = sum(n // 4 for n in blocks)
    rest = sum(n % 4 for n in blocks)
    pad_t, pad_l = (
        pad_before(case.h, oh, case.kh, case.sh),
        pad_before(case.w, ow, case.kw, case.sw),
    )
    inner = border_taps = border = 0
    for oy in range(oh):
        y0 = oy * case.sh - pad_t
        ny = min(case.h - y0, case.kh) - max(-y0, 0)
        for ox in range(ow):
            x0 = ox * case.sw - pad_l
            nx = min(case.w - x0, case.kw) - max(-x0, 0)
            if ny == case.kh and nx == case.kw:
                inner += 1
            else:
                border += 1
                border_taps += max(ny, 0) * max(nx, 0)
    unrolled = "3" if case.kw == 3 else ""
    return {
        "one": 1, "blocks": len(blocks), "setup": c * taps, "px_blocks": oh * ow * len(blocks),
        "quads": oh * ow * quads, f"inner{unrolled}_rows": inner * quads * case.kh,
        f"inner{unrolled}_taps": inner * quads * taps, "border_quads": border * quads,
        "border_rows": border * quads * case.kh, "border_taps": border_taps * quads,
        "single": oh * ow * rest, "single_taps": (inner * taps + border_taps) * rest,
        "out": oh * ow * c,
    }  # fmt: skip


def _conv_backward_weights_fast(case: Case) -> dict[str, float]:
    oh, ow = _out_dims(case)
    px, c_out = oh * ow, case.c_out
    k = case.kh * case.kw * case.c
    d = case.density / 1000
    groups = -(-px // 4)
    nz_ch = case.nz_ch if case.nz_ch >= 0 else groups * c_out * (1 - (1 - d) ** 4)
    built = case.built if case.built >= 0 else groups * (1 - (1 - d) ** (4 * c_out))
    return {
        "one": 1, "sums": c_out * k, "g_el": px * c_out, "g_ch": groups * c_out,
        "nz_ch": nz_ch, "nz_k": nz_ch * k, "built": built, "built_el": built * 4 * k,
        "built_taps": built * 4 * case.kh * case.kw,
    }  # fmt: skip


def _conv_backward_input_fast(case: Case) -> dict[str, float]:
    if case.c_out > 64:  # ts_conv2d_backward_input_fast runs the reference
        return {f"ref_{n}": v for n, v in conv_trip_counts(case).items()}
    oh, ow = _out_dims(case)
    px, c_out, c_in = oh * ow, case.c_out, case.c
    d = case.density / 1000
    rows, _ = _valid(case.h, oh, case.kh, case.sh)
    cols, _ = _valid(case.w, ow, case.kw, case.sw)
    taps = rows * cols  # in-image taps summed over the output pixels
    p_px = 1 - (1 - d) ** c_out
    n_in = case.h * case.w * c_in
    # input channels in passes of eight (DSP cores), then four, then one by one
    b8, b4, rem = c_in // 8, (c_in % 8) // 4, c_in % 4
    return {
        "one": 1, "in": n_in, "px": px, "out": px * c_out, "nz_px": px * p_px,
        "nz_rows": rows * ow * p_px, "nz_taps": taps * p_px,
        "blk8": taps * p_px * b8, "blk4": taps * p_px * b4, "rem": taps * p_px * rem,
        "blk8_ch": taps * b8 * c_out * d, "blk4_ch": taps * b4 * c_out * d,
        "rem_ch": taps * rem * c_out * d,
    }  # fmt: skip


def _fc_forward_fast(case: Case) -> dict[str, float]:
    k_in, c = case.c, case.c_out
    q, r = c // 4, c % 4
    return {
        "one": 1, "quads": q, "q_k4": q * (k_in // 4), "q_tail": q * (k_in % 4), "rows": r,
        "r_k4": r * (k_in // 4), "r_tail": r * (k_in % 4), "out": c,
    }  # fmt: skip


def _fc_backward_weights_fast(case: Case) -> dict[str, float]:
    k_in, c = case.c, case.c_out
    nz = c * case.density // 1000
    chunks = -(-k_in // 64)
    return {"one": 1, "k": k_in, "c": c, "chunk_rows": chunks * c, "nz_chunks": nz * chunks,
            "nz_k": nz * k_in}  # fmt: skip


def _fc_backward_input_fast(case: Case) -> dict[str, float]:
    k_in, c = case.c, case.c_out
    nz = c * case.density // 1000
    return {"one": 1, "k": k_in, "k_div": k_in if nz else 0, "c": c, "quads": nz // 4,
            "q_k": (nz // 4) * k_in, "rest": nz % 4, "r_k": (nz % 4) * k_in}  # fmt: skip


#: Kernel kinds whose build runs an optimized kernel, and that kernel's trip counts.
FAST_FEATURES: dict[str, Any] = {
    "conv_forward": _conv_forward_fast,
    "conv_forward_observe": _conv_forward_fast,
    "dw_forward": _dw_forward_fast,
    "dw_forward_observe": _dw_forward_fast,
    "conv_backward_weights": _conv_backward_weights_fast,
    "conv_backward_input": _conv_backward_input_fast,
    "fc_forward": _fc_forward_fast,
    "fc_backward_weights": _fc_backward_weights_fast,
    "fc_backward_input": _fc_backward_input_fast,
}


# ---- the bench's case table ---------------------------------------------------------------

_V, _S = 0, PADDING_SAME
#: (h, w, c, c_out, kh, kw, sh, sw, padding): the reference workloads' layers and a spread of
#: channel counts, windows, strides and paddings, so every trip count varies on its own.
_CONV_SHAPES = (
    (28, 28, 1, 8, 3, 3, 1, 1, _V),  # mnist-cnn conv1
    (28, 28, 1, 8, 3, 3, 1, 1, _S),
    (13, 13, 8, 16, 3, 3, 1, 1, _V),  # mnist-cnn conv2
    (14, 14, 8, 16, 3, 3, 1, 1, _S),
    (1, 100, 6, 8, 1, 5, 1, 1, _S),  # motion-cnn1d conv1
    (1, 100, 8, 16, 1, 5, 1, 2, _S),  # motion-cnn1d conv2
    (1, 100, 6, 8, 1, 5, 1, 1, _V),
    (10, 10, 4, 4, 5, 5, 1, 1, _S),
    (8, 8, 16, 32, 1, 1, 1, 1, _V),
    (12, 12, 3, 6, 3, 3, 2, 2, _S),
    (16, 16, 2, 4, 3, 3, 1, 1, _V),
    (9, 9, 12, 8, 3, 3, 2, 2, _V),
    (20, 20, 1, 4, 5, 5, 1, 1, _S),
    (6, 6, 32, 8, 3, 3, 1, 1, _S),  # window over TS_CONV_FAST_MAX_TAPS: the reference runs
    (5, 5, 24, 6, 3, 3, 1, 1, _V),
    (6, 6, 4, 40, 3, 3, 1, 1, _S),  # more channels than the output stage holds
    (7, 7, 2, 6, 3, 3, 2, 2, _S),  # first-layer paths: T 6 with stride 2, T 9 (3x3x2), T 3
    (9, 9, 2, 5, 3, 3, 1, 1, _V),
    (1, 60, 1, 8, 1, 5, 1, 1, _S),
)
_DW_SHAPES = (
    (14, 14, 16, 16, 3, 3, 1, 1, _S),
    (13, 13, 8, 8, 3, 3, 1, 1, _V),
    (1, 100, 6, 6, 1, 5, 1, 1, _S),
    (10, 10, 32, 32, 3, 3, 2, 2, _S),
    (8, 8, 4, 4, 5, 5, 1, 1, _S),
    (12, 12, 8, 8, 3, 3, 1, 1, _V),
    (16, 16, 1, 1, 3, 3, 1, 1, _S),
)
#: (inputs, outputs): bench FC layers carry master and gradient copies, 9 bytes per weight.
_FC_SHAPES = ((64, 32), (32, 32), (32, 10), (784, 8), (400, 10), (128, 48), (16, 16), (200, 20),
              (10, 100), (1, 64), (1352, 4))  # fmt: skip
#: (h, w, c, kh, kw, sh, sw, padding)
_POOL_SHAPES = (
    (26, 26, 8, 2, 2, 2, 2, _V),  # mnist-cnn pool1
    (11, 11, 16, 2, 2, 2, 2, _V),  # mnist-cnn pool2
    (14, 14, 4, 3, 3, 2, 2, _S),
    (10, 10, 8, 3, 3, 1, 1, _S),
    (1, 100, 8, 1, 2, 1, 2, _V),
    (12, 12, 6, 3, 3, 3, 3, _V),
    (7, 7, 16, 2, 2, 2, 2, _S),
    (9, 9, 2, 4, 4, 2, 2, _V),
)
_LINK_BYTES = (16, 100, 400, 1000, 1400, 2000)


def _cases() -> tuple[Case, ...]:
    out: list[Case] = []
    for h, w, c, co, kh, kw, sh, sw, pad in _CONV_SHAPES:
        geo = dict(h=h, w=w, c=c, c_out=co, kh=kh, kw=kw, sh=sh, sw=sw, padding=pad)
        out += [Case(kind, **geo) for kind in KINDS[:2]]
        out += [Case("conv_backward_weights", **geo, density=d) for d in (1000, 400, 150)]
        out += [Case("conv_backward_input", **geo, density=d) for d in (1000, 400, 150)]
        out.append(Case("act_backward", **geo, density=500))
        out += [Case(kind, **geo) for kind in ("conv_sgd", "conv_requantize")]
    out.append(Case("conv_range_update", c=4, c_out=4))
    for h, w, c, co, kh, kw, sh, sw, pad in _DW_SHAPES:
        geo = dict(h=h, w=w, c=c, c_out=co, kh=kh, kw=kw, sh=sh, sw=sw, padding=pad)
        out += [Case(kind, **geo) for kind in KINDS[4:7]]
        out += [Case("dw_backward_input", **geo, density=d) for d in (1000, 300)]
    for k_in, c in _FC_SHAPES:
        geo = dict(c=k_in, c_out=c)
        out += [Case(kind, **geo) for kind in KINDS[8:10]]
        out += [Case("fc_backward_weights", **geo, density=d) for d in (1000, 500, 100)]
        out += [Case("fc_backward_input", **geo, density=d) for d in (1000, 500, 100)]
        out += [Case(kind, **geo) for kind in ("relu_backward", "fc_sgd", "fc_requantize")]
    out.append(Case("fc_range_update", c=8, c_out=8))
    for h, w, c, kh, kw, sh, sw, pad in _POOL_SHAPES:
        geo = dict(h=h, w=w, c=c, c_out=c, kh=kh, kw=kw, sh=sh, sw=sw, padding=pad)
        for kind in ("max_pool_forward", "max_pool_backward", "avg_pool_forward"):
            out.append(Case(kind, **geo))
        out.append(Case("avg_pool_backward", **geo))
    for n in _LINK_BYTES:
        out += [Case(kind, c=n) for kind in ("frame_encode", "frame_decode", "crc32")]
    return tuple(out)


CASES = _cases()


def bench_header(cases: Sequence[Case]) -> str:
    """bench_cases.h: the case table kernel_bench.c runs with -DTS_BENCH_CASES."""
    rows = ",\n".join(f"    {c.c_struct()}" for c in cases)
    return (
        "/* Generated by host/costmodel/model.py "
        "(python -m tinysplit.host.costmodel.model --fit). */\n"
        f"static const bench_case_t k_cases[{len(cases)}] = {{\n{rows}\n}};\n"
    )


# ---- measuring and fitting -----------------------------------------------------------------


def measure_cases(
    board: str, cases: Sequence[Case] = CASES, build_dir: Path | None = None, kernels: str = "fast"
) -> list[int]:
    """Exact instructions of every case's kernel call on an emulated board (marker overhead
    subtracted), in case order; kernels: "fast" (what boards run) or "reference"."""
    from tinysplit.core.boards import board_profile
    from tinysplit.host.board.build import build_firmware
    from tinysplit.host.costmodel.count import BENCH_APP, BenchError, build_plugin, run_bench

    machine = board_profile(board).get("qemu_machine")
    if not machine:
        raise BadInput(f"board {board} is not emulated by QEMU: the fit needs a qemu board")
    with tempfile.TemporaryDirectory(prefix="tinysplit-fit-") as tmp:
        base = Path(build_dir) if build_dir is not None else Path(tmp)
        gen = (base / "gen").resolve()
        gen.mkdir(parents=True, exist_ok=True)
        (gen / "bench_cases.h").write_text(bench_header(cases))
        plugin = build_plugin(base / "plugin")
        elf = build_firmware(
            board,
            None,
            base / f"fit-{board}",
            make_vars={
                "APP_SRCS": BENCH_APP,
                "EXTRA_CFLAGS": f"-DTS_BENCH_CASES -I{gen}",
                "KERNELS": kernels,
            },
        )
        intervals = run_bench(elf, plugin, machine, Path(tmp))
    overhead = intervals[0]
    if overhead["kernel"] != "overhead" or len(intervals) != len(cases) + 1:
        raise BenchError(
            f"the fit bench gave {len(intervals) - 1} intervals for {len(cases)} cases"
        )
    counts: list[int] = []
    for i, (case, it) in enumerate(zip(cases, intervals[1:], strict=True)):
        if it["kernel"] != case.kind or it["shape"] != f"case{i}":
            raise BenchError(f"interval {i + 1} is {it['kernel']} {it['shape']}, not {case}")
        counts.append(int(it["raw"]) - int(overhead["raw"]))
    return counts


@dataclass
class Fit:
    """One core's fitted coefficients per kernel kind, and how well they reproduce the bench."""

    coefficients: dict[str, dict[str, float]]
    max_error: dict[str, float] = field(default_factory=dict)  # max |pred/measured - 1|


def fit(cases: Sequence[Case], counts: Sequence[int]) -> Fit:
    """Non-negative least squares per kernel kind, each case weighted by 1/count so that the
    relative error is what is minimized (small and large shapes count alike)."""
    import numpy as np
    from scipy.optimize import nnls

    result = Fit({})
    for kind in KINDS:
        rows = [(features(c), n) for c, n in zip(cases, counts, strict=True) if c.kind == kind]
        if not rows:
            continue
        names = sorted({k for f, _ in rows for k in f})
        a = np.array([[f.get(k, 0.0) for k in names] for f, _ in rows])
        b = np.array([float(n) for _, n in rows])
        w = 1.0 / np.maximum(b, 1.0)
        coef, _ = nnls(a * w[:, None], b * w)
        result.coefficients[kind] = {
            k: round(float(v), 4) for k, v in zip(names, coef, strict=True)
        }
        pred = a @ np.array([result.coefficients[kind][k] for k in names])
        result.max_error[kind] = round(float(np.max(np.abs(pred / np.maximum(b, 1.0) - 1))), 4)
    return result


def kernel_insns(case: Case, core: str) -> float:
    """Predicted instructions of one kernel call on `core`."""
    coef = coefficients(core).get(case.kind)
    if coef is None:
        raise InsnModelError(f"the cost model of {core} has no coefficients for {case.kind}")
    return sum(coef.get(k, 0.0) * v for k, v in features(case).items())


def coefficients(core: str) -> dict[str, dict[str, float]]:
    """The fitted coefficients of a core; InsnModelError naming the cores there are."""
    fitted = FITTED.get(core)
    if fitted is None:
        raise InsnModelError(
            f"no instruction model for core {core!r}: cores with one are "
            f"{', '.join(sorted(FITTED)) or 'none'} "
            "(python -m tinysplit.host.costmodel.model --fit)"
        )
    return fitted


# ---- one training sample of a client --------------------------------------------------------


@dataclass(frozen=True)
class KernelCall:
    """One kernel call of a training sample: where it is and what the model predicts."""

    op: int
    phase: str  # forward | recompute | backward
    case: Case
    insns: float
    macs: int  # multiply-accumulates (in-image taps; an input gradient counted dense)


@dataclass(frozen=True)
class TrainingCost:
    """Predicted instructions of one training sample and of one step's commit."""

    calls: tuple[KernelCall, ...]
    forward: float  # TRAIN_STEP: the sample's forward with range observation
    backward: float  # as its GRAD arrives: recompute + the sample's backward
    commit: float  # once per step: SGD, range update, re-quantization, weights CRC
    link: float  # per sample: framing its SMASHED share and reading its GRAD share

    @property
    def per_sample(self) -> float:
        """Forward + backward: what the firmware's markers bracket."""
        return self.forward + self.backward

    @property
    def macs(self) -> int:
        """Multiply-accumulates of one sample: forward, recompute, backward."""
        return sum(c.macs for c in self.calls)

    def per_sample_amortized(self, batch: int) -> float:
        """Everything the board computes per sample: forward, backward, the link, and a share
        of the step's commit."""
        return self.per_sample + self.link + self.commit / batch


def op_case(op: ClientOp, kind: str, density: int = 1000) -> Case:
    """The bench case of a kernel call on a golden op."""
    from tinysplit.core.golden import ConvLayer, FCLayer
    from tinysplit.core.golden.ops import PoolOp

    if isinstance(op, FCLayer):
        return Case(kind, c=op.in_features, c_out=op.out_features, density=density)
    if isinstance(op, ConvLayer):
        (h, w, c), c_out = op.in_dims, op.out_dims[2]
        return Case(kind, h, w, c, c_out, op.kh, op.kw, op.stride_h, op.stride_w, op.padding,
                    density)  # fmt: skip
    if isinstance(op, PoolOp):
        p = op.params
        h, w, c = p.in_dims
        return Case(kind, h, w, c, c, p.kh, p.kw, p.stride_h, p.stride_w, p.padding, density)
    raise InsnModelError(f"no kernel runs a {type(op).__name__}")


def case_macs(case: Case) -> int:
    """Multiply-accumulates of a conv, depthwise or FC kernel call (in-image window taps; the
    same count forward, for the filter gradient and, dense, for the input gradient); 0 for
    the other kernels."""
    k = case.kind
    if k in ("fc_forward", "fc_backward_weights", "fc_backward_input"):
        return case.c * case.c_out
    if k.startswith(("conv_forward", "conv_backward", "dw_forward", "dw_backward")):
        f = conv_trip_counts(replace(case, kind=k.split("_")[0] + "_forward"))
        return round(f.get("mac", f["tap"]))
    return 0


def _per_mille(d: float) -> int:
    return max(0, min(1000, round(1000 * d)))


@dataclass(frozen=True)
class ClientStats:
    """What the client's data does to its backward, measured by client_stats: the kernels that
    skip zero gradients cost what the gradients' zeros allow.

    active[i]: per conv or FC op with an activation, the share of its outputs above the
    activation's floor; per max pool that pools such an op (through reshapes), the share of its
    outputs above that floor (the window maxima whose gradient the ReLU passes).
    groups[i]: per conv op, where its output gradient can be nonzero (a position the ReLU and
    the max pool after it let a gradient through), counted the way the filter-gradient kernel
    walks the output (four pixels at a time): per_channel[k] the mean number of (group,
    channel) pairs with k such positions (k = 0..4), per_group[n] of groups with n of them over
    all channels, per sample.
    """

    active: Mapping[int, float]
    groups: Mapping[int, tuple[tuple[float, ...], tuple[float, ...]]]


def client_stats(ops: Sequence[ClientOp], xs: npt.ArrayLike) -> ClientStats:
    """ClientStats over the first ACTIVE_SAMPLES int8 inputs xs at these ops' weights. A client
    whose ReLUs are mostly off (an image's dark background) costs the zero-skipping kernels far
    less than the half-on guess P_ACTIVE and independent zeros would say."""
    import numpy as np

    from tinysplit.core.golden import ConvLayer, FCLayer, act_range, max_pool2d_backward
    from tinysplit.core.golden.ops import PoolOp, op_kind
    from tinysplit.core.golden.step import ops_outputs

    def after(i: int) -> int | None:
        j = i + 1
        while j < len(ops) and op_kind(ops[j]) == "reshape":
            j += 1
        return j if j < len(ops) else None

    floors: dict[int, int] = {}
    pools: dict[int, int] = {}  # conv/fc op -> the max pool right after it
    for i, op in enumerate(ops):
        if isinstance(op, FCLayer) and op.relu:
            floors[i] = act_range(1, op.out_scale, op.out_zp)[0]
        elif isinstance(op, ConvLayer) and op.act:
            floors[i] = act_range(op.act, op.out_scale, op.out_zp)[0]
        else:
            continue
        j = after(i)
        nxt = ops[j] if j is not None else None
        if j is not None and isinstance(nxt, PoolOp) and nxt.kind == "max":
            floors[j] = floors[i]
            pools[i] = j
    convs = {i: op for i, op in enumerate(ops) if isinstance(op, ConvLayer) and not op.depthwise}
    x8 = np.asarray(xs, dtype=np.int8)
    x8 = x8.reshape(x8.shape[0], -1)[:ACTIVE_SAMPLES]
    passed = dict.fromkeys(floors, 0)
    total = dict.fromkeys(floors, 0)
    per_channel = {i: np.zeros(5) for i in convs}
    per_group = {i: np.zeros(4 * op.out_dims[2] + 1) for i, op in convs.items()}
    for x in x8:
        outs = ops_outputs(ops, x)
        for i, floor in floors.items():
            passed[i] += int(np.count_nonzero(outs[i] > floor))
            total[i] += int(outs[i].size)
        for i, op in convs.items():
            oh, ow, c = op.out_dims
            if i in pools:
                pool = ops[pools[i]]
                assert isinstance(pool, PoolOp)
                g = (outs[pools[i]] > floors[i]).astype(np.int8).reshape(pool.params.out_dims)
                mask = max_pool2d_backward(pool.params, outs[i], g, 1.0)[0] != 0
            elif i in floors:
                mask = outs[i] > floors[i]
            else:
                mask = np.ones(oh * ow * c, dtype=bool)
            m = mask.reshape(oh * ow, c)
            pad = (-len(m)) % 4
            k = np.vstack([m, np.zeros((pad, c), bool)]).reshape(-1, 4, c).sum(axis=1)
            per_channel[i] += np.bincount(k.ravel(), minlength=5)[:5]
            per_group[i] += np.bincount(k.sum(axis=1), minlength=4 * c + 1)[: 4 * c + 1]
    n = max(len(x8), 1)
    return ClientStats(
        {i: passed[i] / total[i] for i in floors if total[i]},
        {i: (tuple(per_channel[i] / n), tuple(per_group[i] / n)) for i in convs},
    )


def predict_training(
    ops: Sequence[ClientOp],
    layout: OpLayout,
    core: str,
    *,
    smashed_share: float = 0.0,
    grad_share: float = 0.0,
    cut_density: float = 1.0,
    stats: ClientStats | None = None,
) -> TrainingCost:
    """Instructions of one training sample of the client `ops` laid out as `layout` (the
    export's memory plan), on `core`.

    smashed_share / grad_share: wire payload bytes per sample each way (for the link term).
    cut_density: share of nonzero elements in the host's int8 cut gradient.
    stats: client_stats of the client on its data (else every ReLU passes P_ACTIVE and the
    gradients' zeros fall independently).
    """
    from tinysplit.core.golden import ConvLayer, FCLayer
    from tinysplit.core.golden.ops import PoolOp, op_kind

    coefficients(core)  # a clear error before anything else
    calls: list[KernelCall] = []

    def call(i: int, phase: str, kind: str, density: float = 1.0, q: float | None = None) -> None:
        case = op_case(ops[i], kind, _per_mille(density))
        if q is not None and stats is not None and i in stats.groups:
            # the filter gradient's groups from the data's nonzero positions, each nonzero
            # with probability q (the gradient arriving at the ReLU)
            per_channel, per_group = stats.groups[i]
            nz_ch = sum(n * (1 - (1 - q) ** k) for k, n in enumerate(per_channel))
            built = sum(n * (1 - (1 - q) ** k) for k, n in enumerate(per_group))
            case = replace(case, nz_ch=nz_ch, built=built)
        calls.append(KernelCall(i, phase, case, kernel_insns(case, core), case_macs(case)))

    def forward(i: int, phase: str) -> None:
        op, obs = ops[i], "_observe" if phase == "forward" else ""
        if isinstance(op, FCLayer):
            call(i, phase, "fc_forward")
            if obs:
                call(i, phase, "fc_observe")
        elif isinstance(op, ConvLayer):
            call(i, phase, ("dw" if op.depthwise else "conv") + "_forward" + obs)
        elif isinstance(op, PoolOp):
            call(i, phase, f"{op.kind}_pool_forward")

    for i in range(len(ops)):
        forward(i, "forward")
    recomputed = [i for i, r in enumerate(layout.recompute) if r]
    for i in range(max(recomputed) + 1 if recomputed else 0):
        forward(i, "recompute")
    # Outputs kept as codes (firmware/client/codes.c): recording them in forward and rebuilding
    # them before backward each walk the output once, as the max pool after it (its argmax)
    # or as the activation mask does. Estimated by those kernels' counts.
    for i, c in enumerate(layout.coded):
        if not c:
            continue
        j = next((k for k in range(i + 1, len(ops)) if op_kind(ops[k]) != "reshape"), None)
        if j is not None and isinstance(ops[j], PoolOp):
            call(j, "forward", "max_pool_forward")
            call(j, "backward", "max_pool_forward")
        else:
            mask = "relu_backward" if isinstance(ops[i], FCLayer) else "act_backward"
            call(i, "forward", mask)
            call(i, "backward", mask)

    # Backward from the cut down to the first trainable op, with the expected share of nonzero
    # gradient elements (what the input-gradient kernels skip) and, after a max pool, the
    # window its gradients came through (a window's maximum is dead only if all of it is).
    first = next((i for i, op in enumerate(ops) if isinstance(op, FCLayer | ConvLayer)), None)
    active = stats.active if stats is not None else {}
    density, window, pooled, arriving = cut_density, 1, None, cut_density
    for i in range(len(ops) - 1, -1 if first is None else first - 1, -1):
        op = ops[i]
        kind = op_kind(op)
        if isinstance(op, FCLayer | ConvLayer):
            act = op.relu if isinstance(op, FCLayer) else op.act != 0
            if pooled is None:
                arriving = density
            if act:
                call(i, "backward", "relu_backward" if kind == "fc" else "act_backward")
                if pooled is not None and pooled in active:
                    density *= active[pooled]  # the maxima the pool sent gradients to
                elif pooled is None and i in active:
                    density *= active[i]
                else:
                    density *= 1.0 - (1.0 - P_ACTIVE) ** window
            pre = "fc" if kind == "fc" else ("dw" if kind == "depthwise" else "conv")
            call(i, "backward", pre + "_backward_weights", density, arriving)  # skips zeros
            if layout.input_grad[i]:
                call(i, "backward", pre + "_backward_input", density)
                if isinstance(op, FCLayer):
                    terms = op.out_features
                else:
                    terms = -(-op.kh // op.stride_h) * -(-op.kw // op.stride_w)
                    terms *= 1 if op.depthwise else op.out_dims[2]
                density = 1.0 - (1.0 - density) ** terms
            window, pooled = 1, None
        elif isinstance(op, PoolOp) and layout.input_grad[i]:
            arriving = density  # the pooled outputs' gradient, before the pool spreads it
            call(i, "backward", f"{op.kind}_pool_backward", density)
            p = op.params
            n_in, n_out = math.prod(p.in_dims), math.prod(p.out_dims)
            spread = 1 if op.kind == "max" else p.kh * p.kw
            density = min(1.0, density * n_out * spread / n_in)
            window = p.kh * p.kw if op.kind == "max" else 1
            pooled = i if op.kind == "max" else None

    forward_insns = sum(c.insns for c in calls if c.phase == "forward")
    backward_insns = sum(c.insns for c in calls if c.phase != "forward")
    commit = 0.0
    blob = 0
    for op in ops:
        if isinstance(op, FCLayer | ConvLayer):
            pre = "fc" if isinstance(op, FCLayer) else "conv"
            # ts_train_commit_ok evaluates the SGD expression once more (a check, no store):
            # counted as a second SGD pass.
            for what in ("sgd", "sgd", "range_update", "requantize"):
                case = op_case(op, f"{pre}_{what}")
                if isinstance(op, ConvLayer) and op.depthwise:
                    case = replace(case, c=1)  # filter [1][KH][KW][C]: KH*KW*C weights
                commit += kernel_insns(case, core)
            n_w, n_c = int(op.w.size), int(op.bias.size)
            blob += 5 * n_w + 12 * n_c + 8  # firmware/client/weights_blob.c: the CRC'd blob
    commit += kernel_insns(Case("crc32", c=blob), core) if blob else 0.0
    link = 0.0
    if smashed_share or grad_share:
        link = (
            kernel_insns(Case("frame_encode", c=round(smashed_share)), core)
            + kernel_insns(Case("frame_decode", c=round(grad_share)), core)
            + kernel_insns(Case("crc32", c=round(grad_share)), core)
        )
    return TrainingCost(tuple(calls), forward_insns, backward_insns, commit, link)


# ---- measuring a real client on the emulator --------------------------------------------------


@dataclass(frozen=True)
class TrainingCount:
    """Exact instructions of each sample's forward (TRAIN_STEP) and backward pass, counted by
    the plugin between firmware/client/train.c's ts_bench_begin/ts_bench_end markers."""

    forward: tuple[int, ...]
    backward: tuple[int, ...]
    cut_density: float = 1.0  # nonzero share of the int8 cut gradients the host sent

    @property
    def per_sample(self) -> float:
        """Mean forward + backward instructions of one sample."""
        return (sum(self.forward) + sum(self.backward)) / len(self.forward)


@contextlib.contextmanager
def _counting_qemu(elf: Path, machine: str, plugin: Path, counts: Path) -> Iterator[str]:
    """The firmware under QEMU with `-icount shift=0` and the counting plugin on the markers;
    yields its UART's pyserial URL. QEMU is stopped on every way out."""
    from tinysplit.core.errors import ToolMissing
    from tinysplit.host.board.launch import qemu_command
    from tinysplit.host.costmodel.count import QEMU, marker_addresses

    begin, end = marker_addresses(elf)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    argv = qemu_command(elf, machine, port, icount=True)
    qemu = shutil.which(QEMU)
    if qemu is None:
        raise ToolMissing(f"{QEMU} not found: run scripts/setup.sh (installs qemu-system-arm)")
    argv[0] = qemu
    argv += ["-plugin", f"{plugin},begin={begin:#x},end={end:#x},out={counts}"]
    log = counts.with_suffix(".qemu.txt")
    with log.open("w") as err:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=err, stderr=err)
    try:
        deadline = time.monotonic() + QEMU_START_TIMEOUT_S
        while "waiting for connection" not in log.read_text(errors="replace"):
            if proc.poll() is not None or time.monotonic() > deadline:
                tail = log.read_text(errors="replace").strip().splitlines()[-1:]
                raise InsnModelError(f"{QEMU} did not start the firmware: {' '.join(tail)}")
            time.sleep(0.05)
        yield f"socket://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(5.0)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def measure_training(
    model_dir: Path,
    board: str = "mps2_an386",
    steps: int = 1,
    build_dir: Path | None = None,
    kernels: str = "fast",
) -> TrainingCount:
    """Runs `steps` training steps of an export (its batch, lr and data order, the server
    segment on this host) on the emulated board and counts every sample's forward and backward
    pass exactly. kernels: "fast" (the optimized kernels, what boards run) or "reference" (the
    plain reference kernels: `make KERNELS=reference`)."""
    import numpy as np

    from tinysplit.core.boards import board_profile
    from tinysplit.host.board.build import build_firmware
    from tinysplit.host.costmodel.count import build_plugin
    from tinysplit.host.training.schedule import schedule
    from tinysplit.host.training.server import ServerSegment
    from tinysplit.host.training.session import Export, connect
    from tinysplit.host.training.trainer import quantize_cut_gradient

    export = Export.load(Path(model_dir))
    machine = board_profile(board).get("qemu_machine")
    if not machine:
        raise BadInput(f"board {board} is not emulated by QEMU: counting needs a qemu board")
    hyper = export.hyper
    batch = min(int(hyper.get("batch", 32)), int(export.manifest["max_batch"]))
    lr = float(hyper.get("lr", 0.05))
    with tempfile.TemporaryDirectory(prefix="tinysplit-count-") as tmp:
        base = Path(build_dir) if build_dir is not None else Path(tmp)
        plugin = build_plugin(base / "plugin")
        elf = build_firmware(
            board, export.path, base / f"fw-{board}", make_vars={"KERNELS": kernels}
        )
        counts = Path(tmp) / "counts.txt"
        with (
            _counting_qemu(elf, machine, plugin, counts) as url,
            connect(url, export) as (
                link,
                hello,
            ),
        ):
            server = ServerSegment.load(export.path / "server.keras", lr)
            order = schedule(hello.n_train, batch, 1, int(hyper.get("seed", 0)))
            nonzero = sent = 0
            for s, _ in zip(order, range(steps), strict=False):
                step = hello.committed + s.step
                smashed = link.forward(step, lr, s.indices.astype(np.int64))
                if smashed.labels is None:
                    raise InsnModelError(
                        "instruction counts of a U-shaped export (--labels client) are not "
                        "measured yet: measure its --labels host twin"
                    )
                loss, grad, _ = server.train_step(smashed.dequantize(), smashed.labels)
                q, scales = quantize_cut_gradient(grad, loss, step, smashed)
                nonzero += int(np.count_nonzero(q))
                sent += int(q.size)
                link.backward(step, q, scales)
        found = [
            int(m.group(2)) for m in map(_COUNT_LINE.match, counts.read_text().splitlines()) if m
        ]
    if len(found) != 2 * batch * steps:
        raise InsnModelError(
            f"counted {len(found)} marked intervals, expected {2 * batch * steps} "
            f"({steps} steps of {batch} samples, forward and backward)"
        )
    forward: list[int] = []
    backward: list[int] = []
    for k in range(steps):  # per step: every sample's forward, then every sample's backward
        chunk = found[2 * batch * k : 2 * batch * (k + 1)]
        forward += chunk[:batch]
        backward += chunk[batch:]
    return TrainingCount(tuple(forward), tuple(backward), nonzero / max(sent, 1))


# ---- the fitted coefficients: fitted.json (package data) -----------------------------------

FITTED_PATH = Path(__file__).with_name("fitted.json")


def _load_fitted() -> tuple[dict[str, dict[str, dict[str, float]]], dict[str, dict[str, float]]]:
    data = json.loads(FITTED_PATH.read_text())
    return data["fitted"], data["fit_error"]


#: FITTED[core][kernel][feature]: instructions per unit of the trip count `feature`;
#: FIT_ERROR[core][kernel]: the fit's largest relative error on the bench cases.
FITTED, FIT_ERROR = _load_fitted()


def format_fitted(fits: dict[str, tuple[str, Fit]]) -> str:
    """fitted.json's text for `fits` (core -> (board it was measured on, fit))."""
    data = json.loads(FITTED_PATH.read_text())
    data["measured_on"] = {core: board for core, (board, _) in fits.items()}
    data["fitted"] = {
        core: {k: f.coefficients[k] for k in KINDS if k in f.coefficients}
        for core, (_, f) in fits.items()
    }
    data["fit_error"] = {core: dict(f.max_error) for core, (_, f) in fits.items()}
    return json.dumps(data, indent=1, sort_keys=True) + "\n"


def rewrite_fitted(fits: dict[str, tuple[str, Fit]]) -> Path:
    """Rewrites fitted.json with `fits` (cores not in it keep their coefficients)."""
    merged = {
        core: (FIT_BOARDS.get(core, "?"), Fit(coef, FIT_ERROR.get(core, {})))
        for core, coef in FITTED.items()
    }
    merged.update(fits)
    FITTED_PATH.write_text(format_fitted(merged))
    return FITTED_PATH


def export_stats(model_dir: Path, ops: Sequence[ClientOp]) -> ClientStats:
    """client_stats of an export's client on its own training shard (data.npz)."""
    import numpy as np

    from tinysplit.codegen.export import input_quant, quantize_input

    with np.load(Path(model_dir) / "data.npz", allow_pickle=False) as data:
        x = data["x_train"][:ACTIVE_SAMPLES]
    scale, zp = input_quant(ops[0])
    return client_stats(ops, quantize_input(x, scale, zp))


def compare(
    model_dir: Path, board: str = "mps2_an386", steps: int = 1, kernels: str = "fast"
) -> dict[str, Any]:
    """Measured (emulator, exact) versus predicted instructions per training sample of an
    export: forward, backward, and their sum, with the ratio predicted / measured."""
    from tinysplit.codegen.export import load_client_layout
    from tinysplit.core.boards import board_profile

    ops, layout, _ = load_client_layout(Path(model_dir))
    got = measure_training(Path(model_dir), board, steps, kernels=kernels)
    pred = predict_training(
        ops,
        layout,
        str(board_profile(board)["core"]),
        cut_density=got.cut_density,
        stats=export_stats(Path(model_dir), ops),
    )
    n = len(got.forward)
    measured = {"forward": sum(got.forward) / n, "backward": sum(got.backward) / n}
    measured["per_sample"] = measured["forward"] + measured["backward"]
    predicted = {"forward": pred.forward, "backward": pred.backward, "per_sample": pred.per_sample}
    return {
        "board": board,
        "samples": n,
        "measured": measured,
        "predicted": predicted,
        "ratio": {k: predicted[k] / measured[k] for k in measured},
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tinysplit.host.costmodel.model",
        description="The per-kernel instruction cost model: show it, re-measure and refit it, "
        "or check it against a real training step on the emulator.",
    )
    parser.add_argument(
        "--fit", action="store_true", help="run the bench on the emulated cores and rewrite"
    )
    parser.add_argument(
        "--core",
        action="append",
        choices=sorted(FIT_BOARDS),
        help="only this core (repeatable; default: all)",
    )
    parser.add_argument(
        "--check",
        type=Path,
        metavar="MODEL_DIR",
        help="train one step of this export on mps2_an386: measured vs predicted per sample",
    )
    parser.add_argument(
        "--kernels",
        choices=("fast", "reference"),
        default="fast",
        help="with --check: the optimized kernels (default, what boards run) or the reference "
        "ones (the model is fitted to the optimized kernels)",
    )
    args = parser.parse_args(argv)
    try:
        if args.check is not None:
            r = compare(args.check, kernels=args.kernels)
            print(f"instructions per training sample, {args.check} on {r['board']} "
                  f"({r['samples']} samples, {args.kernels} kernels):")  # fmt: skip
            for k in ("forward", "backward", "per_sample"):
                m, p, q = r["measured"][k], r["predicted"][k], r["ratio"][k]
                print(f"  {k:<11} measured {m:>13,.0f}  predicted {p:>13,.0f}  ({q - 1:+.1%})")
            return 0
        cores = args.core or sorted(FIT_BOARDS)
        if args.fit:
            fits: dict[str, tuple[str, Fit]] = {}
            for core in cores:
                board = FIT_BOARDS[core]
                print(f"measuring {len(CASES)} kernel calls on {board} ({core}) ...", flush=True)
                fits[core] = (board, fit(CASES, measure_cases(board)))
            print(f"wrote {rewrite_fitted(fits)}")
        else:
            fits = {c: (FIT_BOARDS[c], Fit(coefficients(c), FIT_ERROR.get(c, {}))) for c in cores}
        for core, (board, f) in fits.items():
            worst = max(f.max_error.items(), key=lambda kv: kv[1], default=("-", 0.0))
            print(f"{core} ({board}): {len(f.coefficients)} kernels, worst fit {worst[0]} "
                  f"{100 * worst[1]:.1f}%")  # fmt: skip
    except TinysplitError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
