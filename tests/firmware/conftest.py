"""Fixtures for the C-kernel tests: `make hostlib` once per session, then a ctypes binding."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from ckernels import LIB_PATH, REPO, CKernels


@pytest.fixture(scope="session")
def ck() -> CKernels:
    """The C kernels, freshly built from firmware/kernels by `make hostlib`."""
    if shutil.which("gcc") is None or shutil.which("make") is None:
        pytest.skip("gcc/make not installed: cannot build build/hostlib/libtinysplit.so")
    proc = subprocess.run(
        ["make", "-s", "hostlib"], cwd=REPO, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, f"make hostlib failed:\n{proc.stdout}\n{proc.stderr}"
    return CKernels(LIB_PATH)
