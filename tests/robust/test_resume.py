"""A run killed at a random step (SIGKILL: no chance to clean up) or stopped with Ctrl-C, then
resumed with `tinysplit train --resume RUN_DIR`, ends bit-identical to an uninterrupted run:
client state, server weights and optimizer state, and the per-epoch history."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from robust_support import assert_one_line_error, interrupt_at, tinysplit

from tinysplit.host import cli
from tinysplit.host.board.launch import native_board
from tinysplit.host.training.checkpoint import Checkpoint, RunDir

EPOCHS = "3"  # 129 steps
EVERY = "4"


def train_args(model_dir: Path, run_dir: Path, *extra: str) -> list[str]:
    return [
        "train", "--model-dir", str(model_dir), "--run-dir", str(run_dir), "--epochs", EPOCHS,
        "--checkpoint-every", EVERY, "--no-baseline", "--json", *extra,
    ]  # fmt: skip


def final(run_dir: Path) -> Checkpoint:
    ck, _ = RunDir(run_dir).load()
    assert ck.finished
    return ck


def assert_identical(a: Checkpoint, b: Checkpoint) -> None:
    assert a.step == b.step
    assert a.client_crc == b.client_crc
    assert a.client_state == b.client_state
    for x, y in zip(a.server_weights + a.optimizer, b.server_weights + b.optimizer, strict=True):
        assert x.dtype == y.dtype and x.tobytes() == y.tobytes()
    assert a.progress["history"] == b.progress["history"]


@pytest.fixture(scope="module")
def reference(digits_export: Path, tmp_path_factory: pytest.TempPathFactory) -> Checkpoint:
    run = tmp_path_factory.mktemp("reference") / "run"
    out = tinysplit(*train_args(digits_export, run, "--board", "native"))
    assert out.returncode == 0, out.stderr[-3000:]
    summary = json.loads(out.stdout)
    assert summary["steps"] == 129 and summary["checkpoints"] > 129 // int(EVERY)
    return final(run)


def start_and_stop(args: list[str], run_dir: Path, sig: int, at_step: int) -> tuple[int, str]:
    """Starts `tinysplit *args`; once its checkpoint reaches at_step, sends sig."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "tinysplit.host.cli", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    meta = run_dir / "checkpoint.json"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if json.loads(meta.read_text())["step"] >= at_step:
                    break
            except (OSError, ValueError, KeyError):
                pass
            time.sleep(0.002)
        assert proc.poll() is None, f"the run ended before step {at_step}: {proc.stderr}"
        os.kill(proc.pid, sig)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, err


def test_killed_at_a_random_step_then_resumed_is_bit_identical(
    digits_export: Path, tmp_path: Path, reference: Checkpoint
) -> None:
    at = random.Random(os.getpid()).randint(5, 60)
    run = tmp_path / "run"
    code, _ = start_and_stop(
        train_args(digits_export, run, "--board", "native"), run, signal.SIGKILL, at
    )
    assert code == -signal.SIGKILL
    ck, _ = RunDir(run).load()  # whatever the kill interrupted, a checkpoint loads
    assert not ck.finished and ck.step >= at - int(EVERY)
    print(f"\nkilled at step >= {at}; resuming from checkpoint step {ck.step}")
    # the native board died with the host: the resumed run starts a new one and restores it
    out = tinysplit("train", "--resume", str(run), "--no-baseline", "--json")
    assert out.returncode == 0, out.stderr[-3000:]
    assert json.loads(out.stdout)["steps"] == 129
    assert_identical(final(run), reference)


def test_ctrl_c_checkpoints_the_step_then_resume_is_bit_identical(
    digits_export: Path, tmp_path: Path, reference: Checkpoint
) -> None:
    run = tmp_path / "run"
    code, err = start_and_stop(
        train_args(digits_export, run, "--board", "native"), run, signal.SIGINT, 30
    )
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]  # --json: notes too
    assert code == 130 and len(lines) == 1 and "Traceback" not in err, err[-2000:]
    ck, _ = RunDir(run).load()
    assert f"stopped after step {ck.step}; checkpoint saved in {run}" in lines[0]
    assert f"tinysplit train --resume {run}" in lines[0]
    out = tinysplit("train", "--resume", str(run), "--no-baseline", "--json")
    assert out.returncode == 0, out.stderr[-3000:]
    assert_identical(final(run), reference)


