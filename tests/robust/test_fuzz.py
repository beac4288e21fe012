"""libFuzzer on the C frame decoder and the client's message handlers (scripts/fuzz.sh):
60 s in CI (CI=true), ~10 s otherwise. No crash, no sanitizer report, no failed check."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_fuzzers_find_nothing(tmp_path: Path) -> None:
    """The client is built for a sealed, U-shaped export with noise and a 4-bit wire, so that
    every message path runs (PUT_WEIGHTS opens a sealed image, SMASHED_PACKED frames carry
    noise, HEAD_IN feeds the head, GRAD_PACKED is read); fuzz_frame also runs the wire formats'
    codec, SPARSE included, on its inputs."""
    from tinysplit.codegen.export import Noise, export_client

    if shutil.which("clang") is None:
        pytest.skip("clang not installed (Debian: clang libclang-rt-14-dev)")
    model = tmp_path / "model"
    export_client("digits-mlp", None, model, seed=0, private=True, noise=Noise("laplace", 0.05),
                  labels="client", wire="int4")  # fmt: skip
    seconds = 60 if os.environ.get("CI", "").lower() == "true" else 10
    out = subprocess.run(
        ["bash", str(ROOT / "scripts" / "fuzz.sh"), str(seconds)],
        cwd=ROOT,
        env={**os.environ, "MODEL_DIR": str(model)},
        capture_output=True,
        text=True,
        timeout=seconds + 600,
        check=False,
    )
    print(out.stdout)
    assert out.returncode == 0, out.stdout + out.stderr[-3000:]
    found = dict(re.findall(r"^fuzz_(\w+): (\d+) execs in .* 0 crashes$", out.stdout, re.M))
    assert set(found) == {"frame", "client"}, out.stdout
    assert all(int(n) > 1000 for n in found.values()), out.stdout
