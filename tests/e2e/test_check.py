"""`tinysplit check`: the firmware's forward pass against TFLite Micro on the test shard."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tinysplit.host.check import check_export, compare


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
