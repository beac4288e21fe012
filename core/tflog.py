"""Native (C++) log lines off the user's terminal, on every CPU.

TensorFlow 2.21 logs through absl at import: "WARNING: All log messages before
absl::InitializeLog() ..." and, wherever oneDNN is on (the default on x86, decided by the CPU),
a oneDNN notice, twice per process. TF_CPP_MIN_LOG_LEVEL does not reach those lines, so they are
kept off file descriptor 2 instead: while TensorFlow loads (`load_tensorflow`, for library use)
and for a whole CLI run (`native_stderr_off`). Python's own stderr (tinysplit's messages,
progress bars, tracebacks) stays on the terminal.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from types import ModuleType


@contextlib.contextmanager
def silenced_fd(fd: int = 2) -> Iterator[None]:
    """Points file descriptor `fd` at /dev/null for the block (Python's sys.stderr is untouched
    only if it writes elsewhere: flush it first)."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(fd)
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, fd)
        yield
    finally:
        os.dup2(saved, fd)
        os.close(saved)
        os.close(null)


_verbose = False


def show_native_logs() -> None:
    """`--verbose`: let TensorFlow's log lines through from now on."""
    global _verbose
    _verbose = True


def load_tensorflow() -> ModuleType:
    """`import tensorflow` (and keras) with its start-up log lines silenced; idempotent."""
    if "tensorflow" not in sys.modules:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        with contextlib.nullcontext() if _verbose else silenced_fd(2):
            import keras  # noqa: F401  (Keras 3 imports TensorFlow, its backend, here)
            import tensorflow
        del tensorflow
    return sys.modules["tensorflow"]


def native_stderr_off() -> None:
    """For the rest of the process, native code's writes to fd 2 go to /dev/null while Python's
    sys.stderr keeps writing to the terminal (a duplicate of the original fd 2). Child
    processes that inherit fd 2 are quiet too; tinysplit captures the children it reads."""
    sys.stderr.flush()
    terminal = os.dup(2)
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 2)
    os.close(null)
    sys.stderr = open(  # noqa: SIM115  (lives as long as the process, like sys.stderr)
        terminal, "w", buffering=1, encoding=sys.stderr.encoding, errors="backslashreplace"
    )
