"""The host end of wire protocol v1: one request/response layer over any pyserial port.

Framing and message layouts live in :mod:`tinysplit.host.protocol`; this module knows the
conversation — HELLO, a training step (TRAIN_STEP → SMASHED… → GRAD… → STEP_DONE), evaluation
and pulling the client's weights — and turns every way it can go wrong into one clear error.
"""

from __future__ import annotations

import secrets
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt
from tqdm import tqdm

from tinysplit.host.errors import BoardSilent, ModelMismatch, ProtocolError
from tinysplit.host.protocol import (
    MAX_PAYLOAD,
    VERSION,
    ErrorMsg,
    Eval,
    Frame,
    FrameDecoder,
    GetWeights,
    Grad,
    Header,
    Hello,
    HelloReq,
    Message,
    MsgType,
    Smashed,
    StepDone,
    TrainStep,
    Weights,
    decode_message,
    encode_frame,
    grad_per_frame,
)

# Timeouts: a fixed allowance for the board to react, plus the time the bytes need on a slow
# link (QEMU's emulated UART moves ~15 KB/s; a 115200-baud UART 11.5 KB/s).
BASE_TIMEOUT_S = 5.0
SLOWEST_LINK_BYTES_PER_S = 5_000.0
HELLO_TIMEOUT_S = 10.0


def timeout_for(n_bytes: int) -> float:
    """Seconds to wait for a reply that carries about n_bytes."""
    return BASE_TIMEOUT_S + n_bytes / SLOWEST_LINK_BYTES_PER_S


class Port(Protocol):
    """What the link needs of a pyserial port."""

    def write(self, data: bytes, /) -> int | None: ...
    def read(self, size: int = 1, /) -> bytes: ...
    @property
    def in_waiting(self) -> int: ...


@dataclass
class SmashedBatch:
    """Cut-layer activations of several samples, as the board sent them."""

    acts: npt.NDArray[np.int8]  # [n, cut]
    labels: npt.NDArray[np.int64]  # [n]
    scale: float
    zero_point: int

    def dequantize(self) -> npt.NDArray[np.float32]:
        return (np.float32(self.scale) * (self.acts.astype(np.float32) - self.zero_point)).astype(
            np.float32
        )


@dataclass
class LinkStats:
    bytes_to_server: int = 0  # bytes the board sent (on the wire, framing included)
    bytes_to_client: int = 0  # bytes the host sent
    frames_in: int = 0
    frames_out: int = 0


