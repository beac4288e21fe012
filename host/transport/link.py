"""The host end of wire protocol v5: one request/response layer over any pyserial port.

Framing and message layouts live in :mod:`tinysplit.core.protocol`; this module knows the
conversation — HELLO, SYNC, a training step (TRAIN_STEP → SMASHED… → GRAD… + COMMIT →
STEP_DONE; U-shaped: HEAD_IN… → HEAD_OUT… before GRAD), evaluation, pulling and pushing the
client's state, STATS — and makes every request survive a lossy link: each is sent again after
a timeout that scales with its size, a bounded number of times, and the board answers a repeat
from what it kept without applying it twice (docs/protocol.md, "Exactly once"). A board that
reboots is noticed by its new session id (BoardReset); what to do then is the trainer's
business. A paired board (HELLO says so) talks only sealed: hello() opens a sealed session
with the export's pairing key (OPEN), and every frame after that is encrypted and
authenticated both ways (core/protocol/secure.py); frames that fail are counted and dropped.
"""

from __future__ import annotations

import enum
import secrets
import sys
import time
import zlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Protocol

import numpy as np
import numpy.typing as npt
from tqdm import tqdm

from tinysplit.core.errors import BoardSilent, ModelMismatch, PortError, ProtocolError
from tinysplit.core.protocol import (
    PUT_WEIGHTS_MAX_DATA,
    SEALED,
    TRAIN_STEP_MAX_COUNT,
    VERSION,
    WEIGHTS_MAX_DATA,
    BoardState,
    Commit,
    ErrorCode,
    ErrorMsg,
    Eval,
    EvalDone,
    EvalFlag,
    Frame,
    FrameDecoder,
    GetWeights,
    Grad,
    Header,
    HeadIn,
    HeadMode,
    HeadOut,
    Hello,
    HelloReq,
    Message,
    MsgType,
    Open,
    PackedGrad,
    PackedSmashed,
    PutWeights,
    Smashed,
    Stats,
    StatsReq,
    Status,
    StepDone,
    Sync,
    TrainStep,
    Weights,
    decode_message,
    encode_frame,
    grad_per_frame,
    head_per_frame,
)
from tinysplit.core.protocol import wire as wire_codec
from tinysplit.core.protocol.secure import (
    Refusal,
    SealedSession,
    derive_session_key,
    open_header,
    open_tag,
)
from tinysplit.core.protocol.spec import LAYOUTS, Direction


@dataclass(frozen=True)
class Timeouts:
    """How long to wait, and how often to try (esptool's habit: named, scaled with size)."""

    reply_s: float = 0.5  # the board's reaction time, before its bytes arrive
    bytes_per_s: float = (
        5_000.0  # slowest link the bytes must cross (QEMU ~15 KB/s, 115200 baud 11.5)
    )
    silence_s: float = 10.0  # no byte at all from the board this long: BoardSilent
    gap_s: float = 0.2  # a frame in progress with no new byte this long was cut short: dropped
    attempts: int = 16  # sends of one request in a row without progress before giving up
    backoff_max: float = 8.0  # the reply timeout doubles with each retry, up to this factor

    def reply(self, n_bytes: int, retry: int = 0) -> float:
        """Seconds to wait for the reply to a request when n_bytes cross the link both ways."""
        backoff = min(2.0**retry, self.backoff_max)
        return (self.reply_s + n_bytes / self.bytes_per_s) * backoff


class BoardReset(ProtocolError):
    """The board rebooted (its frames carry a new session id): the step in flight is lost."""


class PairingRefused(ProtocolError):
    """A paired board refused this host's key, or a board and host disagree on pairing."""


class StepLost(ProtocolError):
    """The board no longer holds the step in flight (it answered NOT_IN_FLIGHT, or is loading
    weights): the step must be run again from a state both sides agree on."""


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
    labels: npt.NDArray[np.int64] | None  # [n]; None: a U-shaped board keeps its labels
    scale: float
    zero_point: int
    wire: int = 0  # the wire format it came in (core/protocol/wire.py bits; 0: int8)

    def dequantize(self) -> npt.NDArray[np.float32]:
        return (np.float32(self.scale) * (self.acts.astype(np.float32) - self.zero_point)).astype(
            np.float32
        )


@dataclass
class HeadResult:
    """What a U-shaped board's head answered for a batch (HEAD_OUT frames joined)."""

    correct: int
    loss_sum: float
    grads: npt.NDArray[np.int8] | None = None  # TRAIN: [n, head_size]
    scales: npt.NDArray[np.float32] | None = None  # TRAIN: [n]

    def gradient(self) -> npt.NDArray[np.float32]:
        """TRAIN: the float gradient of the mean loss with respect to HEAD_IN's activations."""
        assert self.grads is not None and self.scales is not None
        return (self.grads.astype(np.float32) * self.scales[:, None]).astype(np.float32)


