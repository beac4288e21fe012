"""A link paced like a real UART: a proxy in front of a port that lets baud/10 bytes per second
through each way (8N1: ten bits a byte), full duplex, as a board's serial line does.

The emulated and native boards answer at memory speed; a real board's UART at 115,200 baud
moves 11,520 bytes a second. PacedPort puts that limit back, so that what several boards gain
from running at the same time is measured where a real fleet is bound: on the wire.
"""

from __future__ import annotations

import threading
import time
from typing import Any

#: The pump's tick: bytes move in bursts of this much line time (23 bytes at 115,200 baud);
#: the average rate is exact, the granularity is this.
TICK_S = 0.002
#: At most this much is taken from the board's side in one tick (far more than a tick carries).
_READ_MAX = 1 << 16


class PacedPort:
    """The pyserial subset ClientLink uses (write, read, in_waiting, close) over `port`, paced
    at `baud` (bits per second, 10 bits a byte) in each direction."""

    def __init__(self, port: Any, baud: int, *, timeout: float = 0.05) -> None:
        if baud <= 0:
            raise ValueError("baud must be > 0")
        self.port, self.rate, self.timeout = port, baud / 10.0, timeout
        self._tx = bytearray()  # written by the host, not on the line yet
        self._rx_line = bytearray()  # received from the board, still "on the line"
        self._rx = bytearray()  # arrived: what read() returns
        self._cv = threading.Condition()
        self._stop = False
        self._error: BaseException | None = None
        self.cpu_seconds = 0.0  # the pump thread's own CPU time (a harness cost, not the host's)
        #: Line time used since the start: each tick, the bytes the busier direction moved over the
        #: rate (full duplex, the line is busy while either direction carries bytes).
        self.busy_seconds = 0.0
        self._pump = threading.Thread(target=self._run, name="paced-port", daemon=True)
        self._pump.start()

    # ---- the pump: one thread moves bytes each way at the line's rate -----------------------

    def _run(self) -> None:
        """Every TICK_S: take what the board sent, let through what the line allows each way
        (credit accrues only while bytes wait, so an idle line saves none up)."""
        credit_tx = credit_rx = 0.0
        cap = max(1.0, 2 * self.rate * TICK_S)
        last = next_tick = time.monotonic()
        cpu0 = time.thread_time()
        try:
            while not self._stop:
                next_tick += TICK_S
                delay = next_tick - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                else:
                    next_tick = time.monotonic()  # fell behind: no burst to catch up
                # in_waiting is a byte count on a serial port but only 0/1 on a socket:// URL
                # (pyserial selects): read everything there is, without blocking (timeout 0).
                waiting = self.port.in_waiting
                data = self.port.read(max(waiting, _READ_MAX)) if waiting else b""
                now = time.monotonic()
                dt, last = now - last, now
                out = b""
                with self._cv:
                    self._rx_line += data
                    credit_rx = min(credit_rx + dt * self.rate, cap) if self._rx_line else 0.0
                    credit_tx = min(credit_tx + dt * self.rate, cap) if self._tx else 0.0
                    n = min(int(credit_rx), len(self._rx_line))
                    if n:
                        self._rx += self._rx_line[:n]
                        del self._rx_line[:n]
                        credit_rx -= n
                        self._cv.notify_all()
                    m = min(int(credit_tx), len(self._tx))
                    if m:
                        out = bytes(self._tx[:m])
                        del self._tx[:m]
                        credit_tx -= m
                    self.busy_seconds += max(n, m) / self.rate
                if out:
                    self.port.write(out)
                self.cpu_seconds = time.thread_time() - cpu0
        except BaseException as error:  # the board's port closed under us: tell the reader
            with self._cv:
                self._error = error
                self._cv.notify_all()

    # ---- the port ---------------------------------------------------------------------------

    def write(self, data: bytes, /) -> int:
        with self._cv:
            self._tx += data
        return len(data)

    def read(self, size: int = 1, /) -> bytes:
        deadline = time.monotonic() + self.timeout
        with self._cv:
            while not self._rx and self._error is None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return b""
                self._cv.wait(left)
            if not self._rx and self._error is not None:
                raise OSError(f"the paced port's board side failed: {self._error}")
            out = bytes(self._rx[:size])
            del self._rx[:size]
            return out

    @property
    def in_waiting(self) -> int:
        with self._cv:
            return len(self._rx)

    def close(self) -> None:
        self._stop = True
        self._pump.join(timeout=1.0)
        self.port.close()

    def __enter__(self) -> PacedPort:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
