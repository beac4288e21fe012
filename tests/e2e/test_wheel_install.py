"""tinysplit installed as a wheel (`pip install .`, not editable) and run from another folder:
the firmware and board sources travel as package data, builds go to the user's cache, and the
demo trains on the native board."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tinysplit.core.paths import source_root


def test_wheel_runs_the_demo_from_another_folder(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels),
         str(source_root())],
        check=True, capture_output=True, timeout=600,
    )  # fmt: skip
    (wheel,) = wheels.glob("tinysplit-*.whl")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    # The dependencies (TensorFlow, ...) come from this environment's site-packages as a plain
    # path entry: its .pth files, among them the editable install's finder, are not run.
    (purelib,) = (venv / "lib").glob("python3*/site-packages")
    deps = [p for p in sys.path if p.endswith("site-packages")]
    (purelib / "deps.pth").write_text("\n".join(deps) + "\n")
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--no-deps", str(wheel)]
    subprocess.run(pip, check=True, capture_output=True, timeout=600)

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    env.pop("TINYSPLIT_BUILD_DIR", None)
    where = subprocess.run(
        [str(venv / "bin" / "python"), "-c",
         "from tinysplit.core.paths import source_root, build_root; "
         "print(source_root()); print(build_root())"],
        cwd=elsewhere, env=env, capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    src, build = (Path(line) for line in where.stdout.splitlines())
    assert src.is_relative_to(purelib), src  # the installed copy, not this checkout
    assert (src / "firmware" / "firmware.mk").is_file() and (src / "boards" / "native").is_dir()
    assert build == tmp_path / "cache" / "tinysplit" / "build"

    out = subprocess.run(
        [str(venv / "bin" / "tinysplit"), "demo", "--board", "native", "--max-steps", "50",
         "--no-baseline", "--json", "--out", "demo"],
        cwd=elsewhere, env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    summary = json.loads(out.stdout)
    assert summary["steps"] == 50 and summary["board"] == "native"
    assert (elsewhere / "demo" / "run").is_dir()
    assert (build / "native" / "tinysplit").is_file()


def test_every_python_package_is_in_the_wheel() -> None:
    """setup.py lists the Python packages by hand: a new folder with an __init__.py must be
    there, or the wheel ships without it (the demo above may never import it)."""
    import ast

    root = Path(__file__).resolve().parents[2]
    tree = ast.parse((root / "setup.py").read_text())
    listed = next(
        ast.literal_eval(node.value)
        for node in tree.body
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "PYTHON_PACKAGES"
    )
    found = {
        ".".join(("tinysplit", *init.parent.relative_to(root).parts))
        for top in ("core", "codegen", "host")
        for init in (root / top).rglob("__init__.py")
    }
    assert found - set(listed) == set(), "packages missing from setup.py PYTHON_PACKAGES"
    assert len(listed) == len(set(listed)), "a package listed twice"