@dataclass
class LinkStats:
    """What the host saw of the link (the board's own counters come from STATS)."""

    bytes_to_server: int = 0  # bytes the board sent (on the wire, framing included)
    bytes_to_client: int = 0  # bytes the host sent
    frames_in: int = 0
    frames_out: int = 0
    timeouts: int = 0  # replies that did not come in time
    retransmits: int = 0  # requests sent again (after a timeout, or when the board asked)
    duplicates: int = 0  # replies received again
    stale: int = 0  # frames for another request or step, ignored
    rx_gaps: int = 0  # frames cut short (no byte for Timeouts.gap_s), dropped
    resets: int = 0  # board reboots noticed
    auth_failures: int = 0  # sealed frames whose tag did not verify: forged, or not ours
    replays: int = 0  # sealed frames whose counter was taken before
    unsealed: int = 0  # frames in clear from a paired board that only HELLO may be

    def as_dict(self) -> dict[str, int]:
        return {f.name: int(getattr(self, f.name)) for f in fields(self)}


#: Counters of frames refused for want of the pairing key, on either side of a link.
REFUSALS = ("auth_failures", "replays", "unsealed")


def refusal_line(host: dict[str, int], board: dict[str, int]) -> str | None:
    """One line naming the frames either side refused as forged, replayed or unsealed (host:
    LinkStats.as_dict(); board: STATS, since its boot); None when there were none."""
    parts = []
    for side, stats in (("board", board), ("host", host)):
        n = [int(stats.get(k, 0)) for k in REFUSALS]
        if any(n):
            parts.append(f"the {side} refused {n[0]} forged, {n[1]} replayed, {n[2]} unsealed")
    if not parts:
        return None
    return (
        f"tinysplit: {'; '.join(parts)} frame(s): something on the link sent frames without "
        "this pairing key (each was dropped and changed nothing)"
    )


class _Verdict(enum.Enum):
    DONE = enum.auto()  # the request is answered
    PROGRESS = enum.auto()  # part of the answer came: keep waiting, the board is alive
    RESEND = enum.auto()  # the board asks for the request again
    IGNORE = enum.auto()  # not for this request


DONE, PROGRESS, RESEND, IGNORE = _Verdict


def _nonce() -> int:
    return secrets.randbelow(0x7FFF_FFFE) + 1


def _sent_by_a_host(frame: Frame) -> bool:
    """A request: only a host sends these, so one arriving here is our own, echoed."""
    layout = LAYOUTS.get(MsgType(frame.header.type)) if frame.header.type in _TYPES else None
    return layout is not None and layout.direction == "host->device"


_TYPES = {int(t) for t in MsgType}


