"""Package layout that pyproject.toml cannot state: the firmware/ and boards/ trees, folder by
folder, travel as package data, so that adding a board or a kernel folder needs no edit here."""

from pathlib import Path

from setuptools import setup

PYTHON_PACKAGES = [
    "tinysplit.core",
    "tinysplit.core.golden",
    "tinysplit.core.protocol",
    "tinysplit.codegen",
    "tinysplit.host",
    "tinysplit.host.bench",
    "tinysplit.host.commands",
    "tinysplit.host.board",
    "tinysplit.host.costmodel",
    "tinysplit.host.planner",
    "tinysplit.host.privacy",
    "tinysplit.host.serving",
    "tinysplit.host.training",
    "tinysplit.host.transport",
]
# Files under these folders that are not sources of a build (fuzz corpora, caches).
SKIP = {"__pycache__", "corpus"}


def source_tree(package: str, folder: str) -> list[str]:
    """package plus one subpackage per folder below `folder` (data only, no __init__.py)."""
    subdirs = [
        p for p in sorted(Path(folder).rglob("*")) if p.is_dir() and not SKIP & set(p.parts)
    ]
    return [package] + [".".join((package, *p.relative_to(folder).parts)) for p in subdirs]


TREES = source_tree("tinysplit.firmware", "firmware") + source_tree("tinysplit.boards", "boards")

setup(
    packages=PYTHON_PACKAGES + TREES,
    package_data={"tinysplit.host.costmodel": ["fitted.json"], **{p: ["*"] for p in TREES}},
)
