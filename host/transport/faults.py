"""A fault-injecting link: a pyserial-like port between ClientLink and a board it runs.

    with FaultyPort(lambda: native_board(exe), FaultRates.default(), seed=1) as port:
        link = ClientLink(port, key=pairing_key)  # the export's, or None for --insecure

Whole frames (split at the 0x00 delimiters) are dropped, duplicated, held back behind the next
frame (reordered), cut short (the rest, delimiter included, lost), bit-flipped, or preceded by
random garbage — both ways, each with its own probability, from a seeded generator. With
probability `reset` per frame the host sends, the board is reset before the frame goes out: the
proxy owns the board's lifetime (a factory of `native_board` / `qemu_board` contexts), stops it
and starts a new one — fresh RAM, a new session id, the export's weights — and goes on talking
to the new one through the same port object. So the link, the trainer and the recovery code run
unchanged over it, on the native build and under QEMU alike.
"""

from __future__ import annotations

import contextlib
import random
import time
from collections import Counter
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, fields
from types import TracebackType
from typing import Any

from tinysplit.host.board.launch import open_port

#: Starts a board and yields its port URL (native_board(exe), qemu_board(elf), ...).
BoardFactory = Callable[[], AbstractContextManager[str]]

FRAME_KINDS = ("drop", "duplicate", "reorder", "truncate", "bitflip", "garbage")
KINDS = (*FRAME_KINDS, "reset")
HOLD_S = 0.02  # a reordered frame is released after the next one, or after this long


@dataclass(frozen=True)
class FaultRates:
    """Probability of each fault per frame (reset: per frame the host sends)."""

    drop: float = 0.0
    duplicate: float = 0.0
    reorder: float = 0.0
    truncate: float = 0.0
    bitflip: float = 0.0
    garbage: float = 0.0
    reset: float = 0.0

    @classmethod
    def uniform(cls, p: float, reset: float) -> FaultRates:
        """Every frame fault with probability p, and resets with probability `reset`."""
        return cls(**dict.fromkeys(FRAME_KINDS, p), reset=reset)

    def total(self) -> float:
        return float(sum(float(getattr(self, k)) for k in FRAME_KINDS))

    def as_dict(self) -> dict[str, float]:
        return {f.name: float(getattr(self, f.name)) for f in fields(self)}


class _Splitter:
    """Cuts a byte stream into frames (each ending with its 0x00); keeps the partial tail."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        self._buf += data
        frames: list[bytes] = []
        while True:
            end = self._buf.find(b"\x00")
            if end < 0:
                return frames
            frames.append(bytes(self._buf[: end + 1]))
            del self._buf[: end + 1]

    def clear(self) -> None:
        self._buf.clear()


class _Direction:
    """One way of the link: its frame splitter and the frame held back (reorder)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.splitter = _Splitter()
        self.held: bytes | None = None
        self.held_at = 0.0