class ClientLink:
    """A conversation with one board."""

    def __init__(
        self,
        port: Port,
        *,
        trace: bool = False,
        timeouts: Timeouts | None = None,
        key: bytes | None = None,
        key_name: str = "this host's pairing key",
    ):
        """key: the pairing key of the export the board was built from (None: an --insecure
        export, whose board talks in clear); key_name: where it came from, for messages."""
        self.port = port
        self.key = key
        self.key_name = key_name
        self.sealed: SealedSession | None = None  # the open sealed session, if any
        self._opening = False  # an OPEN is in flight: its session is not established yet
        self.trace = trace
        self.timeouts = timeouts or Timeouts()
        self.decoder = FrameDecoder()
        self.session = 0
        self.hello_msg: Hello | None = None
        self._sent: tuple[int, SmashedBatch] | None = None  # the last step's activations
        self.weights_size: int | None = None  # of the weight blob, once a WEIGHTS came
        # CRC of the weights the board holds as far as this host knows (HELLO, STATUS,
        # STEP_DONE): each TRAIN_STEP carries it, and a board holding others refuses the step.
        self.weights_crc: int | None = None
        self.stats = LinkStats()
        self._pending: deque[tuple[Frame, bool]] = deque()  # (frame, it came sealed)
        self.last_sealed = False  # whether the frame _next_frame returned last came sealed
        self._old_sessions: set[int] = set()  # of boots before this one: their frames are late
        self._t0 = time.monotonic()
        self._last = self._t0
        self._last_rx = self._t0  # the last byte from the board
        self._last_frame = self._t0  # the last valid frame

    # -- frames -----------------------------------------------------------------------------
    def _trace(self, direction: str, frame: Frame, wire_size: int | None, note: str = "") -> None:
        now = time.monotonic()
        h = frame.header
        name = MsgType(h.type).name if h.type in MsgType._value2member_map_ else hex(h.type)
        wire = f" wire={wire_size}B" if wire_size is not None else ""
        # tqdm.write keeps the lines apart from a progress bar on the same terminal
        tqdm.write(
            f"[{now - self._t0:9.4f}s +{(now - self._last) * 1e3:7.1f}ms] {direction} "
            f"{name:<11} step={h.step} seq={h.seq} len={h.length}{wire}{note}",
            file=sys.stderr,
        )
        self._last = now

    def note(self, text: str) -> None:
        """A line in the trace (reboots, retries) when tracing."""
        if self.trace:
            tqdm.write(f"[{time.monotonic() - self._t0:9.4f}s] -- {text}", file=sys.stderr)

    def send(
        self, msg: Message, *, step: int = 0, seq: int = 0, again: bool = False, clear: bool = False
    ) -> int:
        """Writes one frame, after a 0x00 that ends any partial frame the link left at the
        board; sealed while a sealed session is open, unless `clear`. Returns the bytes
        written."""
        payload = msg.pack()
        if self.sealed is not None and not clear:
            wire = b"\x00" + self.sealed.seal(int(msg.TYPE), step, seq, payload)
        else:
            wire = b"\x00" + encode_frame(int(msg.TYPE), self.session, step, seq, payload)
        try:
            self.port.write(wire)
        except OSError as exc:
            raise PortError(f"lost the connection to the board: {exc}") from exc
        self.stats.bytes_to_client += len(wire)
        self.stats.frames_out += 1
        if self.trace:
            header = Header(int(msg.TYPE), self.session, step, seq, len(payload))
            self._trace("->", Frame(header, payload), len(wire), " (again)" if again else "")
        return len(wire)

    def _next_frame(self, deadline: float) -> Frame | None:
        """The next valid frame from the board, or None once the deadline passes."""
        while not self._pending:
            if time.monotonic() >= deadline:
                return None
            try:
                waiting = self.port.in_waiting
                data = self.port.read(waiting if waiting > 0 else 1)
            except OSError as exc:  # pyserial's SerialException is one
                raise PortError(f"lost the connection to the board: {exc}") from exc
            now = time.monotonic()
            if not data:
                if self.decoder.in_frame and now - self._last_rx > self.timeouts.gap_s:
                    self.decoder.expire()
                    self.stats.rx_gaps += 1
                continue
            self._last_rx = now
            self.stats.bytes_to_server += len(data)
            for frame in self.decoder.feed(data):
                self._last_frame = now
                self.stats.frames_in += 1
                taken = self._unseal(frame)
                if taken is None:
                    continue
                if self.trace:
                    self._trace("<-", taken, None, " (sealed)" if taken is not frame else "")
                self._pending.append((taken, taken is not frame))
        frame, self.last_sealed = self._pending.popleft()
        return frame

    def _unseal(self, frame: Frame) -> Frame | None:
        """The clear frame to act on, or None for one refused (counted). A sealed frame is
        opened with the session's key; in clear, a paired board sends only HELLO."""
        if not frame.header.type & SEALED:
            if self.sealed is not None and frame.header.type != MsgType.HELLO:
                self.stats.unsealed += 1
                return None
            return frame
        if self.sealed is None:
            self.stats.stale += 1  # of a session this host closed (or never had)
            return None
        opened = self.sealed.open(frame)
        if opened is Refusal.FORGED:
            if frame.header.session != self.sealed.session:
                self.stats.stale += 1  # an earlier session's, or another boot's
            else:
                self.stats.auth_failures += 1
            return None
        if opened is Refusal.REPLAY:
            self.stats.replays += 1
            return None
        assert isinstance(opened, Frame)
        return opened

    def _check_session(self, frame: Frame) -> bool:
        """False for a late frame of an earlier boot. A frame with a session id never seen
        before: the board rebooted (BoardReset)."""
        session = frame.header.session
        if not self.session or session == self.session:
            return True
        if session in self._old_sessions:
            return False
        old, self.session = self.session, session
        self._old_sessions.add(old)
        self.stats.resets += 1
        self._pending.clear()
        self.sealed = None  # a new boot has no sealed session: hello() opens one
        self.note(f"board rebooted: session {old:08x} -> {session:08x}")
        raise BoardReset(
            f"the board rebooted in the middle of a run (session {old:08x} became "
            f"{session:08x}): the step in flight is lost"
        )

    def _check_sealed_session(self, frame: Frame) -> None:
        """A HELLO in clear with step 0 while a sealed session is open: the board says it holds
        no session for this host's frames. It rebooted with the same session id (a board whose
        boot entropy repeats, as on QEMU) or another host opened it: BoardReset, so that the
        trainer says HELLO, OPENs again and restores the board's state."""
        h = frame.header
        if (
            self.sealed is None
            or self._opening
            or self.last_sealed
            or h.type != MsgType.HELLO
            or h.step != 0
        ):
            return
        self.sealed = None
        self.stats.resets += 1
        self._pending.clear()
        self.note(f"board {h.session:08x} holds no sealed session: it rebooted or was re-opened")
        raise BoardReset(
            f"the board (session {h.session:08x}) lost this host's sealed session in the middle "
            "of a run (it rebooted, or another host opened it): the step in flight is lost"
        )

    def _silent(self, what: str, waited: float, start: float) -> BoardSilent:
        if self._last_rx <= max(self._last_frame, start):
            return BoardSilent(
                f"the board sent nothing for {waited:g} s ({what} unanswered): is it running "
                "tinysplit firmware and connected to this port? (reset it and retry)"
            )
        return self._garbage(what, f"for {waited:g} s")

    def _garbage(self, what: str, during: str) -> BoardSilent:
        d = self.decoder.stats()
        drops = ", ".join(f"{k} {v}" for k, v in d.items() if v and k != "frames_ok")
        return BoardSilent(
            f"no valid frame from the board {during}, only bytes that fail the frame checks "
            f"({drops or 'no frame ended'}): wrong baud rate, or not tinysplit firmware on this "
            f"port? ({what} unanswered)"
        )

    def _converse(
        self,
        what: str,
        send: Callable[[bool], int],
        handle: Callable[[Frame, Message], _Verdict],
        reply_bytes: int,
    ) -> None:
        """send(again) the request, then hand every frame to handle() until it says DONE.

        No reply in time: send again, with a doubling timeout, at most Timeouts.attempts times
        in a row without progress; BoardSilent when no valid frame came for Timeouts.silence_s
        (nothing at all, or only garbage). A frame with a new session id raises BoardReset."""
        t = self.timeouts
        start = time.monotonic()
        sent = send(False)
        misses = 0
        deadline = start + t.reply(reply_bytes + sent)
        while True:
            # never wait past the point where the board counts as silent
            frame = self._next_frame(min(deadline, max(self._last_frame, start) + t.silence_s))
            now = time.monotonic()
            if self.session == 0 and self.decoder.last_bad_version is not None:
                raise ModelMismatch(
                    f"the board speaks protocol v{self.decoder.last_bad_version}, this host "
                    f"v{VERSION}: flash firmware built by this version of tinysplit"
                )
            if frame is None:
                self.stats.timeouts += 1
                if now - max(self._last_frame, start) >= t.silence_s:
                    raise self._silent(what, t.silence_s, start)
                misses += 1
                if misses >= t.attempts:
                    if self.decoder.frames_ok == 0:
                        raise self._garbage(what, f"after {misses} attempts")
                    raise BoardSilent(
                        f"no valid reply to {what} after {misses} attempts: the link loses "
                        f"too much (host counters: {self._counters()})"
                    )
                self.stats.retransmits += 1
                self.note(f"no reply to {what} in time: sending it again ({misses})")
                sent = send(True)
                deadline = time.monotonic() + t.reply(reply_bytes + sent, misses)
                continue
            if _sent_by_a_host(frame):
                raise PortError(
                    f"the port echoes what it is sent ({what} came back): a loopback adapter, "
                    "TX wired to RX, or a program that echoes? Connect the board's UART to "
                    "this port"
                )
            if not self._check_session(frame):
                self.stats.stale += 1
                continue
            self._check_sealed_session(frame)
            msg = decode_message(frame)
            verdict = handle(frame, msg)
            if verdict is DONE:
                return
            if verdict is PROGRESS:
                misses = 0
                deadline = max(deadline, now + t.reply(reply_bytes))
            elif verdict is RESEND:
                misses += 1
                if misses >= t.attempts:
                    raise ProtocolError(f"the board kept refusing {what} ({self._counters()})")
                self.stats.retransmits += 1
                sent = send(True)
                deadline = time.monotonic() + t.reply(reply_bytes + sent, misses)
            else:
                self.stats.stale += 1  # e.g. a late copy of the boot HELLO, an old reply

    def _counters(self) -> str:
        both = {**self.stats.as_dict(), **self.decoder.stats()}
        keep = ("timeouts", "retransmits", "crc_errors", "cobs_errors", "oversize", "resyncs")
        return ", ".join(f"{k} {both[k]}" for k in keep)

    @staticmethod
    def _refused(what: str, msg: ErrorMsg) -> ProtocolError:
        return ProtocolError(f"the board refused {what}: {msg.describe()}")

    @property
    def n_train(self) -> int:
        assert self.hello_msg is not None, "call hello() first"
        return self.hello_msg.n_train

    @property
    def n_test(self) -> int:
        assert self.hello_msg is not None, "call hello() first"
        return self.hello_msg.n_test

    @property
    def cut_size(self) -> int:
        assert self.hello_msg is not None, "call hello() first"
        return self.hello_msg.cut_size

    @property
    def wire(self) -> int:
        """The board's wire format (HELLO's flags; core/protocol/wire.py bits, 0: int8)."""
        assert self.hello_msg is not None, "call hello() first"
        return self.hello_msg.flags & wire_codec.ALL_BITS

    # -- conversation -----------------------------------------------------------------------
    def hello(self, expected_hash: bytes | None = None) -> Hello:
        """Asks the board who it is; checks protocol version and model hash; takes its session.

        The request carries a random nonce as its step id and the board echoes it, so a HELLO
        the board sent when it booted is never taken for the reply."""
        nonce = _nonce()
        if self.session:
            self._old_sessions.add(self.session)
        self.session = 0
        self.sealed = None
        got: list[tuple[Hello, int]] = []

        def handle(frame: Frame, msg: Message) -> _Verdict:
            if isinstance(msg, Hello) and frame.header.step == nonce:
                got.append((msg, frame.header.session))
                return DONE
            return IGNORE

        self._converse(
            "HELLO_REQ",
            lambda again: self.send(HelloReq(), step=nonce, again=again, clear=True),
            handle,
            64,
        )
        hello, self.session = got[0]
        self._old_sessions.discard(self.session)
        self._pending.clear()
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
        if hello.paired:
            hello = self._open(hello)
        elif self.key is not None:
            raise PairingRefused(
                "the board has no pairing key but this host holds one: a board flashed from an "
                "--insecure export (or something posing as the board); this host talks to it "
                "only sealed"
            )
        self.hello_msg = hello
        self.weights_crc = hello.weights_crc
        return hello

    def _open_once(self, key: bytes, challenge: int) -> tuple[Hello, bool]:
        """One OPEN for the board's challenge: its HELLO answer, and whether it came sealed."""
        host_nonce = secrets.token_bytes(8)
        nonce = _nonce()
        session_key = derive_session_key(key, challenge, host_nonce)
        tag = open_tag(session_key, open_header(self.session, nonce), host_nonce)
        got: list[tuple[Hello, bool]] = []

        def handle(frame: Frame, msg: Message) -> _Verdict:
            if isinstance(msg, Hello) and frame.header.step == nonce:
                got.append((msg, self.last_sealed))
                return DONE
            return IGNORE

        self.sealed = SealedSession(session_key, self.session, sends=Direction.TO_BOARD)
        self._opening = True
        try:
            self._converse(
                "OPEN",
                lambda again: self.send(Open(host_nonce, tag), step=nonce, again=again, clear=True),
                handle,
                64,
            )
        finally:
            self._opening = False
            if not (got and got[0][1]):
                self.sealed = None  # refused (or failed): no session
        return got[0]

    def _open(self, hello: Hello) -> Hello:
        """OPEN: proves the pairing key to a paired board and starts a sealed session. The
        board answers a good OPEN with HELLO, sealed, and any other with HELLO in clear."""
        if self.key is None:
            raise PairingRefused(
                "the board is paired: it talks only to a host holding the pairing key its "
                "export wrote (DIR/pairing.key); point --model-dir at that export"
            )
        for _ in range(3):
            reply, sealed = self._open_once(self.key, hello.challenge)
            if sealed:
                return reply
            if reply.challenge == hello.challenge:
                raise PairingRefused(
                    f"the board refused {self.key_name}: it was built from another export "
                    "(each export draws its own key); point --model-dir at the export this "
                    "board runs, or flash it from this one"
                )
            hello = reply  # another OPEN came first: try again with the board's new challenge
        raise PairingRefused("the board kept refusing OPEN: another host is opening it too")

    def _status_request(self, what: str, msg: Message, nonce: int) -> Status:
        got: list[Status] = []

        def handle(frame: Frame, reply: Message) -> _Verdict:
            if frame.header.step != nonce:
                return IGNORE
            if isinstance(reply, ErrorMsg):
                raise self._refused(what, reply)
            if isinstance(reply, Status):
                got.append(reply)
                return DONE
            return IGNORE

        self._converse(what, lambda again: self.send(msg, step=nonce, again=again), handle, 64)
        return got[0]

    def sync(self, committed: int) -> Status:
        """Drops the board's uncommitted step (if any) and sets its last committed step id;
        returns its status (weights CRC, state)."""
        status = self._status_request("SYNC", Sync(committed), _nonce())
        self.weights_crc = status.weights_crc
        return status

    def _collect(
        self,
        what: str,
        step: int,
        count: int,
        send: Callable[[bool], int],
        on_error: Callable[[ErrorMsg], _Verdict],
        cycles: list[int] | None = None,
    ) -> SmashedBatch:
        """Sends a request answered by SMASHED frames for positions 0..count; fills them in as
        they come, in any order, repeats included. cycles: also wait for the EVAL_DONE that
        ends a timed EVAL and put its cycles there."""
        cut = self.cut_size
        acts = np.zeros((count, cut), dtype=np.int8)
        labels = np.zeros(count, dtype=np.int64)
        have = np.zeros(count, dtype=bool)
        quant: list[tuple[float, int]] = []
        labelled: list[bool] = []  # each frame: did it carry labels (all must agree)

        def complete() -> _Verdict:
            return DONE if have.all() and (cycles is None or cycles) else PROGRESS

        def handle(frame: Frame, msg: Message) -> _Verdict:
            if frame.header.step != step:
                return IGNORE
            if isinstance(msg, ErrorMsg):
                return on_error(msg)
            if isinstance(msg, EvalDone) and cycles is not None:
                if msg.count != count:
                    raise ProtocolError(f"{what}: EVAL_DONE for {msg.count} samples, not {count}")
                if cycles:
                    return IGNORE
                cycles.append(msg.cycles)
                return complete()
            if isinstance(msg, StepDone):
                raise StepLost(
                    f"the board has already applied step {step}: it is ahead of this host"
                )
            if not isinstance(msg, Smashed | PackedSmashed):
                return IGNORE
            if (msg.wire if isinstance(msg, PackedSmashed) else 0) != self.wire:
                raise ProtocolError(
                    f"{what}: a {msg.TYPE.name} frame from a board whose HELLO named wire "
                    f"format {wire_codec.wire_name(self.wire)}"
                )
            first, n = frame.header.seq, msg.count
            if first + n > count or msg.cut_size != cut:
                raise ProtocolError(
                    f"SMASHED for samples {first}..{first + n} of {count} with cut size "
                    f"{msg.cut_size} (HELLO said {cut})"
                )
            q = (msg.scale, msg.zero_point)
            if quant and quant[0] != q:
                raise ProtocolError(f"{what}: the board changed its output scale mid-request")
            quant[:1] = [q]
            labelled.append(msg.labels is not None)
            if not all(labelled) and any(labelled):
                raise ProtocolError(f"{what}: the board sent frames with and without labels")
            new_labels = np.frombuffer(msg.labels or bytes(n), dtype=np.uint8)
            part = slice(first, first + n)
            if have[part].any():
                same = np.array_equal(acts[part][have[part]], msg.acts[have[part]]) and (
                    np.array_equal(labels[part][have[part]], new_labels[have[part]])
                )
                if not same:
                    raise ProtocolError(
                        f"{what}: the board sent different activations for the same samples"
                    )
                if have[part].all():
                    self.stats.duplicates += 1
                    return IGNORE
            acts[part] = msg.acts
            labels[part] = new_labels
            have[part] = True
            return complete()

        self._converse(what, send, handle, count * (cut + 1) + 64)
        scale, zp = quant[0]
        return SmashedBatch(acts, labels if labelled[0] else None, scale, zp, self.wire)

    def head(
        self,
        step: int,
        mode: HeadMode,
        scales: npt.NDArray[np.float32],
        acts: npt.NDArray[np.int8],
    ) -> HeadResult:
        """U-shaped: sends the server's last activations (int8, one scale per sample) of the
        step in flight (TRAIN) or of the EVAL request `step` (EVAL) to the board's head;
        returns its answers joined. A lost frame or answer is sent again; the board stages
        each position once."""
        n, size = acts.shape
        per = head_per_frame(size)
        frames = [
            (first, HeadIn(int(mode), scales[first : first + per], acts[first : first + per]))
            for first in range(0, n, per)
        ]
        answers: dict[int, HeadOut] = {}

        def send(again: bool) -> int:
            return sum(
                self.send(m, step=step, seq=first, again=again)
                for first, m in frames
                if first not in answers
            )

        def handle(frame: Frame, msg: Message) -> _Verdict:
            if frame.header.step != step:
                return IGNORE
            if isinstance(msg, ErrorMsg):
                return self._step_error("HEAD_IN", step)(msg)
            if not isinstance(msg, HeadOut):
                return IGNORE
            first = frame.header.seq
            expect = dict(frames).get(first)
            if expect is None or msg.count != expect.count or msg.mode != int(mode):
                raise ProtocolError(
                    f"HEAD_OUT for samples {first}..{first + msg.count} does not answer a "
                    f"HEAD_IN of step {step}"
                )
            if msg.grads is not None and msg.grads.shape[1] != size:
                raise ProtocolError(f"HEAD_OUT carries {msg.grads.shape[1]} values, not {size}")
            if first in answers:
                self.stats.duplicates += 1
                return IGNORE
            answers[first] = msg
            return DONE if len(answers) == len(frames) else PROGRESS

        self._converse(f"HEAD_IN {step}", send, handle, n * (size + 4) + 64)
        outs = [answers[first] for first, _ in frames]
        loss_sum = float(np.sum([o.loss_sum for o in outs], dtype=np.float64))
        result = HeadResult(sum(o.correct for o in outs), loss_sum)
        if mode == HeadMode.TRAIN:
            result.grads = np.concatenate([o.grads for o in outs if o.grads is not None])
            result.scales = np.concatenate([o.scales for o in outs if o.scales is not None])
        return result

    def _step_error(self, what: str, step: int) -> Callable[[ErrorMsg], _Verdict]:
        def on_error(msg: ErrorMsg) -> _Verdict:
            if msg.code in (
                ErrorCode.NOT_IN_FLIGHT,
                ErrorCode.WEIGHTS_INCOMPLETE,
                ErrorCode.BASE_MISMATCH,
            ):
                raise StepLost(f"the board lost step {step}: {msg.describe()}")
            raise self._refused(what, msg)

        return on_error

    def forward(self, step: int, lr: float, indices: npt.NDArray[np.integer]) -> SmashedBatch:
        """Starts a training step: the board streams the minibatch's cut activations."""
        assert self.weights_crc is not None, "call hello() first"
        idx = tuple(int(i) for i in indices)
        base = self.weights_crc
        frames = [
            (TrainStep(float(lr), base, len(idx), idx[first : first + TRAIN_STEP_MAX_COUNT]), first)
            for first in range(0, len(idx), TRAIN_STEP_MAX_COUNT)
        ]

        def send(again: bool) -> int:
            return sum(self.send(m, step=step, seq=seq, again=again) for m, seq in frames)

        batch = self._collect(
            f"TRAIN_STEP {step}", step, len(idx), send, self._step_error("TRAIN_STEP", step)
        )
        self._sent = (step, batch)
        return batch

    def backward(
        self, step: int, grads: npt.NDArray[np.int8], scales: npt.NDArray[np.float32]
    ) -> StepDone:
        """Sends the minibatch's cut gradients (staged by the board) and COMMIT with their CRC;
        returns the board's STEP_DONE. A coded wire sends GRAD_PACKED: SPARSE only where the
        step's activations (forward's, kept here) were not the zero point."""
        chunks: list[tuple[int, Grad | PackedGrad]]
        if self.wire:
            sent = self._sent
            if sent is None or sent[0] != step:
                raise ProtocolError(f"GRAD for step {step} without its forward pass on this link")
            acts, zp = sent[1].acts, sent[1].zero_point
            per = wire_codec.grad_per_frame(self.cut_size, self.wire)
            chunks = [
                (first, PackedGrad.of(scales[first : first + per].astype(np.float32),
                                      grads[first : first + per], self.wire,
                                      acts[first : first + per], zp))
                for first in range(0, len(grads), per)
            ]  # fmt: skip
        else:
            per = grad_per_frame(self.cut_size)
            chunks = [
                (
                    first,
                    Grad(
                        scales[first : first + per].astype(np.float32), grads[first : first + per]
                    ),
                )
                for first in range(0, len(grads), per)
            ]
        crc = zlib.crc32(b"".join(g.pack() for _, g in chunks))
        commit = Commit(crc, len(grads))
        done: list[StepDone] = []

        def send(again: bool) -> int:
            n = sum(self.send(g, step=step, seq=first, again=again) for first, g in chunks)
            return n + self.send(commit, step=step, again=again)

        def handle(frame: Frame, msg: Message) -> _Verdict:
            if frame.header.step != step:
                return IGNORE
            if isinstance(msg, StepDone):
                done.append(msg)
                return DONE
            if isinstance(msg, ErrorMsg):
                if msg.code in (ErrorCode.GRAD_MISSING, ErrorCode.GRAD_CRC):
                    self.note(f"step {step}: {msg.describe()}")
                    return RESEND
                return self._step_error("COMMIT", step)(msg)
            if isinstance(msg, Smashed | PackedSmashed):
                self.stats.duplicates += 1  # a late repeat of the forward pass
            return IGNORE

        self._converse(f"COMMIT {step}", send, handle, int(grads.size) + 64)
        self.weights_crc = done[0].weights_crc
        return done[0]

    def evaluate(self, split: int, start: int, count: int, request_id: int) -> SmashedBatch:
        """Forward passes of training (split 0) or test (split 1) samples, nothing kept."""
        msg = Eval(split, start, count)
        return self._collect(
            f"EVAL {request_id}",
            request_id,
            count,
            lambda again: self.send(msg, step=request_id, again=again),
            self._step_error("EVAL", request_id),
        )

    def timed_evaluate(
        self, split: int, start: int, count: int, request_id: int
    ) -> tuple[SmashedBatch, int]:
        """evaluate() with the TIMING flag: also the device cycles the forward passes took
        (split 2, LIVE: samples from the board's ts_board_read_sample)."""
        msg = Eval(split, start, count, int(EvalFlag.TIMING))
        cycles: list[int] = []
        batch = self._collect(
            f"EVAL {request_id}",
            request_id,
            count,
            lambda again: self.send(msg, step=request_id, again=again),
            self._step_error("EVAL", request_id),
            cycles,
        )
        return batch, cycles[0]

    def _read_image(self, stop_at: Callable[[Weights], int]) -> bytes:
        """Reads the state image chunk by chunk, up to stop_at(first reply) bytes."""
        nonce = _nonce()
        out = bytearray()
        end: int | None = None
        while end is None or len(out) < end:
            offset = len(out)
            got: list[Weights] = []

            def handle(
                frame: Frame, msg: Message, offset: int = offset, got: list[Weights] = got
            ) -> _Verdict:
                if frame.header.step != nonce:
                    return IGNORE
                if isinstance(msg, ErrorMsg):
                    raise self._refused("GET_WEIGHTS", msg)
                if isinstance(msg, Weights) and msg.offset == offset:
                    got.append(msg)
                    return DONE
                return IGNORE

            request = GetWeights(offset, WEIGHTS_MAX_DATA)

            def send(again: bool, request: GetWeights = request) -> int:
                return self.send(request, step=nonce, again=again)

            self._converse("GET_WEIGHTS", send, handle, WEIGHTS_MAX_DATA + 64)
            reply = got[0]
            self.weights_size = reply.weights_size
            if end is None:
                end = stop_at(reply)
            if len(out) < end and not reply.data:
                raise ProtocolError("the board sent an empty WEIGHTS chunk before the end")
            out += reply.data
        return bytes(out[:end])

    def pull_weights(self) -> bytes:
        """The client's weight blob (docs/protocol.md, "Weights"); its CRC is STEP_DONE's."""
        return self._read_image(lambda w: w.weights_size)

    def pull_state(self) -> bytes:
        """The client's whole state image: the weight blob, then its quantization."""
        return self._read_image(lambda w: w.total)

    def push_state(self, image: bytes, step: int, weights_crc: int) -> Status:
        """Writes a state image over the board's and makes `step` its last committed step;
        weights_crc is the CRC the image's weight blob must give on the board. Chunks go out
        back to back; after a loss, again from where the board stopped."""
        for _ in range(3):
            status = self._push_once(image, step)
            if status is None:
                continue  # the board saw a corrupted image (PUT_CRC): push it again
            if status.committed != step or status.weights_crc != weights_crc:
                raise ProtocolError(
                    f"after PUT_WEIGHTS the board reports step {status.committed} and weights "
                    f"CRC {status.weights_crc:08x}, not step {step} and {weights_crc:08x}"
                )
            self.weights_crc = status.weights_crc
            return status
        raise ProtocolError("the board refused the pushed weights' CRC three times")

    def _push_once(self, image: bytes, step: int) -> Status | None:
        nonce = _nonce()
        total, crc = len(image), zlib.crc32(image)
        loaded = 0
        result: list[Status] = []

        def send(again: bool) -> int:
            n = 0
            for offset in range(loaded, total, PUT_WEIGHTS_MAX_DATA):
                chunk = image[offset : offset + PUT_WEIGHTS_MAX_DATA]
                n += self.send(PutWeights(offset, total, crc, step, chunk), step=nonce, again=again)
            return n

        def handle(frame: Frame, msg: Message) -> _Verdict:
            nonlocal loaded
            if frame.header.step != nonce:
                return IGNORE
            if isinstance(msg, ErrorMsg):
                if msg.code == ErrorCode.PUT_CRC:
                    return DONE  # result stays empty: start over
                raise self._refused("PUT_WEIGHTS", msg)
            if not isinstance(msg, Status):
                return IGNORE
            if msg.state_size != total:
                raise ProtocolError(
                    f"the board's state is {msg.state_size} bytes, the image {total}: "
                    "it runs another model"
                )
            if msg.loaded == total and msg.state == BoardState.IDLE:
                result.append(msg)
                return DONE
            if msg.loaded > loaded:
                loaded = msg.loaded
                return PROGRESS
            return IGNORE

        self._converse("PUT_WEIGHTS", send, handle, total + 64 * (total // 1000 + 1))
        return result[0] if result else None

    def board_stats(self) -> dict[str, int]:
        """The board's counters (STATS): link errors it saw, duplicates it answered, ..."""
        nonce = _nonce()
        got: list[Stats] = []

        def handle(frame: Frame, msg: Message) -> _Verdict:
            if frame.header.step == nonce and isinstance(msg, Stats):
                got.append(msg)
                return DONE
            return IGNORE

        self._converse(
            "STATS_REQ", lambda again: self.send(StatsReq(), step=nonce, again=again), handle, 128
        )
        return got[0].as_dict()
