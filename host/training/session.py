"""One split-training run against a board reached through a pyserial URL, plus the pieces the
CLI's `train` and `demo` share: loading an export directory and launching a board."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from tinysplit.codegen.pairing import PAIRING_FILE, pairing_key
from tinysplit.core.boards import emulated_boards, local_boards
from tinysplit.core.errors import BadInput
from tinysplit.core.protocol import Hello
from tinysplit.host.transport.link import ClientLink, LinkStats, Timeouts

PORT_BAUD = 921_600


#: Files of an export folder that training, checking and evaluation read.
EXPORT_NEEDS = ("client.tflite", "server.keras", "full.keras", "data.npz", "plan.json")

#: manifest.json fields the host reads, and their JSON types.
_MANIFEST_FIELDS: dict[str, type] = {
    "model_hash": str, "cut": int, "input_size": int, "cut_size": int, "n_classes": int,
    "n_train": int, "n_test": int, "max_batch": int, "hyperparameters": dict,
}  # fmt: skip


def _check_manifest(path: Path, manifest: Any) -> None:
    def bad(why: str) -> BadInput:
        return BadInput(f"{path}: {why}: export again with `tinysplit export`")

    if not isinstance(manifest, dict):
        raise bad("not a JSON object")
    for key, kind in _MANIFEST_FIELDS.items():
        if key not in manifest:
            raise bad(f"{key} is missing")
        value = manifest[key]
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise bad(f"{key} is {value!r}, not {'an integer' if kind is int else kind.__name__}")
        if isinstance(value, int) and value < 0:
            raise bad(f"{key} is {value}, below 0")
    try:
        if len(bytes.fromhex(manifest["model_hash"])) != 8:
            raise ValueError
    except ValueError:
        raise bad(f"model_hash {manifest['model_hash']!r} is not 16 hex digits") from None
    if manifest["max_batch"] < 1:
        raise bad("max_batch is below 1")


_warned_insecure: set[Path] = set()


def warn_insecure(path: Path) -> None:
    """Says once per export folder that its board's link is in clear."""
    if path in _warned_insecure:
        return
    _warned_insecure.add(path)
    tqdm.write(
        f"tinysplit: the link is NOT encrypted: {path} was exported with --insecure (fine on a "
        "local cable; on any network path the smashed data and gradients are readable)",
        file=sys.stderr,
    )


@dataclass(frozen=True)
class Export:
    """An export directory written by `tinysplit export`."""

    path: Path
    manifest: dict[str, Any]

    @classmethod
    def load(cls, path: Path) -> Export:
        manifest_path = path / "manifest.json"
        if path.exists() and not path.is_dir():
            raise BadInput(
                f"{path} is a file, not an export folder: give the folder "
                "`tinysplit export --out` wrote"
            )
        if not manifest_path.is_file():
            raise BadInput(
                f"{path} is not a tinysplit export (no manifest.json): "
                "run `tinysplit export MODEL --cut N --out DIR` first"
            )
        try:
            manifest = json.loads(manifest_path.read_text())
        except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise BadInput(
                f"cannot read {manifest_path} ({exc}): export again with `tinysplit export`"
            ) from None
        _check_manifest(manifest_path, manifest)
        missing = [f for f in EXPORT_NEEDS if not (path / f).is_file()]
        if missing:
            raise BadInput(
                f"export {path} is incomplete ({', '.join(missing)} missing): export again "
                "with `tinysplit export MODEL --out DIR`"
            )
        from tinysplit.codegen.seal import check_seal

        check_seal(path, manifest)
        return cls(path, manifest)

    def link_key(self) -> dict[str, Any]:
        """ClientLink's key arguments: the export's pairing key and where it lives. An
        --insecure export's board talks in clear: said once, on stderr."""
        key = pairing_key(self.path, self.manifest)
        if key is None:
            warn_insecure(self.path)
        return {"key": key, "key_name": f"the pairing key {self.path / PAIRING_FILE}"}

    @property
    def model_hash(self) -> bytes:
        return bytes.fromhex(self.manifest["model_hash"])

    @property
    def hyper(self) -> dict[str, Any]:
        return dict(self.manifest.get("hyperparameters", {}))


@contextlib.contextmanager
def board_url(board: str, export: Export, build_dir: Path | None = None) -> Iterator[str]:
    """Builds the firmware for a local board (native or emulated) and yields its port URL."""
    from tinysplit.host.board.build import build_firmware
    from tinysplit.host.board.launch import native_board, qemu_board

    if board not in local_boards():
        raise BadInput(f"unknown board {board!r}: choose one of {', '.join(local_boards())}")
    image = build_firmware(board, export.path, build_dir)
    if board == "native":
        with native_board(image) as url:
            yield url
    else:
        with qemu_board(image, emulated_boards()[board]) as url:
            yield url


@contextlib.contextmanager
def connect(
    url: str, export: Export, *, trace: bool = False, timeouts: Timeouts | None = None
) -> Iterator[tuple[ClientLink, Hello]]:
    """Opens the port, says HELLO and checks the board runs this export's model."""
    from tinysplit.host.board.launch import open_port

    port = open_port(url, timeout=0.05)
    try:
        link = ClientLink(port, trace=trace, timeouts=timeouts, **export.link_key())
        hello = link.hello(export.model_hash)
        yield link, hello
    finally:
        port.close()


def stats_dict(stats: LinkStats) -> dict[str, int]:
    return {
        "bytes_to_server": stats.bytes_to_server,
        "bytes_to_client": stats.bytes_to_client,
        "frames_in": stats.frames_in,
        "frames_out": stats.frames_out,
    }
