"""Split training on every emulated board (QEMU mps2-an385 M3, -an386 M4F, -an500 M7, -an505
M33, and Cortex-M0+ code on -an385): a few steps on the digits workload end with the client's
weights bit-identical to the native build's after the same steps. Same integer math, same float
order on hard- and soft-float cores (-ffp-contract=off, no FMA).

Under `-icount shift=0` the cycle counter counts instructions, which measures what the
soft-float float32 master copy costs on cores without an FPU."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from e2e_support import Run, run_steps

from tinysplit.core.boards import board_profile, emulated_boards
from tinysplit.host.board.build import build_firmware
from tinysplit.host.board.launch import native_board, qemu_board
from tinysplit.host.transport.link import ClientLink

EMULATED_BOARDS = emulated_boards()

STEPS = 8
BOARDS = sorted(EMULATED_BOARDS)

pytestmark = pytest.mark.qemu


@pytest.fixture(scope="module")
def images(digits_export: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return {
        b: build_firmware(b, digits_export, tmp_path_factory.mktemp(f"build-{b}")) for b in BOARDS
    }


@pytest.fixture(scope="module")
def native_run(digits_export: Path, native_image: Path) -> Run:
    with native_board(native_image) as url:
        return run_steps(url, digits_export, STEPS)


@pytest.mark.parametrize("board", BOARDS)
def test_emulated_board_trains_bit_identical_to_native(
    board: str, digits_export: Path, images: dict[str, Path], native_run: Run
) -> None:
    with qemu_board(images[board], EMULATED_BOARDS[board]) as url:
        emulated = run_steps(url, digits_export, STEPS)
    assert len(emulated.steps) == STEPS
    for i, (a, b) in enumerate(zip(emulated.steps, native_run.steps, strict=True), start=1):
        assert np.array_equal(a.smashed, b.smashed), f"{board} step {i}: cut activations differ"
        assert a.weights_crc == b.weights_crc, f"{board} step {i}: weights differ after the step"
    assert emulated.blob == native_run.blob


def instructions_per_step(
    board: str, image: Path, export: Path, monkeypatch: pytest.MonkeyPatch
) -> float:
    """Mean instructions per training step on the board, from STEP_DONE's cycle count with
    QEMU counting one instruction per virtual nanosecond."""
    cycles: list[int] = []
    backward = ClientLink.backward

    def record(self: ClientLink, *args: object, **kwargs: object) -> object:
        done = backward(self, *args, **kwargs)  # type: ignore[arg-type]
        cycles.append(int(done.cycles))
        return done

    with monkeypatch.context() as patch:
        patch.setattr(ClientLink, "backward", record)
        with qemu_board(image, EMULATED_BOARDS[board], icount=True) as url:
            run_steps(url, export, 3)
    return float(np.mean(cycles)) * 1e9 / board_profile(board)["clock_hz"]


def test_soft_float_cost_in_instructions_per_step(
    digits_export: Path, images: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    cost = {
        b: instructions_per_step(b, images[b], digits_export, monkeypatch)
        for b in ("mps2_an386", "mps2_an385", "mps2_an385_m0plus")
    }
    print(
        "\ninstructions per training step (digits, batch 32): "
        + ", ".join(f"{b} {board_profile(b)['core']} {n / 1e6:.2f} M" for b, n in cost.items())
    )
    # The float32 master copy and gradient sums are hardware float on the M4F, soft-float
    # calls on the M3 (Thumb-2) and more so on the M0+ (Thumb-1).
    assert cost["mps2_an386"] < cost["mps2_an385"] < cost["mps2_an385_m0plus"]
