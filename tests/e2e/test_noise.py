"""The board's noise on its smashed data: bit-exact with the golden model, the same on a
retransmission, fresh each step, and its key in model_data.c only."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from e2e_support import run_steps

from tinysplit.codegen.export import Noise, board_noise, export_client, load_client_state
from tinysplit.core.golden.noise import noise_table, with_noise
from tinysplit.core.golden.step import ops_forward, ops_train_step
from tinysplit.host.board.build import build_firmware
from tinysplit.host.board.launch import native_board
from tinysplit.host.training.weights import first_blob_difference

STEPS = 6
LR = 0.1


@pytest.fixture(scope="module", params=["laplace", "gaussian"])
def noisy_export(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp(f"noisy-{request.param}") / "export"
    export_client("digits-mlp", None, out, seed=0, noise=Noise(request.param, 0.05))
    return out


def test_noisy_smashed_data_is_bit_exact_with_the_golden_model(
    noisy_export: Path, tmp_path: Path
) -> None:
    image = build_firmware("native", noisy_export, tmp_path / "build", sanitize=True)
    with native_board(image) as url:
        run = run_steps(url, noisy_export, STEPS, lr=LR)
    state = load_client_state(noisy_export)
    assert state.noise is not None
    table, key = state.noise
    changed = 0
    for i, rec in enumerate(run.steps, start=1):
        xs = state.x_train[rec.indices]
        clean = ops_forward(state.ops, xs)
        want = with_noise(clean, table, key, step=i)
        bad = np.argwhere(want != rec.smashed)
        assert bad.size == 0, (
            f"step {i}: board {tuple(bad[0])} = {rec.smashed[tuple(bad[0])]}, golden "
            f"{want[tuple(bad[0])]} (clean {clean[tuple(bad[0])]})"
        )
        changed += int(np.sum(want != clean))
        ops_train_step(state.ops, xs, rec.grads, rec.grad_scales, LR)
    assert changed > 0.3 * STEPS * clean.size  # the noise is there
    assert first_blob_difference(run.blob, state.ops) is None  # backward saw the clean outputs


def test_noise_rule_and_table() -> None:
    q = np.zeros((4, 300), np.int8)
    t = noise_table(0.05)
    a, b = with_noise(q, t, 0x1234, step=7), with_noise(q, t, 0x1234, step=7)
    assert np.array_equal(a, b)  # a retransmission carries the same noise
    assert not np.array_equal(a, with_noise(q, t, 0x1234, step=8))  # a new step, new noise
    assert not np.array_equal(a, with_noise(q, t, 0x4321, step=7))  # another board's key
    assert np.array_equal(with_noise(q, t, 0x1234, 7)[2:], with_noise(q[2:], t, 0x1234, 7, first=2))
    # Laplace of scale b steps: mean |x| = b
    b_steps = 0.05 * 255
    assert abs(float(np.mean(np.abs(t))) - b_steps) < 0.05 * b_steps
    g = noise_table(0.05, "gaussian")
    assert abs(float(np.std(g)) - b_steps) < 0.05 * b_steps
    assert not noise_table(0.0).any()
    # saturates instead of wrapping
    hot = with_noise(np.full((1, 300), 127, np.int8), noise_table(2.0), 1, 1)
    assert hot.max() == 127 and hot.min() == -128


def test_the_key_is_in_model_data_c_only(noisy_export: Path) -> None:
    table_key = board_noise(noisy_export)
    assert table_key is not None
    key = table_key[1]
    forms = [key.to_bytes(4, "little"), key.to_bytes(4, "big"), f"{key:08x}".encode(),
             str(key).encode()]  # fmt: skip
    for f in noisy_export.iterdir():
        if f.name != "model_data.c":
            data = f.read_bytes()
            assert not any(form in data for form in forms), f"{f.name} holds the noise key"
    assert f"{key:08x}" in (noisy_export / "model_data.c").read_text()
