"""Split training on every emulated board (QEMU mps2-an385 M3, -an386 M4F, -an500 M7, -an505
M33, and Cortex-M0+ code on -an385): a few steps on the digits workload end with the client's
weights bit-identical to the native build's after the same steps. Same integer math, same float
order on hard- and soft-float cores (-ffp-contract=off, no FMA).

Under `-icount shift=0` the cycle counter counts instructions, which measures what the
soft-float float32 master copy costs on cores without an FPU.

A real board's own image (the ELF a user flashes) runs where QEMU models its chip closely
enough (profile.json "image_runs_on"): the Nucleo-F446RE's on netduinoplus2 (STM32F405, the
same USART2), receiving by interrupt."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from e2e_support import Run, run_steps

from tinysplit.core.boards import board_profile, emulated_boards, image_emulators
from tinysplit.host.board.build import build_firmware
from tinysplit.host.board.launch import native_board, open_port, qemu_board
from tinysplit.host.training.schedule import schedule
from tinysplit.host.training.server import ServerSegment
from tinysplit.host.training.session import Export
from tinysplit.host.training.trainer import quantize_cut_gradient
from tinysplit.host.transport.link import ClientLink

EMULATED_BOARDS = emulated_boards()
REAL_IMAGES = image_emulators()

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


@pytest.fixture(scope="module")
def real_images(digits_export: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return {
        b: build_firmware(b, digits_export, tmp_path_factory.mktemp(f"build-{b}"))
        for b in REAL_IMAGES
    }


def test_a_real_board_image_runs_in_ci() -> None:
    assert "nucleo_f446re" in REAL_IMAGES, "the Nucleo-F446RE image must boot on netduinoplus2"


@pytest.mark.parametrize("board", sorted(REAL_IMAGES))
def test_a_real_boards_own_image_trains_bit_identical_to_native(
    board: str, digits_export: Path, real_images: dict[str, Path], native_run: Run
) -> None:
    machine, uart = REAL_IMAGES[board]
    with qemu_board(real_images[board], machine, uart=uart) as url:
        emulated = run_steps(url, digits_export, STEPS)
    assert emulated.board == board_profile(board)["name"]
    for i, (a, b) in enumerate(zip(emulated.steps, native_run.steps, strict=True), start=1):
        assert np.array_equal(a.smashed, b.smashed), f"{board} step {i}: cut activations differ"
        assert a.weights_crc == b.weights_crc, f"{board} step {i}: weights differ after the step"
    assert emulated.blob == native_run.blob


class _Flooding:
    """The host's port, but while `on` every frame goes out twice, back to back: the second copy
    arrives while the board runs the step the first one started (a GRAD frame mid-kernel)."""

    def __init__(self, port: object) -> None:
        self._port = port
        self.on = False
        self.copies = 0
        self.bytes = 0

    def write(self, data: bytes, /) -> int | None:
        n: int | None = self._port.write(data)  # type: ignore[attr-defined]
        if self.on:
            self._port.write(data)  # type: ignore[attr-defined]
            self.copies += 1
            self.bytes += len(data)
        return n

    def __getattr__(self, name: str) -> object:
        return getattr(self._port, name)


#: The board's receive-error counters (STATS): a byte lost on the way shows in one of them.
RX_ERRORS = ("crc_errors", "cobs_errors", "oversize", "short_frames", "bad_magic",
             "bad_version", "bad_length", "resyncs", "rx_timeouts")  # fmt: skip


@pytest.mark.parametrize("board", sorted(REAL_IMAGES))
def test_a_frame_flooding_rx_while_the_board_computes_loses_no_byte(
    board: str, digits_export: Path, real_images: dict[str, Path], native_run: Run
) -> None:
    """Every GRAD frame is sent twice back to back: the copy lands in the RX ring while the
    board's backward kernels run. Each copy must arrive whole (the board refuses it as a replay,
    not as a damaged frame) and the run must end as the native one."""
    export = Export.load(digits_export)
    server = ServerSegment.load(digits_export / "server.keras", 0.1)
    machine, uart = REAL_IMAGES[board]
    with qemu_board(real_images[board], machine, uart=uart) as url:
        port = open_port(url, timeout=0.05)
        try:
            flood = _Flooding(port)
            link = ClientLink(flood, **export.link_key())  # type: ignore[arg-type]
            hello = link.hello(export.model_hash)
            crcs = []
            for s in schedule(hello.n_train, 32, epochs=100, seed=0):
                if s.step > STEPS:
                    break
                sm = link.forward(s.step, 0.1, s.indices)
                loss, grad, _ = server.train_step(sm.dequantize(), sm.labels)
                q, scales = quantize_cut_gradient(grad, loss, s.step)
                flood.on = True
                crcs.append(link.backward(s.step, q, scales).weights_crc)
                flood.on = False
            stats = link.board_stats()
            blob = link.pull_weights()
        finally:
            port.close()
    print(f"\n{board}: {flood.copies} frames ({flood.bytes:,} B) sent twice; board {stats}")
    assert flood.copies >= STEPS
    assert {k: stats[k] for k in RX_ERRORS} == dict.fromkeys(RX_ERRORS, 0)
    assert stats["replays"] == flood.copies, "every second copy must arrive whole"
    assert crcs == [r.weights_crc for r in native_run.steps]
    assert blob == native_run.blob