class FaultyPort:
    """The pyserial subset ClientLink uses (write, read, in_waiting, close), with faults."""

    def __init__(
        self,
        start_board: BoardFactory,
        rates: FaultRates,
        seed: int,
        *,
        timeout: float = 0.005,
        reset_at: tuple[int, ...] = (),
    ) -> None:
        """reset_at: also reset the board before these host frames (1 = the first), so a
        short run surely sees a reset mid-step, whatever the timing."""
        self.start_board = start_board
        self.reset_at = frozenset(reset_at)
        self.rates = rates
        self.rng = random.Random(seed)
        self.timeout = timeout
        self.enabled = True  # False: a clean link (e.g. while comparing results)
        self.injected: Counter[str] = Counter({k: 0 for k in KINDS})
        self.frames = Counter({"to_board": 0, "to_host": 0})
        self._up = _Direction("to_board")
        self._down = _Direction("to_host")
        self._out = bytearray()  # bytes ready for the host
        self._stack: contextlib.ExitStack | None = None
        self._port: Any = None
        self._boot()

    # -- the board --------------------------------------------------------------------------
    def _boot(self) -> None:
        stack = contextlib.ExitStack()
        try:
            url = stack.enter_context(self.start_board())
            port = open_port(url, timeout=0.005)
            stack.callback(port.close)
        except BaseException:
            stack.close()
            raise
        self._stack, self._port = stack, port

    def _shutdown(self) -> None:
        stack, self._stack, self._port = self._stack, None, None
        if stack is not None:
            stack.close()

    def reset_board(self) -> None:
        """Power-cycles the board: stops it and starts a new one (fresh RAM, new session)."""
        self.injected["reset"] += 1
        self._shutdown()
        for d in (self._up, self._down):
            d.splitter.clear()
            d.held = None
        self._boot()

    def close(self) -> None:
        self._shutdown()

    def __enter__(self) -> FaultyPort:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def _real(self) -> Any:
        if self._port is None:
            raise OSError("the fault proxy's board is not running")
        return self._port

    # -- faults -----------------------------------------------------------------------------
    def _pick(self) -> str | None:
        if not self.enabled:
            return None
        r = self.rng.random()
        for kind in FRAME_KINDS:
            p = getattr(self.rates, kind)
            if r < p:
                return kind
            r -= p
        return None

    def _mangle(self, d: _Direction, frame: bytes) -> list[bytes]:
        """What of one frame goes on, now; a held frame is released after it."""
        if len(frame) <= 1:  # a bare delimiter (the senders' flush): passed as it is
            return [frame]
        self.frames[d.name] += 1
        kind = self._pick()
        out: list[bytes]
        if kind is None:
            out = [frame]
        elif kind == "drop":
            out = []
        elif kind == "duplicate":
            out = [frame, frame]
        elif kind == "reorder" and d.held is None:
            d.held, d.held_at = frame, time.monotonic()
            self.injected[kind] += 1
            return []
        elif kind == "reorder":
            kind, out = None, [frame]  # one frame held at a time
        elif kind == "truncate":
            out = [frame[: self.rng.randrange(1, len(frame) - 1)]]
        elif kind == "bitflip":
            bit = self.rng.randrange(8 * (len(frame) - 1))
            flipped = bytearray(frame)
            flipped[bit // 8] ^= 1 << (bit % 8)
            out = [bytes(flipped)]
        else:  # garbage
            n = self.rng.randrange(1, 64)
            out = [bytes(self.rng.randrange(256) for _ in range(n)), frame]
        if kind is not None:
            self.injected[kind] += 1
        if d.held is not None:
            out.append(d.held)
            d.held = None
        return out

    def _release_held(self, d: _Direction) -> bytes:
        if d.held is not None and time.monotonic() - d.held_at > HOLD_S:
            held, d.held = d.held, None
            return held
        return b""

    # -- the port ---------------------------------------------------------------------------
    def write(self, data: bytes, /) -> int:
        for frame in self._up.splitter.feed(bytes(data)):
            if len(frame) > 1 and self.enabled:
                due = self.frames["to_board"] + 1 in self.reset_at
                if self.rng.random() < self.rates.reset or due:
                    self.reset_board()
            for chunk in self._mangle(self._up, frame):
                self._real.write(chunk)
        return len(data)

    def _pump(self, block: bool) -> None:
        """Moves what the board sent through the faults into the host's buffer."""
        port = self._real
        late = self._release_held(self._up)
        if late:
            port.write(late)
        waiting = port.in_waiting
        data = port.read(waiting) if waiting > 0 else (port.read(1) if block else b"")
        if data:
            for frame in self._down.splitter.feed(data):
                for chunk in self._mangle(self._down, frame):
                    self._out += chunk
        self._out += self._release_held(self._down)

    @property
    def in_waiting(self) -> int:
        self._pump(block=False)
        return len(self._out)

    def read(self, size: int = 1, /) -> bytes:
        deadline = time.monotonic() + self.timeout
        while not self._out:
            self._pump(block=True)
            if not self._out and time.monotonic() >= deadline:
                return b""
        out = bytes(self._out[:size])
        del self._out[:size]
        return out

    def summary(self) -> dict[str, int]:
        """Faults injected so far, by kind."""
        return {k: int(self.injected[k]) for k in KINDS}
