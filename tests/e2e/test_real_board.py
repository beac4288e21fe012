"""The end-to-end check on a real board (opt-in): `pytest tests/e2e/test_real_board.py
--port /dev/ttyACM0 --board nucleo_f446re --model-dir DIR`, where the board runs firmware built
from export DIR. Skipped without --port."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from e2e_support import run_steps

from tinysplit.codegen.export import load_client_state
from tinysplit.codegen.golden import client_train_step

STEPS = 5
LR = 0.1


@pytest.mark.hardware
def test_real_board_trains_bit_exact_with_the_golden_model(request: pytest.FixtureRequest) -> None:
    port = request.config.getoption("--port")
    if not port:
        pytest.skip("no real board: give --port URL --model-dir DIR (see README)")
    model_dir = request.config.getoption("--model-dir")
    if not model_dir:
        pytest.fail("--port needs --model-dir: the export the board's firmware was built from")
    export = Path(model_dir)
    run = run_steps(port, export, STEPS, lr=LR)
    state = load_client_state(export)
    (layer,) = state.layers
    for rec in run.steps:
        client_train_step(layer, state.x_train[rec.indices], rec.grads, rec.grad_scales, LR)
    got = run.layers[0]
    assert np.array_equal(got.w, layer.w)
    assert np.array_equal(got.master_w.view(np.uint32), layer.master_w.view(np.uint32))
    assert np.array_equal(got.bias, layer.bias)
