"""Small formatting helpers shared by the `tinysplit bench` sections (host/bench*.py)."""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from typing import Any


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[int] = ()) -> str:
    """A Markdown table; columns whose index is in `right` are right-aligned."""
    align = ["---:" if i in right else "---" for i in range(len(headers))]
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def num(value: float | int | None, digits: int = 2) -> str:
    """A figure for a table cell: thousands separators for ints, `-` for a missing one."""
    if value is None:
        return "-"
    if isinstance(value, int):
        return f"{value:,}"
    if value != value:  # NaN
        return "-"
    return f"{value:,.{digits}f}"


def ratio(value: float | None, reference: float | None) -> float | None:
    """value / reference, or None when either is missing or the reference is 0."""
    if value is None or reference is None or reference == 0:
        return None
    return value / reference


def first_line(error: BaseException) -> str:
    """The one line a section or row that did not run shows as its reason."""
    text = str(error).strip()
    line = text.splitlines()[0] if text else ""
    return line if line else type(error).__name__


def not_run(reason: str) -> dict[str, Any]:
    return {"status": "not run", "reason": reason}


class Progress:
    """Progress lines on stderr, each with the seconds since the bench started."""

    def __init__(self) -> None:
        self.t0 = time.monotonic()

    def __call__(self, text: str) -> None:
        print(f"[bench {time.monotonic() - self.t0:6.1f}s] {text}", file=sys.stderr, flush=True)
