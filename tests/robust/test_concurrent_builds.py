"""Several runs at once (issue "Careless and hostile input", defect 1): builds are keyed by
what they are built from and serialized per build folder, so runs of different exports started
at the same moment each run their own model, with the weights each would have alone."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tinysplit.codegen.export import export_client
from tinysplit.host.board.build import build_firmware, build_key

STEPS = "6"


def _train(export: Path, run_dir: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tinysplit.host.cli", "train", "--board", "native",
         "--model-dir", str(export), "--run-dir", str(run_dir), "--max-steps", STEPS,
         "--no-baseline", "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip


@pytest.fixture(scope="module")
def four_exports(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    base = tmp_path_factory.mktemp("four")
    out = []
    for seed in range(4):
        export_client("digits-mlp", None, base / f"seed{seed}", seed=seed)
        out.append(base / f"seed{seed}")
    return out


def test_eight_runs_of_four_exports_at_once(four_exports: list[Path], tmp_path: Path) -> None:
    env = {**os.environ, "TINYSPLIT_BUILD_DIR": str(tmp_path / "build")}  # empty: all build
    procs = [(e, _train(e, tmp_path / f"run{i}", env)) for i, e in enumerate(four_exports * 2)]
    crcs: dict[Path, set[str]] = {}
    for export, p in procs:
        stdout, stderr = p.communicate(timeout=600)
        assert p.returncode == 0, stderr[-3000:]
        summary = json.loads(stdout)
        assert summary["steps"] == int(STEPS)
        crcs.setdefault(export, set()).add(summary["weights_crc"])
    # the same export gives the same weights, different exports different ones
    assert all(len(c) == 1 for c in crcs.values()), crcs
    assert len({next(iter(c)) for c in crcs.values()}) == 4
    # ... and each is what a run alone (after the others, from the cached image) gives
    for i, export in enumerate(four_exports):
        p = _train(export, tmp_path / f"alone{i}", env)
        stdout, stderr = p.communicate(timeout=600)
        assert p.returncode == 0, stderr[-3000:]
        assert {json.loads(stdout)["weights_crc"]} == crcs[export]


def test_images_are_keyed_by_content_not_by_folder(
    four_exports: list[Path], tmp_path: Path
) -> None:
    """Same export bytes in another folder: same key, same image, no make. Edit one byte of
    the generated C: another key, another image; the first is untouched."""
    import shutil

    a = four_exports[0]
    copy = tmp_path / "copy"
    shutil.copytree(a, copy)
    assert build_key("native", a, {}) == build_key("native", copy, {})
    build = tmp_path / "build"
    first = build_firmware("native", a, build)
    before = first.read_bytes()
    assert build_firmware("native", copy, build) == first
    src = copy / "model_data.c"
    src.write_text(src.read_text() + "/* edited by hand */\n")
    assert build_key("native", a, {}) != build_key("native", copy, {})
    second = build_firmware("native", copy, build)
    assert second != first and first.read_bytes() == before
