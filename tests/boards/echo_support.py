"""Builds and talks to tests/boards/uart_echo_app.c (see its header for the byte commands)."""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import serial

from tinysplit.core.boards import board_profile, emulated_boards
from tinysplit.core.paths import source_root
from tinysplit.host.board.build import build_firmware
from tinysplit.host.board.launch import native_board, open_port, qemu_board

EMULATED_BOARDS = emulated_boards()

ECHO_APP = "tests/boards/uart_echo_app.c"
READ_TIMEOUT_S = 5.0


def build_echo(board: str, build_dir: Path, extra_cflags: str = "", sanitize: bool = False) -> Path:
    """The echo app instead of the firmware client and core (which these tests do not need)."""
    make_vars = {"APP_SRCS": ECHO_APP, "CORE_SRCS": "", "EXTRA_CFLAGS": extra_cflags}
    return build_firmware(board, None, build_dir, sanitize, make_vars=make_vars)


class Echo:
    """The host side of the echo app's byte commands."""

    def __init__(self, port: serial.SerialBase):
        self.port = port

    def read_exactly(self, n: int) -> bytes:
        data = self.port.read(n)
        assert len(data) == n, f"board sent {len(data)} of {n} bytes: {data[-40:]!r}"
        return bytes(data)

    def banner(self) -> str:
        line = self.port.read_until(b"ready\n")
        assert line.endswith(b"ready\n"), f"no banner, got {line!r}"
        return bytes(line).decode()

    def echo(self, data: bytes) -> bytes:
        self.port.write(data)
        return self.read_exactly(len(data))

    def time(self) -> tuple[int, int]:
        """(millis, cycles) on the board."""
        self.port.write(b"\xf0")
        tag, millis, cycles = struct.unpack("<cII", self.read_exactly(9))
        assert tag == b"T"
        return millis, cycles

    def start_wait(self, timeout_ms: int) -> None:
        """The board starts ts_board_uart_read(timeout_ms); finish_wait gets the result."""
        assert timeout_ms % 10 == 0
        self.port.write(bytes([0xF1, timeout_ms // 10]))

    def finish_wait(self) -> tuple[bool, int, int, int]:
        """(got a byte, the byte, elapsed ms, elapsed cycles) as the board measured them."""
        tag, got, byte, ms, cycles = struct.unpack("<cBBII", self.read_exactly(11))
        assert tag == b"W"
        return bool(got), byte, ms, cycles

    def entropy(self) -> int:
        self.port.write(b"\xf2")
        tag, value, _cause = struct.unpack("<cIB", self.read_exactly(6))
        assert tag == b"I"
        return int(value)

    def board_sends(self, n: int) -> tuple[bytes, int]:
        """The board sends n pattern bytes; returns them and its own elapsed ms."""
        self.port.write(b"\xf3" + struct.pack("<H", n))
        data = self.read_exactly(n)
        tag, ms = struct.unpack("<cI", self.read_exactly(5))
        assert tag == b"S"
        return data, ms

    def board_receives(self, data: bytes) -> tuple[int, int]:
        """Sends data for the board to sum; returns (bytes it got, their sum)."""
        self.port.write(b"\xf4" + struct.pack("<H", len(data)) + data)
        tag, got, total, _ms = struct.unpack("<cHII", self.read_exactly(11))
        assert tag == b"R"
        return got, total


@contextmanager
def echo_on(board: str, image: Path) -> Iterator[Echo]:
    """Starts the image on its board (native or any emulated board) and yields an Echo past the
    banner, which names the board as its profile does."""
    launcher = (
        native_board(image) if board == "native" else qemu_board(image, EMULATED_BOARDS[board])
    )
    with launcher as url, open_port(url, timeout=READ_TIMEOUT_S) as port:
        echo = Echo(port)
        banner = echo.banner()
        assert banner == f"uart_echo {board_profile(board)['name']} ready\n"
        yield echo


def child_pids() -> set[int]:
    """Processes (zombies included) whose parent is this one."""
    me = os.getpid()
    children = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == me:
            children.add(int(entry.name))
    return children


__all__ = ["Echo", "build_echo", "child_pids", "echo_on", "source_root"]