def test_private_run_resumes_on_the_board_that_kept_its_weights(
    digits_export: Path, robust_native: Path, tmp_path: Path, reference: Checkpoint
) -> None:
    """--private: the host never holds the client's weights. Stopped with Ctrl-C and resumed
    against the same board (which kept them), the run ends as the reference; its checkpoints
    hold no client state. A board that rebooted cannot be restored: one clear line."""
    run, copy = tmp_path / "run", tmp_path / "copy"
    with native_board(robust_native) as url:
        watcher = interrupt_at(run, 20)
        assert cli.main(train_args(digits_export, run, "--port", url, "--private")) == 130
        watcher.join()
        ck, config = RunDir(run).load()
        assert ck.client_state is None and config.private and not ck.finished
        shutil.copytree(run, copy)
        assert cli.main(["train", "--resume", str(run), "--port", url, "--no-baseline"]) == 0
    done = final(run)
    assert done.client_state is None and done.client_crc == reference.client_crc
    for x, y in zip(done.server_weights, reference.server_weights, strict=True):
        assert x.tobytes() == y.tobytes()
    assert done.progress["history"] == reference.progress["history"]
    # the copy of the interrupted run, on a fresh board (the export's weights): no way back
    out = tinysplit("train", "--resume", str(copy), "--board", "native", "--no-baseline")
    assert_one_line_error(out, "--private", "keeps no copy")


def test_conv_client_killed_then_resumed_is_bit_identical(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """motion-cnn1d (two Conv1D layers): the resumed run restores the conv state image on a new
    board (PUT_WEIGHTS) and ends as the uninterrupted run does."""
    from tinysplit.codegen.export import export_client

    export = tmp_path_factory.mktemp("motion") / "export"
    export_client("motion-cnn1d", None, export, seed=0)
    ref_run = tmp_path_factory.mktemp("motion-ref") / "run"
    out = tinysplit(*train_args(export, ref_run, "--board", "native"))
    assert out.returncode == 0, out.stderr[-3000:]
    assert json.loads(out.stdout)["steps"] == 15  # 3 epochs of 40 samples, batch 8
    run = tmp_path_factory.mktemp("motion-kill") / "run"
    code, _ = start_and_stop(train_args(export, run, "--board", "native"), run, signal.SIGKILL, 8)
    assert code == -signal.SIGKILL
    ck, _ = RunDir(run).load()
    assert not ck.finished and ck.step >= 4
    out = tinysplit("train", "--resume", str(run), "--no-baseline", "--json")
    assert out.returncode == 0, out.stderr[-3000:]
    assert_identical(final(run), final(ref_run))


def test_resume_takes_a_new_lr_and_max_steps(digits_export: Path, tmp_path: Path) -> None:
    """A run may go on with another --lr and --max-steps (issue "Careless and hostile input"
    #5: resume used to ignore them, so a run stopped by a bad lr could never continue): the
    board and the server's optimizer train with the new lr, and the run stops at the new
    --max-steps."""
    run = tmp_path / "run"
    code, _ = start_and_stop(
        train_args(digits_export, run, "--board", "native"), run, signal.SIGINT, 8
    )
    assert code == 130
    at = RunDir(run).load()[0].step
    out = tinysplit("train", "--resume", str(run), "--lr", "0.02", "--max-steps", str(at + 6),
                    "--no-baseline", "--json")  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    ck, config = RunDir(run).load()
    assert ck.finished and ck.step == at + 6
    assert config.lr == 0.02 and config.max_steps == at + 6
    lr_slot = [a for a in ck.optimizer if a.shape == ()][-1]  # SGD: iteration, learning_rate
    assert np.float32(lr_slot) == np.float32(0.02)
