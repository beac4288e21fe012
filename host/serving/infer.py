"""Split inference: the board runs its layers on a sample, the host finishes the forward.

One EVAL per sample (with the TIMING flag), so each prediction is timed on its own:

    device  the board's forward passes, from the cycles it reports (EVAL_DONE) and its clock
    wire    the rest of the round trip: request out, smashed data back, framing on both sides
            (on a real UART mostly bytes / baud; on the native build a socket's latency)
    server  the host's forward pass of the server segment on that sample

Logits are the server segment's on the dequantized int8 cut activations, one sample at a time,
so that the golden client's activations through the same server segment give them bit for bit
(tests/e2e/test_serving.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from tinysplit.core.protocol import HeadMode, Split
from tinysplit.host.transport.link import HeadResult, SmashedBatch

#: EVAL request ids of an inference run start here (training's use small step numbers).
FIRST_REQUEST = 0x4000_0000
UNKNOWN = 0xFF  # the label of a live sample whose class the board does not know


class TimedClient(Protocol):
    """What inference needs of a link (ClientLink)."""

    def timed_evaluate(
        self, split: int, start: int, count: int, request_id: int
    ) -> tuple[SmashedBatch, int]: ...
    def head(
        self,
        step: int,
        mode: HeadMode,
        scales: npt.NDArray[np.float32],
        acts: npt.NDArray[np.int8],
    ) -> HeadResult: ...


class Predictor(Protocol):
    def predict(self, a: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]: ...


@dataclass
class Inference:
    """Per sample: label (UNKNOWN if the board does not know it), logits, times (s), bytes.
    U-shaped: no label and no logit reaches the host; `correct` has the board's verdicts and
    `logits` the server segment's outputs (the head's inputs)."""

    labels: list[int] = field(default_factory=list)
    logits: list[npt.NDArray[np.float32]] = field(default_factory=list)
    acts: list[npt.NDArray[np.int8]] = field(default_factory=list)
    device_s: list[float] = field(default_factory=list)
    wire_s: list[float] = field(default_factory=list)
    server_s: list[float] = field(default_factory=list)
    bytes_up: list[int] = field(default_factory=list)  # board -> host
    bytes_down: list[int] = field(default_factory=list)  # host -> board
    correct: list[int] = field(default_factory=list)  # U-shaped: 1 if the board's head was right

    @property
    def predictions(self) -> npt.NDArray[np.int64]:
        return np.array([int(np.argmax(x)) for x in self.logits], dtype=np.int64)

    def accuracy(self) -> float | None:
        """Over the samples whose label is known; None if there are none."""
        if self.correct:
            return float(np.mean(self.correct))
        y = np.array(self.labels)
        known = y != UNKNOWN
        if not known.any():
            return None
        return float(np.mean(self.predictions[known] == y[known]))


def predict(
    link: TimedClient,
    server: Predictor,
    indices: range,
    *,
    split: int = int(Split.TEST),
    clock_hz: float | None,
    byte_counts: Callable[[], tuple[int, int]],
    progress: Callable[[], object] = lambda: None,
) -> Inference:
    """Predicts sample by sample (progress() after each). byte_counts() gives the link's (bytes
    to host, bytes to board) so far."""
    out = Inference()
    for n, i in enumerate(indices):
        up0, down0 = byte_counts()
        t0 = time.perf_counter()
        batch, cycles = link.timed_evaluate(split, i, 1, FIRST_REQUEST + n)
        t1 = time.perf_counter()
        logits = server.predict(batch.dequantize())[0]
        t2 = time.perf_counter()
        if batch.labels is None:  # U-shaped: the board's head finishes, against its label
            from tinysplit.host.training.trainer import quantize_head_input

            q, scales = quantize_head_input(logits[None, :], FIRST_REQUEST + n)
            out.correct.append(link.head(FIRST_REQUEST + n, HeadMode.EVAL, scales, q).correct)
            t1 += time.perf_counter() - t2  # the head's round trip is wire (and head) time
        up1, down1 = byte_counts()
        device = cycles / clock_hz if clock_hz else float("nan")
        out.labels.append(UNKNOWN if batch.labels is None else int(batch.labels[0]))
        out.logits.append(np.asarray(logits, np.float32))
        out.acts.append(batch.acts[0].copy())
        out.device_s.append(device)
        out.wire_s.append((t1 - t0) - device if clock_hz else t1 - t0)
        out.server_s.append(t2 - t1)
        out.bytes_up.append(up1 - up0)
        out.bytes_down.append(down1 - down0)
        progress()
    return out


def _ms(values: list[float]) -> dict[str, float | None]:
    a = np.array(values, dtype=np.float64)
    if a.size == 0 or np.isnan(a).all():
        return {"median_ms": None, "p95_ms": None}
    return {
        "median_ms": round(float(np.nanmedian(a)) * 1e3, 4),
        "p95_ms": round(float(np.nanpercentile(a, 95)) * 1e3, 4),
    }


def report(inf: Inference, *, board: str, live: bool, clock_hz: float | None) -> dict[str, Any]:
    return {
        "board": board,
        "samples": len(inf.labels),
        "source": "live (ts_board_read_sample)" if live else "test shard",
        "accuracy": inf.accuracy(),
        "device": _ms(inf.device_s),
        "wire": _ms(inf.wire_s),
        "server": _ms(inf.server_s),
        "bytes_to_host_per_sample": float(np.mean(inf.bytes_up)) if inf.bytes_up else 0.0,
        "bytes_to_board_per_sample": float(np.mean(inf.bytes_down)) if inf.bytes_down else 0.0,
        "clock_hz": clock_hz,
    }


def format_report(r: dict[str, Any]) -> str:
    def row(name: str, t: dict[str, float | None], note: str) -> str:
        if t["median_ms"] is None:
            return f"  {name:<7} unknown  ({note})"
        return f"  {name:<7} median {t['median_ms']:9.3f} ms   p95 {t['p95_ms']:9.3f} ms   {note}"

    acc = "unknown (no labels)" if r["accuracy"] is None else f"{r['accuracy']:.4f}"
    clock = (
        f"the board's {r['clock_hz'] / 1e6:g} MHz clock"
        if r["clock_hz"]
        else "the board's clock is unknown: device time is inside the wire time"
    )
    return "\n".join(
        [
            f"== tinysplit infer: {r['samples']} samples from the {r['source']} on {r['board']} ==",
            f"accuracy   {acc}",
            "per sample:",
            row("device", r["device"], f"cycles the board reports, at {clock}"),
            row("wire", r["wire"], "the round trip minus device time"),
            row("server", r["server"], "server segment forward on this host"),
            f"  bytes    {r['bytes_to_host_per_sample']:.0f} to the host, "
            f"{r['bytes_to_board_per_sample']:.0f} to the board",
        ]
    )
