"""End to end on the native build: the very same firmware C as the boards, UART on a pty."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from e2e_support import run_steps

from tinysplit.codegen.export import load_client_state
from tinysplit.core.golden import FCLayer
from tinysplit.core.golden.step import ops_forward, ops_train_step
from tinysplit.host.board.build import build_firmware
from tinysplit.host.board.launch import native_board

STEPS = 12
LR = 0.1


def test_firmware_training_matches_golden_model_bit_for_bit(
    digits_export: Path, native_image: Path
) -> None:
    """Every cut activation the board sent and its weights after STEPS steps equal the numpy
    golden model fed the same indices and gradients."""
    with native_board(native_image) as url:
        run = run_steps(url, digits_export, STEPS, lr=LR)
    state = load_client_state(digits_export)
    (layer,) = state.ops
    assert isinstance(layer, FCLayer)
    for i, rec in enumerate(run.steps, start=1):
        xs = state.x_train[rec.indices]
        want = ops_forward([layer], xs)
        bad = np.argwhere(want != rec.smashed)
        assert bad.size == 0, (
            f"step {i}: board activation {tuple(bad[0])} = {rec.smashed[tuple(bad[0])]}, "
            f"golden {want[tuple(bad[0])]}"
        )
        assert np.float32(rec.scale) == layer.out_scale and rec.zero_point == layer.out_zp
        ops_train_step([layer], xs, rec.grads, rec.grad_scales, LR)
    got = run.layers[0]
    for name in ("master_w", "master_b", "w", "bias", "w_scale"):
        a, b = getattr(got, name), getattr(layer, name)
        bad = np.argwhere(
            a.view(np.uint8 if a.dtype.itemsize == 1 else np.uint32)
            != b.view(np.uint8 if b.dtype.itemsize == 1 else np.uint32)
        )
        assert bad.size == 0, (
            f"{name}{tuple(bad[0])}: board {a[tuple(bad[0])]}, golden {b[tuple(bad[0])]}"
        )
    assert got.range_min == layer.range_min and got.range_max == layer.range_max
    # the weights moved: the test is not comparing two untouched initial states
    assert not np.array_equal(got.master_w, load_client_state(digits_export).ops[0].master_w)


def test_sanitized_firmware_trains_cleanly(digits_export: Path, tmp_path: Path) -> None:
    """The firmware under ASan + UBSan: a few steps and a weight pull, no report."""
    image = build_firmware("native", digits_export, tmp_path / "san", sanitize=True)
    with native_board(image) as url:
        run = run_steps(url, digits_export, 3, lr=LR)
    assert len(run.steps) == 3 and run.blob


DEMO_KEYS = {
    "split_accuracy",
    "centralized_accuracy",
    "bytes_to_server",
    "bytes_to_client",
    "steps_per_s",
    "ram_planned",
    "ram_linked",
    "board",
}


def simulate(export_dir: Path, *, frozen_ranges: bool) -> float:
    """The same run with the golden model in-process instead of the firmware."""
    from tinysplit.codegen.export import load_client_state
    from tinysplit.host.training.server import ServerSegment
    from tinysplit.host.training.session import Export
    from tinysplit.host.training.simulate import GoldenClient
    from tinysplit.host.training.trainer import TrainConfig, split_train

    hp = Export.load(export_dir).hyper
    cfg = TrainConfig(hp["epochs"], hp["batch"], hp["lr"], hp["seed"])
    client = GoldenClient(load_client_state(export_dir), frozen_ranges=frozen_ranges)
    server = ServerSegment.load(export_dir / "server.keras", cfg.lr)
    return split_train(client, server, cfg, progress=False, eval_every_epoch=False).test_accuracy


def test_demo_on_native_reaches_centralized_float_accuracy(tmp_path: Path) -> None:
    """The whole reference run (all epochs) through `tinysplit demo --board native --json`.

    Also: the firmware's accuracy equals the golden model's in-process run exactly (same
    integer math, same float order), and the running activation range costs no accuracy
    where ranges frozen at export do (both printed)."""
    out = subprocess.run(
        [sys.executable, "-m", "tinysplit.host.cli", "demo", "--board", "native",
         "--out", str(tmp_path), "--json"],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    summary = json.loads(out.stdout)
    assert summary.keys() >= DEMO_KEYS
    assert summary["bytes_to_server"] > 0 and summary["bytes_to_client"] > 0
    split, central = summary["split_accuracy"], summary["centralized_accuracy"]
    ema = simulate(tmp_path / "export", frozen_ranges=False)
    frozen = simulate(tmp_path / "export", frozen_ranges=True)
    print(
        f"\nsplit on firmware {split:.4f} | golden, running range {ema:.4f} | golden, frozen "
        f"range {frozen:.4f} | centralized float {central:.4f}"
    )
    assert split >= 0.95
    assert abs(split - central) <= 0.015
    assert split == ema


@pytest.mark.parametrize("steps", [1])
def test_each_step_reports_the_crc_of_the_weights_it_pulled(
    digits_export: Path, native_image: Path, steps: int
) -> None:
    import zlib

    with native_board(native_image) as url:
        run = run_steps(url, digits_export, steps, lr=LR)
    assert run.steps[-1].weights_crc == zlib.crc32(run.blob)
