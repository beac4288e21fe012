"""End to end on the emulated Cortex-M4 (QEMU mps2-an386): same steps, same weights as native."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from e2e_support import run_steps

from tinysplit.host.launch import native_board, qemu_board

STEPS = 8


@pytest.mark.qemu
def test_qemu_and_native_end_bit_identical(
    digits_export: Path, native_image: Path, qemu_image: Path
) -> None:
    with qemu_board(qemu_image) as url:
        emulated = run_steps(url, digits_export, STEPS)
    with native_board(native_image) as url:
        native = run_steps(url, digits_export, STEPS)
    for i, (a, b) in enumerate(zip(emulated.steps, native.steps, strict=True), start=1):
        assert np.array_equal(a.smashed, b.smashed), f"step {i}: cut activations differ"
        assert a.weights_crc == b.weights_crc, f"step {i}: weights differ after the step"
    assert emulated.blob == native.blob
    assert len(emulated.steps) == STEPS
