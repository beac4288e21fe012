"""Build the firmware for a board with the repo's Makefile (`make BOARD=... MODEL_DIR=...`).

Builds are keyed by what they are built from and safe to run at the same time: `make` works in
one folder per board under an exclusive lock, and each finished image is copied, whole, into
`images/<key>/` beside it, where the key is a hash of every input (the firmware and board
sources, the export's generated C, the board and the build switches). A later build with the
same key takes the image from there without running make; two runs of different exports wait
for each other's make and then each gets its own image, never a mix.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from tinysplit.core.boards import boards
from tinysplit.core.errors import BuildError, ToolMissing
from tinysplit.core.paths import build_root, source_root

# What scripts/setup.sh installs for each program the build runs (named in ToolMissing).
_PACKAGES = {
    "arm-none-eabi-gcc": "gcc-arm-none-eabi and libnewlib-arm-none-eabi",
    "gcc": "gcc",
    "make": "make",
}
# The build rules, relative to the source root (firmware/ and boards/ side by side).
MAKEFILE = "firmware/firmware.mk"
# Lines of compiler/linker output kept in a BuildError after its first line.
_MAX_LOG_LINES = 40


def _require_tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        what = _PACKAGES.get(name, name)
        raise ToolMissing(f"{name} not found: run scripts/setup.sh (installs {what})")
    return found


def _make_vars(board: str, make: str, variables: Mapping[str, str]) -> dict[str, str]:
    """Asks the Makefile (with board.mk) for variables, e.g. CC and TARGET."""
    args = [f"{k}={v}" for k, v in variables.items()]
    wanted = ["CC", "TARGET"]
    result = subprocess.run(
        [make, "-s", "-C", str(source_root()), "-f", MAKEFILE, f"BOARD={board}", *args]
        + [f"print-{name}" for name in wanted],
        capture_output=True,
        text=True,
        check=False,
    )
    lines = result.stdout.splitlines()
    if result.returncode != 0 or len(lines) != len(wanted):
        raise BuildError(
            f"cannot read the build settings of board {board!r} (boards/{board}/board.mk): "
            f"fix that file\n{_tail(result.stderr + result.stdout)}"
        )
    return dict(zip(wanted, (line.strip() for line in lines), strict=True))


def _tail(log: str) -> str:
    lines = [line for line in log.splitlines() if line.strip()]
    return "\n".join(lines[-_MAX_LOG_LINES:])


def _explain_failure(board: str, log: str) -> str:
    """First line of a BuildError: what failed and what to do."""
    overflow = re.search(r"region `(\w+)' overflowed by (\d+) bytes", log)
    if overflow:
        region, excess = overflow.groups()
        return (
            f"firmware does not fit board {board}: {region} overflowed by {excess} bytes; "
            "use a smaller model or batch, or a board with more memory"
        )
    ours = re.search(r"tinysplit: (.+)", log)
    if ours:
        return f"firmware for board {board} did not link: {ours.group(1).strip()}"
    if re.search(r"undefined reference to|cannot find -l|ld returned", log):
        return f"firmware for board {board} did not link: see the linker output below"
    return f"firmware for board {board} did not compile: fix the first error below"


# Source folders whose files go into an image (the Makefile's CORE/APP/BOARD sources and rules).
_SOURCE_DIRS = ("firmware", "boards")
_SOURCE_SUFFIXES = {".c", ".h", ".S", ".s", ".ld", ".mk", ".py"}


def _source_files(root: Path) -> Iterator[Path]:
    for top in _SOURCE_DIRS:
        for path in sorted((root / top).rglob("*")):
            if (
                path.suffix in _SOURCE_SUFFIXES
                and path.is_file()
                and "__pycache__" not in path.parts
            ):
                yield path


# Where things are, not what is built: not part of a build's key.
_PLACE_VARIABLES = frozenset({"BUILD_DIR", "MODEL_DIR", "PYTHON"})


def build_key(board: str, model_dir: Path | None, variables: Mapping[str, str]) -> str:
    """Hash of everything an image is built from: the firmware and board sources, every file
    of the export that the build reads (its generated C and headers), the board and the make
    variables (flags), but not where the build happens."""
    root = source_root()
    h = hashlib.sha256()
    h.update(f"board={board}\n".encode())
    for k in sorted(set(variables) - _PLACE_VARIABLES):
        h.update(f"{k}={variables[k]}\n".encode())
    for path in _source_files(root):
        h.update(str(path.relative_to(root)).encode() + b"\0")
        h.update(hashlib.sha256(path.read_bytes()).digest())
    if model_dir is not None:
        for path in sorted(Path(model_dir).iterdir()):
            if path.suffix in (".c", ".h") and path.is_file():
                h.update(b"model/" + path.name.encode() + b"\0")
                h.update(hashlib.sha256(path.read_bytes()).digest())
    # Files the variables name (APP_SRCS=tests/...c) and headers of folders they put on the
    # include path (EXTRA_CFLAGS=-I<dir> with a generated header): their bytes, not their names.
    for k in sorted(set(variables) - _PLACE_VARIABLES):
        for token in variables[k].split():
            path = Path(token[2:] if token.startswith("-I") else token)
            if not path.is_absolute():
                path = root / path
            named = sorted(path.glob("*.h")) if path.is_dir() else [path] if path.is_file() else []
            for f in named:
                h.update(f"{k}:{f.name}\0".encode())
                h.update(hashlib.sha256(f.read_bytes()).digest())
    return h.hexdigest()[:20]


@contextmanager
def _locked(build_dir: Path) -> Iterator[None]:
    """An exclusive lock on build_dir for the whole make run (other processes wait)."""
    build_dir.mkdir(parents=True, exist_ok=True)
    with open(build_dir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


#: Images kept per build folder; older ones (least recently used) are removed after a build.
KEEP_IMAGES = 24


def _prune(images: Path, keep: int = KEEP_IMAGES) -> None:
    dirs = sorted(
        (d for d in images.iterdir() if d.is_dir() and not d.name.startswith(".")),
        key=lambda d: d.stat().st_mtime,
    )
    for d in dirs[: max(0, len(dirs) - keep)]:
        shutil.rmtree(d, ignore_errors=True)


def _publish(build_dir: Path, target: str, dest: Path) -> Path:
    """Copies the image and its companions (map, bin, uf2, ...) from build_dir into dest, made
    whole in a temporary folder and renamed into place, so a reader never sees half of it."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=dest.parent))
    try:
        for path in build_dir.iterdir():
            if path.is_file() and path.name.startswith(Path(target).stem):
                shutil.copy2(path, tmp / path.name)
        try:
            tmp.rename(dest)
        except OSError:  # another process published the same key first: same bytes
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dest / target


