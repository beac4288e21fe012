"""Where tinysplit's firmware and board sources are, and where builds go.

The C sources travel with the Python package: in a checkout they are the repository's
`firmware/` and `boards/` folders; in an installed wheel the same two folders are package data
under `tinysplit/`. Either way they sit side by side under one folder, the source root, from
which `make -f firmware/firmware.mk` builds.
"""

from __future__ import annotations

import functools
import importlib.util
import os
from pathlib import Path


@functools.cache
def source_root() -> Path:
    """The folder holding `firmware/` and `boards/` (the checkout, or site-packages/tinysplit)."""
    spec = importlib.util.find_spec("tinysplit.firmware")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("tinysplit's firmware sources are not installed: reinstall tinysplit")
    return Path(next(iter(spec.submodule_search_locations))).resolve().parent


def is_checkout() -> bool:
    """True in a source checkout (the repository's Makefile sits at the source root)."""
    return (source_root() / "Makefile").is_file()


def build_root() -> Path:
    """Where firmware builds go: $TINYSPLIT_BUILD_DIR, else build/ in a checkout, else the user's
    cache (~/.cache/tinysplit/build): an installed package never writes into site-packages."""
    env = os.environ.get("TINYSPLIT_BUILD_DIR")
    if env:
        return Path(env).resolve()
    if is_checkout():
        return source_root() / "build"
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "tinysplit" / "build"
