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


class SocketLike(Echo):
    """A socket:// port as pyserial has it: in_waiting says only whether there is data (0/1)."""

    @property
    def in_waiting(self) -> int:
        with self.lock:
            return min(1, len(self.buf))


def test_a_socket_port_is_read_whole_not_a_byte_a_tick() -> None:
    """pyserial's socket:// in_waiting is 0 or 1: the pump must still take everything waiting
    (it once took one byte per 2 ms tick, 500 B/s whatever the baud)."""
    data = bytes(range(256)) * 8
    echo = SocketLike()
    echo.buf += data  # the board's side has sent it all
    with PacedPort(echo, 100_000_000, timeout=0.05) as port:
        got = bytearray()
        for _ in range(200):  # 200 reads of at most 50 ms: far more than a tick each
            got += port.read(len(data))
            if len(got) == len(data):
                break
        assert bytes(got) == data
        # the line time it counted: the bytes over the rate, both ways at most
        assert 0 < port.busy_seconds <= 2 * len(data) / port.rate


def test_busy_time_is_the_line_time_of_what_moved() -> None:
    data = bytes(3000)
    echo = Echo()
    with PacedPort(echo, 921_600, timeout=0.05) as port:
        port.write(data)
        got = bytearray()
        deadline = time.monotonic() + 10
        while len(got) < len(data) and time.monotonic() < deadline:
            got += port.read(4096)
        assert bytes(got) == data
        # out and back: each tick counts the busier direction, so between one and two trips
        one_way = len(data) / port.rate
        assert one_way <= port.busy_seconds <= 2 * one_way + 1e-9
