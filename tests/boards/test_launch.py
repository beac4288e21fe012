"""host/board/launch.py: tools missing, bad ports, and that started boards are always stopped."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from echo_support import child_pids, echo_on

from tinysplit.core.errors import BoardSilent, BuildError, PortError, ToolMissing
from tinysplit.host.board.launch import native_board, open_port, qemu_board


def test_qemu_missing_is_tool_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ToolMissing) as caught, qemu_board(tmp_path / "x.elf"):
        pass
    assert str(caught.value) == (
        "qemu-system-arm not found: run scripts/setup.sh (or apt-get install qemu-system-arm)"
    )


def test_open_nonexistent_port_is_one_line() -> None:
    with pytest.raises(PortError) as caught:
        open_port("/dev/ttyACM9", timeout=0.1)
    assert str(caught.value) == (
        "cannot open /dev/ttyACM9: no such port (is the board plugged in? "
        "list ports with `python -m serial.tools.list_ports`)"
    )


def test_open_socket_nobody_listens_is_one_line() -> None:
    with pytest.raises(PortError) as caught:
        open_port("socket://127.0.0.1:1", timeout=0.1)
    assert str(caught.value) == (
        "cannot connect to socket://127.0.0.1:1: nothing is listening there "
        "(is the emulator running?)"
    )


def test_open_busy_port(echo_images: dict[str, Path]) -> None:
    busy = r"^cannot open /dev/pts/\d+: port busy \(close"
    with (
        native_board(echo_images["native"]) as pty,
        open_port(pty, timeout=0.1),
        pytest.raises(PortError, match=busy),
    ):
        open_port(pty, timeout=0.1)


@pytest.mark.parametrize(
    "board", ["native", pytest.param("mps2_an386", id="qemu", marks=pytest.mark.qemu)]
)
@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_board_is_stopped_on_errors(
    board: str, error: type[BaseException], echo_images: dict[str, Path]
) -> None:
    before = child_pids()
    with pytest.raises(error), echo_on(board, echo_images[board]) as echo:
        assert child_pids() - before, "the board should run as our child"
        echo.echo(b"\x01")
        raise error()
    assert child_pids() == before  # neither running nor a zombie


@pytest.mark.qemu
def test_qemu_exiting_at_start_is_a_build_error(echo_images: dict[str, Path]) -> None:
    before = child_pids()
    with pytest.raises(BuildError) as caught, qemu_board(echo_images["mps2_an386"], "no-such-m"):
        pass
    assert str(caught.value) == (
        "qemu-system-arm -M no-such-m could not start tinysplit.elf (exit code 1): "
        "qemu-system-arm: unsupported machine type"
    )
    assert child_pids() == before


def test_native_exe_without_pty_line_is_board_silent(tmp_path: Path) -> None:
    fake = tmp_path / "fake-board"
    fake.write_text("#!/bin/sh\necho 'no pty here' >&2\nexit 3\n")
    fake.chmod(0o755)
    t0 = time.monotonic()
    with pytest.raises(BoardSilent) as caught, native_board(fake):
        pass
    message = str(caught.value)
    assert message == "fake-board exited before opening its pty (exit code 3): no pty here"
    assert time.monotonic() - t0 < 5
