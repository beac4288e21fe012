"""Every optimized kernel against its reference kernel on every emulated core, bit for bit:
firmware/bench/kernel_check.c built for the board (DSP path on the M4, M7 and M33, the portable
path on the M0+ and M3) and run under QEMU; 320 random layers per kernel, the first mismatch
printed. The host build's portable path is tests/firmware/test_fast_kernels.py."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tinysplit.core.boards import emulated_boards, image_emulators
from tinysplit.host.board.build import build_firmware

pytestmark = pytest.mark.qemu

CHECK_APP = "firmware/bench/kernel_check.c"
KERNELS = {
    "conv2d_forward",
    "depthwise_forward",
    "fc_forward",
    "grad_requantize",
    "fc_backward_weights",
    "fc_backward_input",
    "conv2d_backward_weights",
    "conv2d_backward_input",
}
# every emulated board, and the Nucleo's own image on QEMU's STM32F405 (Cortex-M4F)
BOARDS = {b: (m, 0) for b, m in emulated_boards().items()} | image_emulators()


@pytest.mark.parametrize("board", sorted(BOARDS))
def test_fast_kernels_equal_the_reference_on_the_core(board: str, tmp_path: Path) -> None:
    if shutil.which("qemu-system-arm") is None:
        pytest.skip("qemu-system-arm not installed")
    machine, uart = BOARDS[board]
    elf = build_firmware(board, None, tmp_path / "build", make_vars={"APP_SRCS": CHECK_APP})
    out = tmp_path / "uart.txt"
    serial = ["-serial", "null"] * uart + ["-serial", f"file:{out}"]
    proc = subprocess.run(
        ["qemu-system-arm", "-M", machine, "-display", "none", "-monitor", "none", *serial,
         "-semihosting-config", "enable=on,target=native", "-kernel", str(elf)],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    text = out.read_text(errors="replace") if out.is_file() else ""
    assert proc.returncode == 0 and "check done" in text, (
        f"{board}: the check did not run to its end (QEMU {proc.returncode})\n{text[-2000:]}"
        f"\n{proc.stderr[-500:]}"
    )
    mismatches = [line for line in text.splitlines() if " mismatch " in line]
    assert not mismatches, f"{board}: " + "\n".join(mismatches)
    ok = dict(re.findall(r"^check (\w+) (\d+) ok$", text, re.M))
    assert set(ok) == KERNELS, f"{board}: checked {sorted(ok)}"
    assert all(int(n) >= 300 for n in ok.values()), ok
