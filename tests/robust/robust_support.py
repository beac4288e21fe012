"""Shared by the robustness tests: `tinysplit` run as a user would, its one-line errors, and a
fake board on a socket for the link's bad-input cases."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from tinysplit.core.protocol import Frame, FrameDecoder


def tinysplit(
    *args: str, timeout: float = 300, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tinysplit.host.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env=env,
    )


def assert_one_line_error(out: subprocess.CompletedProcess[str], *needles: str) -> str:
    """Exit status 2, no traceback, exactly one line on stderr: `error: ...` with the needles."""
    lines = [ln for ln in out.stderr.splitlines() if ln.strip()]
    assert out.returncode == 2, out.stderr[-3000:]
    assert "Traceback" not in out.stderr, out.stderr[-3000:]
    assert len(lines) == 1 and lines[0].startswith("error: "), out.stderr[-3000:]
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


@contextlib.contextmanager
def fake_board(reply: Callable[[Frame], bytes]) -> Iterator[str]:
    """A "board" on socket://127.0.0.1:PORT that answers every frame it receives with
    reply(frame) (b"": nothing). Yields the URL."""
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    stop = threading.Event()

    def serve() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(0.2)
                decoder = FrameDecoder()
                while not stop.is_set():
                    try:
                        data = conn.recv(4096)
                    except TimeoutError:
                        continue
                    except OSError:
                        break
                    if not data:
                        break
                    for frame in decoder.feed(data):
                        answer = reply(frame)
                        if answer:
                            conn.sendall(answer)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"socket://127.0.0.1:{port}"
    finally:
        stop.set()
        thread.join(timeout=2)
        server.close()


def interrupt_at(run_dir: Path, step: int) -> threading.Thread:
    """Ctrl-C to this process once run_dir's checkpoint reaches `step` (the CLI runs here)."""

    def watch() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if json.loads((run_dir / "checkpoint.json").read_text())["step"] >= step:
                    os.kill(os.getpid(), signal.SIGINT)
                    return
            except (OSError, ValueError, KeyError):
                pass
            time.sleep(0.002)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread
