"""`tinysplit check DIR`: does the firmware built from an export compute what TFLite Micro does?

Builds the export's firmware for the native build (or an emulated board), boots it, asks it for
the forward pass of every test sample (EVAL) and compares each int8 cut activation with the
TFLite Micro interpreter running the export's client.tflite on the same int8 input. The tool a
user runs after exporting their own model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

EVAL_CHUNK = 256


@dataclass
class CheckResult:
    outputs: int
    mismatches: int
    first: list[str] = field(default_factory=list)  # the first mismatches, described

    def to_json(self) -> dict[str, int]:
        return {"outputs": self.outputs, "mismatches": self.mismatches}


def tflm_outputs(tflite: bytes, xs: npt.NDArray[np.int8]) -> npt.NDArray[np.int8]:
    """The TFLite Micro interpreter's int8 output for each input row."""
    from tflite_micro.python.tflite_micro import runtime

    interpreter = runtime.Interpreter.from_bytes(tflite)
    shape = tuple(int(d) for d in interpreter.get_input_details(0)["shape"])
    out = []
    for x in xs:
        interpreter.set_input(x.reshape(shape), 0)
        interpreter.invoke()
        out.append(np.asarray(interpreter.get_output(0), dtype=np.int8).reshape(-1))
    return np.stack(out)


def compare(
    board: npt.NDArray[np.int8], reference: npt.NDArray[np.int8], *, show: int = 5
) -> CheckResult:
    """Row i of each is sample i's cut activations."""
    bad_rows = np.flatnonzero(np.any(board != reference, axis=1))
    first = []
    for i in bad_rows[:show]:
        cols = np.flatnonzero(board[i] != reference[i])
        c = int(cols[0])
        first.append(
            f"sample {i}: {len(cols)} of {board.shape[1]} values differ, first at [{c}]: "
            f"board {int(board[i, c])}, TFLite Micro {int(reference[i, c])}"
        )
    return CheckResult(outputs=len(board), mismatches=len(bad_rows), first=first)


def check_export(export_dir: Path, board: str = "native") -> CheckResult:
    from tinysplit.codegen.export import load_client_state
    from tinysplit.host.training.session import Export, board_url, connect
    from tinysplit.host.training.trainer import TEST_SPLIT

    export = Export.load(export_dir)
    state = load_client_state(export.path)
    reference = tflm_outputs((export.path / "client.tflite").read_bytes(), state.x_test)
    acts = []
    with board_url(board, export) as url, connect(url, export) as (link, hello):
        for start in range(0, hello.n_test, EVAL_CHUNK):
            count = min(EVAL_CHUNK, hello.n_test - start)
            acts.append(link.evaluate(TEST_SPLIT, start, count, request_id=start + 1).acts)
    return compare(np.concatenate(acts), reference)
