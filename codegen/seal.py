"""The seal of an export: one hash over everything `tinysplit export` wrote, which is the model
hash the board reports at HELLO and the manifest records.

The hash cannot cover its own bytes, so it is taken with an all-zero placeholder where it will
stand (the `ts_model_hash` array and the stamps of model_data.c/.h, the manifest's
`model_hash`), then written in. Anyone can check a folder the same way: put the placeholder
back, hash, compare. A weight edited in model_data.c, a changed plan.json or manifest field,
another data.npz: the folder no longer matches its seal, and a board built from an edited
model_data.c reports another hash than the manifest's. The manifest also lists each file's
SHA-256, so a mismatch names the file.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tinysplit.core.errors import BadInput

#: Bytes of the model hash (HELLO's model_hash).
HASH_BYTES = 8
PLACEHOLDER = bytes(HASH_BYTES)
#: The files an export is made of, besides manifest.json (data_full.npz when the shard was cut).
SEALED_FILES = ("client.tflite", "model_data.c", "model_data.h", "plan.json", "server.keras",
                "full.keras", "data.npz", "data_full.npz")  # fmt: skip
_GENERATED_C = ("model_data.c", "model_data.h")


def hash_renderings(h: bytes) -> list[str]:
    """Every way model_data.c/.h spell the model hash (codegen/emit_c.py): the stamp and the
    bytes of the ts_model_hash array."""
    return [f"model hash {h.hex()}.", ", ".join(f"0x{b:02x}" for b in h) + ","]


def _with_placeholder(name: str, data: bytes, h: bytes) -> bytes:
    if name not in _GENERATED_C:
        return data
    text = data.decode()
    for real, zero in zip(hash_renderings(h), hash_renderings(PLACEHOLDER), strict=True):
        text = text.replace(real, zero)
    return text.encode()


def _digest(files: Mapping[str, bytes], manifest: Mapping[str, Any]) -> bytes:
    h = hashlib.sha256(b"tinysplit-export-v2")
    for name in sorted(files):
        h.update(name.encode() + b"\0" + len(files[name]).to_bytes(8, "little"))
        h.update(files[name])
    rest = {k: v for k, v in manifest.items() if k != "model_hash"}
    h.update(json.dumps(rest, sort_keys=True, separators=(",", ":")).encode())
    return h.digest()[:HASH_BYTES]


def _content(name: str, data: bytes) -> bytes:
    """What a file says: a .keras archive without what changes from one save to the next (the
    time in metadata.json, object addresses in config.json), so that exporting the same model
    twice gives the same hash."""
    if not name.endswith(".keras"):
        return data
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            parts = [
                m.encode() + b"\0" + _member(m, z.read(m))
                for m in sorted(z.namelist())
                if m != "metadata.json"
            ]
    except (zipfile.BadZipFile, OSError, ValueError):
        return data  # not an archive (any more): its bytes, which match no record
    return b"".join(len(p).to_bytes(8, "little") + p for p in parts)


def _member(name: str, data: bytes) -> bytes:
    """config.json without Keras' shared_object_id values (object addresses of the saving
    process), canonical; every other member as it is."""
    if name != "config.json":
        return data

    def strip(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: strip(x) for k, x in v.items() if k != "shared_object_id"}
        if isinstance(v, list):
            return [strip(x) for x in v]
        return v

    return json.dumps(strip(json.loads(data)), sort_keys=True, separators=(",", ":")).encode()


def _files(folder: Path) -> dict[str, bytes]:
    return {
        n: _content(n, (folder / n).read_bytes()) for n in SEALED_FILES if (folder / n).is_file()
    }


def seal(folder: Path, manifest: dict[str, Any]) -> bytes:
    """Seals an export written with the placeholder hash: records each file's SHA-256 in the
    manifest, hashes, writes the hash into model_data.c/.h and the manifest (returned)."""
    files = _files(folder)
    manifest["files"] = {n: hashlib.sha256(d).hexdigest() for n, d in sorted(files.items())}
    h = _digest(files, manifest)
    for name in _GENERATED_C:
        text = (folder / name).read_text()
        for zero, real in zip(hash_renderings(PLACEHOLDER), hash_renderings(h), strict=True):
            if zero not in text and name == "model_data.c":
                raise AssertionError(f"{name} does not spell the placeholder hash {zero!r}")
            text = text.replace(zero, real)
        (folder / name).write_text(text)
    manifest["model_hash"] = h.hex()
    return h


def check_seal(folder: Path, manifest: Mapping[str, Any]) -> None:
    """Raises BadInput, naming what changed, when the folder is not what was exported."""
    h = bytes.fromhex(str(manifest["model_hash"]))
    recorded = manifest.get("files")
    if not isinstance(recorded, dict):
        raise BadInput(
            f"{folder}/manifest.json has no record of the export's files (made by an older "
            "tinysplit?): export again with `tinysplit export`"
        )
    plain = {n: _with_placeholder(n, d, h) for n, d in _files(folder).items()}
    changed = sorted(
        n for n in set(plain) | set(recorded)
        if n not in plain or hashlib.sha256(plain[n]).hexdigest() != recorded.get(n)
    )  # fmt: skip
    if changed:
        raise BadInput(
            f"export {folder} was changed after `tinysplit export` ({', '.join(changed)}): "
            "export again (edits by hand would train a model nobody exported)"
        )
    if _digest(plain, manifest) != h:
        raise BadInput(
            f"export {folder} was changed after `tinysplit export` (manifest.json): export again"
        )
