"""The Renode scripts shipped for users (boards/<board>/renode/: a .resc and a Robot Framework
suite per board Renode models). Renode cannot be installed here: the suites run when
`renode-test` is on PATH and are reported as skipped, with the reason, when it is not."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tinysplit.core.boards import board_profile
from tinysplit.core.paths import source_root
from tinysplit.host.board.build import build_firmware

SUITES = sorted((source_root() / "boards").glob("*/renode/*.robot"))
UART = {
    "nucleo_f446re": "sysbus.usart2",
    "disco_f746ng": "sysbus.usart1",
    "nano33ble": "sysbus.uart0",
}


def test_a_suite_and_script_per_board_renode_models() -> None:
    assert sorted(p.parent.parent.name for p in SUITES) == sorted(UART)
    for suite in SUITES:
        board = suite.parent.parent.name
        script = suite.with_suffix(".resc")
        assert script.is_file()
        assert f"connector Connect {UART[board]}" in script.read_text()
        assert board_profile(board)["name"] in suite.read_text()  # HELLO's board name


@pytest.mark.parametrize("suite", SUITES, ids=lambda p: p.parent.parent.name)
def test_renode_suite(suite: Path, digits_export: Path, tmp_path: Path) -> None:
    renode_test = shutil.which("renode-test")
    if renode_test is None:
        pytest.skip(
            "renode-test not on PATH: install Renode (https://renode.io; the Linux portable "
            "package has renode-test) to boot the real boards' firmware on its models"
        )
    board = suite.parent.parent.name
    elf = build_firmware(board, digits_export, tmp_path / "build")
    out = subprocess.run(
        [renode_test, str(suite), "--variable", f"ELF:{elf}", "--results-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, (out.stdout + out.stderr)[-3000:]
