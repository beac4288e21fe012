"""Start a board (QEMU or the native build) for the host to talk to, and always stop it again.

    with qemu_board(elf) as url:            # url = "socket://127.0.0.1:PORT"
        port = open_port(url, timeout=1.0)
    with native_board(exe) as path:         # path = "/dev/pts/N"
        port = open_port(path, timeout=1.0)

Both context managers stop what they started on every way out (exceptions, KeyboardInterrupt):
terminate, wait, then kill. The child also gets SIGTERM if this process dies without cleaning up.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

import serial

from tinysplit.core.errors import BoardSilent, BuildError, PortError, ToolMissing

QEMU = "qemu-system-arm"
START_TIMEOUT_S = 10.0  # QEMU listening / the native board printing its pty
STOP_TIMEOUT_S = 3.0  # after SIGTERM, before SIGKILL
# What the real boards' firmware uses (boards/*/profile.json "uart_baud"; `make UART_BAUD=...` or
# platformio.ini build_flags change it); QEMU sockets and ptys ignore it.
DEFAULT_BAUDRATE = 921_600
_PTY_PREFIX = "TINYSPLIT_PTY "
_PORT_ATTEMPTS = 3  # a free port can be taken between our check and QEMU's bind
_TAIL_LINES = 20


def qemu_command(
    elf: Path,
    machine: str,
    port: int,
    *,
    icount: bool = False,
    uart: int = 0,
    paced_shift: int | None = None,
) -> list[str]:
    """The QEMU command line: no display or monitor, the board's UART on a TCP server at
    127.0.0.1:port. uart: which of the machine's serial ports that is (netduinoplus2's second
    is USART2, the Nucleo-F446RE's); the ones before it are left unconnected.

    wait=on: the machine starts only when the host connects, so the boot banner is not lost.
    nodelay=on: no Nagle delay, ~10x faster for lock-step request/response traffic.
    icount: `-icount shift=0`, one instruction per virtual nanosecond: SysTick (and so the
    board's cycle counter) then counts instructions executed instead of following host time.
    paced_shift: `-icount shift=N,align=on`: one instruction every 2**N ns of virtual time, and
    QEMU sleeps whenever the guest runs ahead of host time, so the board executes at a fixed
    rate in real time (N = 3: 125 M instructions a second, a Cortex-M4 at 180 MHz and 1.44
    cycles per instruction) as long as the host emulates faster than that.
    """
    return [
        QEMU,
        "-M", machine,
        "-display", "none",
        "-monitor", "none",
        *(["-serial", "null"] * uart),
        "-serial", f"tcp:127.0.0.1:{port},server=on,wait=on,nodelay=on",
        *(["-icount", "shift=0"] if icount else []),
        *(["-icount", f"shift={paced_shift},align=on,sleep=on"] if paced_shift is not None else []),
        "-kernel", str(elf),
    ]  # fmt: skip


class _Child:
    """A started process, its output drained by threads into short tails."""

    def __init__(
        self,
        argv: list[str],
        on_stdout_line: Callable[[str], None] | None = None,
        on_stderr_line: Callable[[str], None] | None = None,
    ):
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
            preexec_fn=_die_with_parent,
        )
        self._lock = threading.Lock()
        self._stderr_tail: deque[str] = deque(maxlen=_TAIL_LINES)
        self._on_stderr_line = on_stderr_line
        self._threads = [
            self._drain(self.proc.stderr, self._on_stderr),
            self._drain(self.proc.stdout, on_stdout_line or (lambda line: None)),
        ]

    def _on_stderr(self, line: str) -> None:
        with self._lock:
            self._stderr_tail.append(line)
        if self._on_stderr_line is not None:
            self._on_stderr_line(line)

    @staticmethod
    def _drain(stream: IO[str] | None, handle: Callable[[str], None]) -> threading.Thread:
        def run() -> None:
            assert stream is not None
            with contextlib.suppress(OSError, ValueError):
                for line in stream:
                    handle(line.rstrip("\r\n"))

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        return thread

    def join_output(self) -> None:
        """Waits (briefly) for the drain threads to read what an exited process wrote."""
        for thread in self._threads:
            thread.join(timeout=1.0)

    def last_error_line(self, prefix: str = "") -> str:
        """The last stderr line, preferring the last one starting with `prefix` (QEMU follows
        its error with hints such as "Use -machine help ...")."""
        with self._lock:
            lines = [line.strip() for line in self._stderr_tail if line.strip()]
        preferred = [line for line in lines if prefix and line.startswith(prefix)]
        if preferred:
            return preferred[-1]
        return lines[-1] if lines else "no error output"

    def exit_description(self) -> str:
        code = self.proc.returncode
        if code is not None and code < 0:
            with contextlib.suppress(ValueError):
                return f"killed by {signal.Signals(-code).name}"
        return f"exit code {code}"

    def stop(self) -> None:
        """terminate, wait, kill: the process is gone (and reaped) when this returns."""
        try:
            if self.proc.poll() is None:
                self.proc.terminate()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.proc.wait(STOP_TIMEOUT_S)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            self.join_output()
            for stream in (self.proc.stdout, self.proc.stderr):
                if stream is not None:
                    stream.close()


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM it when the parent dies (Linux), so a killed host
    never leaves QEMU spinning."""
    if _PRCTL is not None:
        _PRCTL(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _load_prctl() -> Callable[[int, int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        prctl: Callable[[int, int], int] = libc.prctl
    except (OSError, AttributeError):
        return None
    return prctl


_PRCTL = _load_prctl()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_for(child: _Child, ready: threading.Event, deadline: float) -> bool:
    """True once `ready` is set; False if the child exits first or the deadline passes."""
    while time.monotonic() < deadline:
        if ready.wait(0.05):
            return True
        if child.proc.poll() is not None:
            child.join_output()  # its last lines say why
            return ready.is_set()
    return ready.is_set()


def _body_failed(child: _Child, what: str, error: BaseException) -> None:
    """Adds why the board died, if it did, to an exception raised while using it."""
    if child.proc.poll() is not None:
        error.add_note(
            f"{what} had stopped ({child.exit_description()}): {child.last_error_line()}"
        )


def _check_alive(child: _Child, what: str) -> None:
    if child.proc.poll() is not None:
        raise BoardSilent(
            f"{what} stopped during the run ({child.exit_description()}): {child.last_error_line()}"
        )


@contextlib.contextmanager
def qemu_board(
    elf: Path,
    machine: str = "mps2-an386",
    *,
    icount: bool = False,
    uart: int = 0,
    paced_shift: int | None = None,
) -> Iterator[str]:
    """Runs `elf` in qemu-system-arm; yields the pyserial URL of its UART (socket://...).

    icount=True counts instructions instead of host time; uart: the machine's serial port the
    board talks on (see qemu_command).
    """
    qemu = shutil.which(QEMU)
    if qemu is None:
        raise ToolMissing(
            f"{QEMU} not found: run scripts/setup.sh (or apt-get install qemu-system-arm)"
        )
    elf = Path(elf)
    if not elf.is_file():
        raise BuildError(f"{elf} not found: build the firmware first (make BOARD=mps2_an386)")

    for attempt in range(_PORT_ATTEMPTS):
        port = _free_port()
        argv = qemu_command(elf, machine, port, icount=icount, uart=uart, paced_shift=paced_shift)
        argv[0] = qemu
        listening = threading.Event()

        def on_stderr(line: str, listening: threading.Event = listening) -> None:
            # With wait=on QEMU prints "QEMU waiting for connection on: ..." once it listens.
            if "waiting for connection" in line:
                listening.set()

        child = _Child(argv, on_stderr_line=on_stderr)
        try:
            if not _wait_for(child, listening, time.monotonic() + START_TIMEOUT_S):
                if child.proc.poll() is None:
                    raise BoardSilent(
                        f"{QEMU} did not open port {port} within {START_TIMEOUT_S:.0f} s: "
                        f"{child.last_error_line()}"
                    )
                error_line = child.last_error_line(prefix=f"{QEMU}:")
                if "ddress already in use" in error_line and attempt + 1 < _PORT_ATTEMPTS:
                    child.stop()
                    continue
                raise BuildError(
                    f"{QEMU} -M {machine} could not start {elf.name} "
                    f"({child.exit_description()}): {error_line}"
                )
        except BaseException:
            child.stop()
            raise
        break

    try:
        yield f"socket://127.0.0.1:{port}"
    except BaseException as error:
        _body_failed(child, QEMU, error)
        raise
    else:
        _check_alive(child, QEMU)
    finally:
        child.stop()


@contextlib.contextmanager
def native_board(exe: Path) -> Iterator[str]:
    """Runs the native firmware build; yields the path of its pty (its UART)."""
    exe = Path(exe)
    if not exe.is_file():
        raise BuildError(f"{exe} not found: build the firmware first (make BOARD=native)")

    pty: list[str] = []
    announced = threading.Event()

    def on_stdout(line: str) -> None:
        if not pty and line.startswith(_PTY_PREFIX):
            pty.append(line[len(_PTY_PREFIX) :].strip())
            announced.set()

    child = _Child([str(exe.resolve())], on_stdout)
    try:
        if not _wait_for(child, announced, time.monotonic() + START_TIMEOUT_S):
            if child.proc.poll() is None:
                raise BoardSilent(
                    f"{exe.name} did not print its {_PTY_PREFIX.strip()} line within "
                    f"{START_TIMEOUT_S:.0f} s: is it a native build (make BOARD=native)?"
                )
            raise BoardSilent(
                f"{exe.name} exited before opening its pty ({child.exit_description()}): "
                f"{child.last_error_line()}"
            )
    except BaseException:
        child.stop()
        raise

    try:
        yield pty[0]
    except BaseException as error:
        _body_failed(child, exe.name, error)
        raise
    else:
        _check_alive(child, exe.name)
    finally:
        child.stop()


#: Written for ser2net 4.x (Debian's `ser2net`): one connection, RFC 2217 on a loopback port.
SER2NET_CONFIG = """%YAML 1.1
---
connection: &board
  accepter: telnet(rfc2217),tcp,127.0.0.1,{port}
  connector: serialdev,{device},115200n81,local
  options:
    kickolduser: true
"""


@contextlib.contextmanager
def ser2net_board(exe: Path, workdir: Path) -> Iterator[str]:
    """The native board behind a real ser2net on loopback, as a board at another site is
    reached (README, "Boards at other sites"): yields the rfc2217:// URL pyserial opens.
    `ign_set_control`: a pty (the native board's UART) has no modem lines to set, so ser2net
    cannot acknowledge DTR/RTS; a USB-serial board at a real site does not need it."""
    binary = shutil.which("ser2net") or (
        "/usr/sbin/ser2net" if Path("/usr/sbin/ser2net").is_file() else None
    )
    if binary is None:
        raise ToolMissing("ser2net not installed (Debian: apt-get install ser2net)")
    with native_board(exe) as pty:
        port = _free_port()
        workdir.mkdir(parents=True, exist_ok=True)
        config = workdir / f"ser2net-{port}.yaml"
        config.write_text(SER2NET_CONFIG.format(port=port, device=pty))
        proc = subprocess.Popen(
            [binary, "-n", "-c", str(config), "-P", str(workdir / f"ser2net-{port}.pid")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + START_TIMEOUT_S
            while True:
                with (
                    contextlib.suppress(OSError),
                    socket.create_connection(("127.0.0.1", port), timeout=0.2),
                ):
                    break
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise BoardSilent(f"ser2net did not listen on 127.0.0.1:{port} ({config})")
                time.sleep(0.05)
            yield f"rfc2217://127.0.0.1:{port}?ign_set_control"
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _errno_of(error: BaseException) -> int | None:
    """The OS error number behind a pyserial exception (it is not always on the exception)."""
    seen: BaseException | None = error
    while seen is not None:
        number = getattr(seen, "errno", None)
        if isinstance(number, int):
            return number
        seen = seen.__cause__ or seen.__context__
    return None


def _port_message(url: str, error: BaseException) -> str:
    number = _errno_of(error)
    if number in (errno.ENOENT, errno.ENODEV, errno.ENXIO):
        return (
            f"cannot open {url}: no such port (is the board plugged in? "
            "list ports with `python -m serial.tools.list_ports`)"
        )
    if number in (errno.EACCES, errno.EPERM):
        return (
            f"cannot open {url}: permission denied (add yourself to the dialout group: "
            "`sudo usermod -aG dialout $USER`, then log in again)"
        )
    if number in (errno.EBUSY, errno.EAGAIN, errno.EWOULDBLOCK):
        return f"cannot open {url}: port busy (close the program using it, e.g. a serial monitor)"
    if number in (errno.ECONNREFUSED, errno.ETIMEDOUT, errno.EHOSTUNREACH):
        return f"cannot connect to {url}: nothing is listening there (is the emulator running?)"
    if isinstance(error, ValueError):
        return f"cannot open {url}: not a device path or a pyserial URL (e.g. socket://host:port)"
    detail = str(error).splitlines()[0] if str(error) else type(error).__name__
    return f"cannot open {url}: {detail}"


def open_port(url: str, timeout: float, baudrate: int = DEFAULT_BAUDRATE) -> serial.SerialBase:
    """Opens a device path (/dev/ttyACM0, a pty) or a pyserial URL (socket://127.0.0.1:PORT).

    Device paths are opened exclusively, so a second program on the same port is an error
    instead of two readers stealing each other's bytes. What the board sent before the port was
    opened is kept (pyserial would flush it): the native board's boot output waits in its pty
    the way QEMU's waits for the connection. Raises PortError (one line).
    """
    options = {} if "://" in url else {"exclusive": True}
    if "://" not in url:
        import stat

        try:
            mode = os.stat(url).st_mode
        except OSError:
            mode = 0
        if mode and not stat.S_ISCHR(mode):
            kind = "a folder" if stat.S_ISDIR(mode) else "a regular file"
            raise PortError(
                f"{url} is {kind}, not a serial port: give the board's port (/dev/ttyACM0, "
                "/dev/ttyUSB0, COM3) or a pyserial URL such as socket://HOST:PORT"
            )
    try:
        port = serial.serial_for_url(
            url, baudrate=baudrate, timeout=timeout, do_not_open=True, **options
        )
        keep_input = hasattr(port, "_reset_input_buffer")
        if keep_input:
            port._reset_input_buffer = lambda: None  # only for open(); restored below
        try:
            port.open()
        finally:
            if keep_input:
                del port._reset_input_buffer
    except (serial.SerialException, OSError, ValueError) as error:
        raise PortError(_port_message(url, error)) from error
    return port