class ClientLink:
    """A conversation with one board."""

    def __init__(self, port: Port, *, trace: bool = False) -> None:
        self.port = port
        self.trace = trace
        self.decoder = FrameDecoder()
        self.session = 0
        self.hello_msg: Hello | None = None
        self.stats = LinkStats()
        self._pending: list[Frame] = []
        self._t0 = time.monotonic()
        self._last = self._t0

    # -- frames -----------------------------------------------------------------------------
    def _trace(self, direction: str, frame: Frame, wire_size: int | None) -> None:
        now = time.monotonic()
        h = frame.header
        name = MsgType(h.type).name if h.type in MsgType._value2member_map_ else hex(h.type)
        wire = f" wire={wire_size}B" if wire_size is not None else ""
        # tqdm.write keeps the lines apart from a progress bar on the same terminal
        tqdm.write(
            f"[{now - self._t0:9.4f}s +{(now - self._last) * 1e3:7.1f}ms] {direction} "
            f"{name:<11} step={h.step} seq={h.seq} len={h.length}{wire}",
            file=sys.stderr,
        )
        self._last = now

    def send(self, msg: Message, *, step: int = 0, seq: int = 0) -> None:
        payload = msg.pack()
        wire = encode_frame(int(msg.TYPE), self.session, step, seq, payload)
        self.port.write(wire)
        self.stats.bytes_to_client += len(wire)
        self.stats.frames_out += 1
        if self.trace:
            header = Header(int(msg.TYPE), self.session, step, seq, len(payload))
            self._trace("->", Frame(header, payload), len(wire))

    def _frames(self, timeout_s: float) -> Iterator[Frame]:
        """Yields frames as they arrive until the caller stops; BoardSilent after timeout_s
        without a single byte."""
        while self._pending:
            yield self._pending.pop(0)
        deadline = time.monotonic() + timeout_s
        while True:
            waiting = self.port.in_waiting
            data = self.port.read(waiting if waiting > 0 else 1)
            if not data:
                if time.monotonic() > deadline:
                    if self.decoder.last_bad_version is not None:
                        raise ModelMismatch(
                            f"the board speaks protocol v{self.decoder.last_bad_version}, this "
                            f"host v{VERSION}: flash firmware built by this version of tinysplit"
                        )
                    raise BoardSilent(
                        f"the board sent nothing for {timeout_s:.0f} s: is it running tinysplit "
                        "firmware and connected to this port? (reset it and retry)"
                    )
                continue
            deadline = time.monotonic() + timeout_s
            self.stats.bytes_to_server += len(data)
            for frame in self.decoder.feed(data):
                self.stats.frames_in += 1
                if self.trace:
                    self._trace("<-", frame, None)
                yield frame

    def _expect(self, frame: Frame, want: MsgType) -> Message:
        msg = decode_message(frame)
        if isinstance(msg, ErrorMsg):
            raise ProtocolError(f"the board refused a request: {msg.message} (code {msg.code})")
        if isinstance(msg, Hello) and want != MsgType.HELLO:
            raise ProtocolError(
                "the board rebooted in the middle of a run (it said HELLO again); restart the run"
            )
        if frame.header.type != want:
            raise ProtocolError(
                f"expected {want.name} from the board, got {MsgType(frame.header.type).name}"
            )
        return msg

    @property
    def n_train(self) -> int:
        assert self.hello_msg is not None, "call hello() first"
        return self.hello_msg.n_train

    @property
    def n_test(self) -> int:
        assert self.hello_msg is not None, "call hello() first"
        return self.hello_msg.n_test

    # -- conversation -----------------------------------------------------------------------
    def hello(self, expected_hash: bytes | None = None) -> Hello:
        """Asks the board who it is; checks protocol version and model hash.

        The request carries a random nonce as its step id and the board echoes it, so a HELLO
        the board sent when it booted is never taken for the reply."""
        nonce = secrets.randbelow(0xFFFF_FFFE) + 1
        self.send(HelloReq(), step=nonce)
        hello: Hello | None = None
        for frame in self._frames(HELLO_TIMEOUT_S):
            msg = decode_message(frame)
            if isinstance(msg, Hello) and frame.header.step == nonce:
                hello = msg
                self.session = frame.header.session
                break
        assert hello is not None
        if hello.proto != VERSION:
            raise ModelMismatch(
                f"the board speaks protocol v{hello.proto}, this host v{VERSION}: "
                "flash firmware built by this version of tinysplit"
            )
        if expected_hash is not None and hello.model_hash != expected_hash:
            raise ModelMismatch(
                f"model hash mismatch: the board runs {hello.model_hash.hex()}, the export "
                f"directory has {expected_hash.hex()}; rebuild and flash the firmware from "
                "this export, or point --model-dir at the export the board was built from"
            )
        self.hello_msg = hello
        return hello

    def _collect_smashed(self, step: int, count: int, cut: int) -> SmashedBatch:
        acts = np.empty((count, cut), dtype=np.int8)
        labels = np.empty(count, dtype=np.int64)
        got = 0
        scale, zp = 0.0, 0
        for frame in self._frames(timeout_for(count * (cut + 1))):
            msg = self._expect(frame, MsgType.SMASHED)
            assert isinstance(msg, Smashed)
            if frame.header.step != step:
                continue  # a late reply to an earlier request
            first, n = frame.header.seq, len(msg.labels)
            if first != got or first + n > count or msg.acts.shape[1] != cut:
                raise ProtocolError(
                    f"SMASHED frame out of order (samples {first}..{first + n}, expected {got})"
                )
            acts[first : first + n] = msg.acts
            labels[first : first + n] = np.frombuffer(msg.labels, dtype=np.uint8)
            scale, zp = msg.scale, msg.zero_point
            got += n
            if got == count:
                break
        return SmashedBatch(acts, labels, scale, zp)

    def forward(self, step: int, lr: float, indices: npt.NDArray[np.integer]) -> SmashedBatch:
        """Starts a training step: the board streams the minibatch's cut activations."""
        assert self.hello_msg is not None, "call hello() first"
        self.send(TrainStep(float(lr), tuple(int(i) for i in indices)), step=step)
        return self._collect_smashed(step, len(indices), self.hello_msg.cut_size)

    def backward(
        self, step: int, grads: npt.NDArray[np.int8], scales: npt.NDArray[np.float32]
    ) -> StepDone:
        """Sends the minibatch's cut gradients; returns the board's STEP_DONE."""
        assert self.hello_msg is not None
        per = grad_per_frame(self.hello_msg.cut_size)
        for first in range(0, len(grads), per):
            part = slice(first, first + per)
            self.send(Grad(scales[part].astype(np.float32), grads[part]), step=step, seq=first)
        for frame in self._frames(timeout_for(grads.size)):
            msg = self._expect(frame, MsgType.STEP_DONE)
            if frame.header.step == step:
                assert isinstance(msg, StepDone)
                return msg
        raise AssertionError("unreachable")

    def evaluate(self, split: int, start: int, count: int, request_id: int) -> SmashedBatch:
        """Forward passes of training (split 0) or test (split 1) samples, nothing kept."""
        assert self.hello_msg is not None
        self.send(Eval(split, start, count), step=request_id)
        return self._collect_smashed(request_id, count, self.hello_msg.cut_size)

    def _weights_reply(self, offset: int) -> Weights:
        for frame in self._frames(timeout_for(MAX_PAYLOAD)):
            msg = self._expect(frame, MsgType.WEIGHTS)
            if isinstance(msg, Weights) and msg.offset == offset:
                return msg
        raise AssertionError("unreachable: _frames raises on timeout")

    def pull_weights(self, request_id: int = 0) -> bytes:
        """Reads the client's whole weight blob (docs/protocol.md)."""
        chunk = MAX_PAYLOAD - 8
        out = bytearray()
        total: int | None = None
        while total is None or len(out) < total:
            self.send(GetWeights(len(out), chunk), step=request_id)
            reply = self._weights_reply(len(out))
            total = reply.total
            if len(out) < total and not reply.data:
                raise ProtocolError("the board sent an empty WEIGHTS chunk before the end")
            out += reply.data
        return bytes(out)
