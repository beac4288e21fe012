"""The board layer of every emulated board besides mps2_an386 (test_echo.py covers that one):
the echo app under QEMU mps2-an385 (M3), -an500 (M7), -an505 (M33, Secure) and M0+ code on
-an385, through the shared Cortex-M and MPS2 code in boards/cortex_m and boards/mps2_common."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from echo_support import Echo, build_echo, echo_on

from tinysplit.core.boards import board_profile, emulated_boards

EMULATED_BOARDS = emulated_boards()

BOARDS = [b for b in sorted(EMULATED_BOARDS) if b != "mps2_an386"]

pytestmark = pytest.mark.qemu


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return {b: build_echo(b, tmp_path_factory.mktemp(f"echo-{b}")) for b in BOARDS}


def read_fault_line(echo: Echo) -> str:
    echo.port.read_until(b"TS_FAULT")
    return "TS_FAULT" + bytes(echo.port.read_until(b"\r\n")).decode().rstrip()


@pytest.mark.parametrize("board", BOARDS)
def test_echo_timeout_and_clocks(board: str, images: dict[str, Path]) -> None:
    cycles_per_ms = board_profile(board)["clock_hz"] / 1000
    with echo_on(board, images[board]) as echo:
        sent = bytes(range(0xF0)) * 4
        assert echo.echo(sent) == bytes(b + 1 for b in sent)
        data, _ = echo.board_sends(4096)
        assert data == bytes((i * 7) & 0xFF for i in range(4096))

        # Nothing arrives: the read gives up after at least the timeout, and the cycle counter
        # runs at the profile's clock (SysTick at the machine's 25 or 20 MHz).
        t0 = time.perf_counter()
        echo.start_wait(200)
        got, _, ms, cycles = echo.finish_wait()
        assert not got and 200 <= ms <= 1000 and (time.perf_counter() - t0) < 3.0
        assert cycles == pytest.approx(ms * cycles_per_ms, rel=0.1)


@pytest.mark.parametrize("board", BOARDS)
def test_fault_prints_marker(board: str, images: dict[str, Path]) -> None:
    with echo_on(board, images[board]) as echo:
        echo.port.write(b"\xfe")  # udf
        line = read_fault_line(echo)
    assert line.startswith("TS_FAULT HardFault pc=")
    # UFSR.UNDEFINSTR on ARMv7-M/v8-M; ARMv6-M has no CFSR and prints 0.
    expected = (
        "cfsr=00000000" if board_profile(board)["core"] == "cortex-m0plus" else "cfsr=00010000"
    )
    assert line.endswith(expected)


def test_m0plus_board_traps_unaligned_access_like_a_cortex_m0plus(images: dict[str, Path]) -> None:
    """mps2_an385_m0plus runs ARMv6-M code on an M3, which allows unaligned loads: the board
    traps them, so code that would fault on a Cortex-M0+ faults here too."""
    with echo_on("mps2_an385", images["mps2_an385"]) as echo:
        echo.port.write(b"\xfc")
        assert echo.read_exactly(5) == b"U" + bytes([2, 3, 4, 5])
    with echo_on("mps2_an385_m0plus", images["mps2_an385_m0plus"]) as echo:
        echo.port.write(b"\xfc")
        assert read_fault_line(echo).startswith("TS_FAULT HardFault")
