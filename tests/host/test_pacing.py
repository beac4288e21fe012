"""The UART-paced proxy (host/transport/pacing.py) delivers every byte, in order, both ways.
Its rate is what `tinysplit bench` section 7 relies on and measures; no timing is asserted
here (wall time on a shared machine is not repeatable)."""

from __future__ import annotations

import threading
import time

import numpy as np

from tinysplit.host.transport.pacing import PacedPort


class Echo:
    """A port whose far end sends back whatever it is sent."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self.lock = threading.Lock()
        self.closed = False

    def write(self, data: bytes) -> int:
        with self.lock:
            self.buf += data
        return len(data)

    def read(self, size: int = 1) -> bytes:
        with self.lock:
            out = bytes(self.buf[:size])
            del self.buf[:size]
        return out

    @property
    def in_waiting(self) -> int:
        with self.lock:
            return len(self.buf)

    def close(self) -> None:
        self.closed = True


def test_paced_port_delivers_every_byte_in_order() -> None:
    data = np.random.default_rng(0).integers(0, 256, 3000, dtype=np.uint8).tobytes()
    echo = Echo()
    with PacedPort(echo, 921_600, timeout=0.05) as port:
        for i in range(0, len(data), 700):
            port.write(data[i : i + 700])
        got = bytearray()
        deadline = time.monotonic() + 10
        while len(got) < len(data) and time.monotonic() < deadline:
            got += port.read(512)
        assert bytes(got) == data
        assert port.read(10) == b""  # nothing more: the timeout, empty
    assert echo.closed
