"""End to end on the emulated Cortex-M4 (QEMU mps2-an386): same steps, same weights as native."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from e2e_support import run_steps

from tinysplit.host.board.launch import native_board, qemu_board

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


def test_linked_ram_is_within_ten_percent_of_the_plan_and_fits(
    digits_export: Path, qemu_image: Path
) -> None:
    import json

    from tinysplit.core.boards import board_profile
    from tinysplit.host.board.linkmap import ram_flash_from_map

    plan = json.loads((digits_export / "plan.json").read_text())
    linked = ram_flash_from_map(qemu_image.with_suffix(".map"))
    ram_limit = board_profile("mps2_an386")["ram_bytes"]
    print(
        f"\nRAM planned {plan['ram_peak']} B, linked {linked['ram_used']} B "
        f"(data {linked['data']} + bss {linked['bss']} + stack {linked['stack']}) of {ram_limit}"
    )
    assert abs(linked["ram_used"] - plan["ram_peak"]) <= 0.10 * plan["ram_peak"]
    assert linked["ram_used"] <= ram_limit


@pytest.mark.qemu
def test_demo_json_on_the_emulated_board(tmp_path: Path) -> None:
    """`tinysplit demo --json` end to end under QEMU, cut short to a few steps."""
    import json
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-m", "tinysplit.host.cli", "demo", "--out", str(tmp_path),
         "--max-steps", "15", "--epochs", "1", "--json"],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    s = json.loads(out.stdout)
    assert s["board"] == "mps2_an386" and s["steps"] == 15
    assert 0 < s["ram_linked"] <= 128 * 1024 and s["ram_planned"] > 0
    assert s["bytes_to_server"] > 15 * 32 * 32 and s["bytes_to_client"] > 15 * 32 * 32
    assert 0.0 <= s["split_accuracy"] <= 1.0 and 0.0 <= s["centralized_accuracy"] <= 1.0
