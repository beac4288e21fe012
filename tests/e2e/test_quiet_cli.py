"""No TensorFlow or absl log line reaches a user's terminal, whatever the CPU.

TensorFlow prints its absl start-up warning and a oneDNN notice wherever oneDNN is on, which the
CPU decides (seen on AMD EPYC and on Xeon, not everywhere). TF_ENABLE_ONEDNN_OPTS=1 turns oneDNN
on, and so the noise, on any x86 CPU: these tests run the CLI that way, with no
TF_CPP_MIN_LOG_LEVEL of their own, so that they fail on every machine if the silencing breaks.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def noisy_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TF_CPP")}
    env["TF_ENABLE_ONEDNN_OPTS"] = "1"
    return env


def tinysplit(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tinysplit.host.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=noisy_env(),
    )


def test_export_prints_nothing_on_stderr(tmp_path: Path) -> None:
    out = tinysplit("export", "digits-mlp", "--out", str(tmp_path / "export"))
    assert out.returncode == 0, out.stderr
    assert out.stderr == ""
    assert "model hash" in out.stdout


def test_failing_train_prints_only_its_error_line(nan_server_export: Path, tmp_path: Path) -> None:
    """A run that loads TensorFlow (the server segment) and then fails: stderr holds the one
    `error:` line and nothing else."""
    export = nan_server_export
    out = tinysplit(
        "train", "--board", "native", "--model-dir", str(export),
        "--run-dir", str(tmp_path / "run"), "--no-baseline", "--max-steps", "2",
    )  # fmt: skip
    assert out.returncode == 2, out.stderr
    lines = out.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: step 1:"), out.stderr


def test_verbose_lets_the_native_lines_through(tmp_path: Path) -> None:
    """The control: with --verbose the same export shows TensorFlow's own lines, so the tests
    above would see them if tinysplit stopped keeping them off stderr."""
    out = tinysplit("--verbose", "export", "digits-mlp", "--out", str(tmp_path / "export"))
    assert out.returncode == 0, out.stderr
    assert "oneDNN" in out.stderr or "absl" in out.stderr, out.stderr
