"""Bad input: each one line on stderr saying what to do, exit status 2, no traceback, and
nothing the user had is changed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest


def tinysplit(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tinysplit.host.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=env,
    )


def assert_one_line_error(out: subprocess.CompletedProcess[str], *needles: str) -> str:
    lines = [ln for ln in out.stderr.splitlines() if ln.strip()]
    assert out.returncode == 2, out.stderr[-3000:]
    assert "Traceback" not in out.stderr, out.stderr[-3000:]
    assert len(lines) == 1 and lines[0].startswith("error: "), out.stderr[-3000:]
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def test_port_that_does_not_exist(digits_export: Path) -> None:
    out = tinysplit(
        "train", "--port", "/dev/ttyNOPE9", "--model-dir", str(digits_export), "--no-baseline"
    )
    assert_one_line_error(out, "/dev/ttyNOPE9")


def test_model_hash_mismatch_names_both_hashes(digits_export: Path, tmp_path: Path) -> None:
    """The board runs the digits export; the host is pointed at another export (another
    model): the host refuses before training and names both hashes."""
    from tinysplit.codegen.export import export_client

    other = tmp_path / "other"
    export_client("digits-mlp", None, other, seed=1)
    board_hash = json.loads((digits_export / "manifest.json").read_text())["model_hash"]
    other_hash = json.loads((other / "manifest.json").read_text())["model_hash"]
    assert board_hash != other_hash
    before = {p.name: p.read_bytes() for p in other.iterdir() if p.is_file()}
    from tinysplit.host.board.build import build_firmware
    from tinysplit.host.board.launch import native_board

    image = build_firmware("native", digits_export, tmp_path / "build")
    with native_board(image) as url:
        out = tinysplit("train", "--port", url, "--model-dir", str(other), "--no-baseline")
    assert_one_line_error(out, board_hash, other_hash)
    assert {p.name: p.read_bytes() for p in other.iterdir() if p.is_file()} == before


def test_qemu_not_installed(digits_export: Path, tmp_path: Path) -> None:
    """PATH has the compilers but no qemu-system-arm."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for d in os.environ.get("PATH", "").split(os.pathsep):
        if not os.path.isdir(d):
            continue
        for name in os.listdir(d):
            target = bindir / name
            if name.startswith("qemu-system") or target.exists():
                continue
            target.symlink_to(os.path.join(d, name))
    env = dict(os.environ, PATH=str(bindir))
    out = tinysplit(
        "train",
        "--board",
        "mps2_an386",
        "--model-dir",
        str(digits_export),
        "--no-baseline",
        env=env,
    )
    assert_one_line_error(out, "qemu-system-arm", "setup.sh")


@pytest.fixture(scope="module")
def small_npz(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = np.random.default_rng(0)
    path = tmp_path_factory.mktemp("data") / "d.npz"
    np.savez(
        path,
        x_train=rng.random((40, 6), dtype=np.float32),
        y_train=rng.integers(0, 3, 40),
        x_test=rng.random((10, 6), dtype=np.float32),
        y_test=rng.integers(0, 3, 10),
    )
    return path


def test_keras_model_with_a_layer_the_client_cannot_run(tmp_path: Path, small_npz: Path) -> None:
    import keras

    model = keras.Sequential(
        [
            keras.Input((6,)),
            keras.layers.Dense(8, activation="tanh", name="squash"),
            keras.layers.Dense(3),
        ]
    )
    path = tmp_path / "m.keras"
    model.save(path)
    out = tinysplit(
        "export", str(path), "--cut", "1", "--out", str(tmp_path / "x"), "--data", str(small_npz)
    )
    line = assert_one_line_error(out, "squash")
    assert "Dense" in line  # it lists what is supported
    assert not (tmp_path / "x" / "model_data.c").exists()


def test_export_directory_that_is_not_one(tmp_path: Path) -> None:
    out = tinysplit("train", "--board", "native", "--model-dir", str(tmp_path), "--no-baseline")
    assert_one_line_error(out, "tinysplit export")
