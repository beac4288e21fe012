"""The pairing key of an export (firmware/client/pairing.c, core/protocol/secure.py): drawn by
`tinysplit export`, written into the board's model_data.c and, for the host, into
DIR/pairing.key. Light on purpose: the host reads it without loading the exporter."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tinysplit.core.errors import BadInput
from tinysplit.core.protocol.spec import PAIR_KEY_SIZE

#: The host's copy of an export's pairing key.
PAIRING_FILE = "pairing.key"


def write_pairing_key(out_dir: Path, key: bytes) -> None:
    """DIR/pairing.key: the host's copy of the board's pairing key, hex, readable by its owner
    only (like an ssh key)."""
    path = Path(out_dir) / PAIRING_FILE
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(key.hex() + "\n")


def pairing_key(out_dir: Path, manifest: Mapping[str, Any]) -> bytes | None:
    """The pairing key of an export (DIR/pairing.key), None for an --insecure one; BadInput,
    one line, when the manifest says paired and the file is missing or not a key."""
    path = Path(out_dir) / PAIRING_FILE
    if not manifest.get("paired", False):
        return None
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        raise BadInput(
            f"{path} is missing: the board built from this export talks only to a host holding "
            "its pairing key (export again, or copy the file back)"
        ) from None
    except (OSError, UnicodeDecodeError) as e:
        raise BadInput(f"cannot read the pairing key {path}: {e}") from None
    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = b""
    if len(key) != PAIR_KEY_SIZE:
        raise BadInput(f"{path} is not a pairing key (64 hex digits): export again")
    return key
