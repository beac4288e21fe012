"""The end-to-end check on a real board (opt-in): `pytest --port /dev/ttyACM0 --board
nucleo_f446re [--model-dir DIR]`, where the board runs firmware built from export DIR (default
out/demo/export, what `tinysplit demo` and the README's real-board steps write). Skipped
without --port."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from e2e_support import run_steps

from tinysplit.codegen.export import load_client_state
from tinysplit.core.golden import FCLayer
from tinysplit.core.golden.step import ops_train_step

STEPS = 5
LR = 0.1


@pytest.mark.hardware
def test_real_board_trains_bit_exact_with_the_golden_model(request: pytest.FixtureRequest) -> None:
    port = request.config.getoption("--port")
    if not port:
        pytest.skip("no real board: give --port URL --model-dir DIR (see README)")
    export = Path(request.config.getoption("--model-dir") or "out/demo/export")
    if not (export / "manifest.json").is_file():
        pytest.fail(f"{export} is no export: give --model-dir, the export the board was built from")
    run = run_steps(port, export, STEPS, lr=LR)
    board = request.config.getoption("--board")
    if board:
        from tinysplit.core.boards import board_profile

        assert run.board == board_profile(board)["name"], f"the board on {port} is {run.board}"
    state = load_client_state(export)
    (layer,) = state.ops
    assert isinstance(layer, FCLayer)
    for rec in run.steps:
        ops_train_step([layer], state.x_train[rec.indices], rec.grads, rec.grad_scales, LR)
    got = run.layers[0]
    assert np.array_equal(got.w, layer.w)
    assert np.array_equal(got.master_w.view(np.uint32), layer.master_w.view(np.uint32))
    assert np.array_equal(got.bias, layer.bias)