def build_firmware(
    board: str,
    model_dir: Path | None,
    build_dir: Path | None = None,
    sanitize: bool = False,
    *,
    make_vars: Mapping[str, str] | None = None,
) -> Path:
    """Builds the firmware for `board` with the model sources in `model_dir`; returns the image,
    which lives in `<build_dir>/images/<key>/` (build_key) and is never rewritten.

    Runs `make -C <source root> -f firmware/firmware.mk BOARD=board MODEL_DIR=model_dir
    BUILD_DIR=build_dir` quietly, holding a lock on build_dir, unless an image of the same key
    is there already. The default build_dir is <build root>/<board> (core.paths.build_root;
    <board>-san with sanitize). make_vars adds or overrides Makefile variables (tests build their
    own app with APP_SRCS=..., CORE_SRCS=). Raises ToolMissing when make or the board's compiler
    is not installed, BuildError when the build fails (first line: what and what to do, then
    the compiler's output).
    """
    root = source_root()
    if not (root / "boards" / board / "board.mk").is_file():
        raise BuildError(f"unknown board {board!r}: choose one of {', '.join(boards())}")
    if build_dir is None:
        build_dir = build_root() / (board + ("-san" if sanitize else ""))
    build_dir = Path(build_dir).resolve()

    # PYTHON runs a board's post-link step (boards/pico/boot2_crc.py): this interpreter.
    variables: dict[str, str] = {"BUILD_DIR": str(build_dir), "PYTHON": sys.executable}
    if model_dir is not None:
        variables["MODEL_DIR"] = str(Path(model_dir).resolve())
    if sanitize:
        variables["SANITIZE"] = "1"
    variables.update(make_vars or {})

    make = _require_tool("make")
    # CC and TARGET do not depend on the model. Asked without MODEL_DIR: evaluating the
    # Makefile with it rewrites BUILD_DIR/model.id, which must happen only under the lock.
    settings = _make_vars(board, make, {k: v for k, v in variables.items() if k != "MODEL_DIR"})
    _require_tool(settings["CC"])
    images = build_dir / "images" / build_key(board, model_dir, variables)
    if (images / settings["TARGET"]).is_file():
        os.utime(images)  # recently used: the last to be pruned
        return images / settings["TARGET"]
    with _locked(build_dir):
        if (images / settings["TARGET"]).is_file():  # built while this process waited
            return images / settings["TARGET"]
        _make(board, make, root, variables)
        image = build_dir / settings["TARGET"]
        if not image.is_file():
            raise BuildError(
                f"make succeeded but {image} is missing: check TARGET in boards/{board}"
            )
        published = _publish(build_dir, settings["TARGET"], images)
        _prune(images.parent)
        return published


def _make(board: str, make: str, root: Path, variables: Mapping[str, str]) -> None:
    jobs = str(os.cpu_count() or 1)
    result = subprocess.run(
        [make, "-s", f"-j{jobs}", "-C", str(root), "-f", MAKEFILE, f"BOARD={board}"]
        + [f"{k}={v}" for k, v in variables.items()],
        capture_output=True,
        text=True,
        check=False,
    )
    log = result.stderr + result.stdout
    if result.returncode != 0:
        if "nano.specs" in log:
            raise ToolMissing(
                "newlib for arm-none-eabi not found: run scripts/setup.sh "
                "(installs libnewlib-arm-none-eabi)"
            )
        raise BuildError(f"{_explain_failure(board, log)}\n{_tail(log)}")
