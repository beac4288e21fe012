"""`tinysplit check`: the firmware's forward pass against TFLite Micro on the test shard."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tinysplit.host.board.check import check_export, compare


def test_native_firmware_matches_tflm_on_every_test_sample(digits_export: Path) -> None:
    result = check_export(digits_export, "native")
    assert result.outputs == 450
    assert result.mismatches == 0, result.first


def test_compare_reports_the_first_mismatches() -> None:
    ref = np.zeros((4, 3), dtype=np.int8)
    board = ref.copy()
    board[2, 1] = 5
    board[3, 0] = -1
    result = compare(board, ref)
    assert (result.outputs, result.mismatches) == (4, 2)
    assert (
        result.first[0] == "sample 2: 1 of 3 values differ, first at [1]: board 5, TFLite Micro 0"
    )


def test_conv_client_on_the_emulated_m4_matches_tflm(tmp_path: Path) -> None:
    """motion-cnn1d (Conv1D k5 + Conv1D k5 stride 2): every test output of the firmware on
    QEMU mps2-an386 equals TFLite Micro's."""
    from tinysplit.codegen.export import export_client

    export_client("motion-cnn1d", None, tmp_path / "motion", seed=0)
    result = check_export(tmp_path / "motion", "mps2_an386")
    assert result.outputs == 40
    assert result.mismatches == 0, result.first
