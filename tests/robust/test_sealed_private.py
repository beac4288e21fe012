"""--private with a sealed export: the board seals its state image (ChaCha20-Poly1305 under a
key only the export holds); the host keeps and returns the sealed blob, so a --private run is
resumable and survives a board reset exactly, and no file the host writes holds the weights."""

from __future__ import annotations

import contextlib
import io
import struct
from pathlib import Path

import numpy as np
import pytest
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from robust_support import interrupt_at

from tinysplit.codegen.export import board_seal_key, export_client
from tinysplit.host import cli
from tinysplit.host.board.build import build_firmware
from tinysplit.host.training.checkpoint import Checkpoint, RunDir
from tinysplit.host.training.session import Export
from tinysplit.host.training.soak import (
    LOCAL_TIMEOUTS,
    QEMU_TIMEOUTS,
    board_factory,
    train_through_proxy,
)
from tinysplit.host.training.trainer import TrainConfig
from tinysplit.host.training.weights import blob_size
from tinysplit.host.transport.faults import FaultRates

STEPS = 40


@pytest.fixture(scope="module")
def sealed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sealed") / "export"
    export_client("digits-mlp", None, out, seed=0, private=True)
    return out


def _open(export: Path, ck: Checkpoint) -> bytes:
    """What only the data holder can do: open the sealed image with the export's key."""
    blob = ck.client_state
    assert blob is not None
    aad = Export.load(export).model_hash + struct.pack("<I", ck.step)
    key = board_seal_key(export)
    assert key is not None
    return ChaCha20Poly1305(key).decrypt(blob[:12], blob[12:], aad)


def _train(export: Path, run: Path, *extra: str, board: str = "native") -> int:
    return cli.main(["train", "--board", board, "--model-dir", str(export), "--private",
                     "--run-dir", str(run), "--max-steps", str(STEPS), "--checkpoint-every", "5",
                     "--no-baseline", *extra])  # fmt: skip


def _clear_pieces(export: Path, image: bytes) -> list[bytes]:
    """Byte strings of the clear weights: windows of each layer's int8 and float32 weights."""
    n = blob_size(Export.load(export).manifest["layers"])
    blob = image[:n]
    return [blob[i : i + 24] for i in range(0, n - 24, 97)]


@pytest.mark.parametrize("board", ["native", "mps2_an386"])
def test_private_run_killed_and_resumed_ends_as_an_uninterrupted_one(
    sealed: Path, tmp_path: Path, board: str
) -> None:
    straight = tmp_path / "straight"
    assert _train(sealed, straight, board=board) == 0
    stopped = tmp_path / "stopped"
    watcher = interrupt_at(stopped, 12)
    assert _train(sealed, stopped, board=board) == 130
    watcher.join()
    assert RunDir(stopped).load()[0].step < STEPS
    # a new board process: fresh RAM, the export's weights, restored from the sealed image
    assert cli.main(["train", "--resume", str(stopped), "--no-baseline"]) == 0
    a, _ = RunDir(straight).load()
    b, config = RunDir(stopped).load()
    assert config.private and config.sealed and a.step == b.step == STEPS
    assert _open(sealed, a) == _open(sealed, b)
    assert a.client_state != b.client_state  # sealed anew (fresh nonce), same contents
    for x, y in zip(a.server_weights, b.server_weights, strict=True):
        assert x.tobytes() == y.tobytes()
    # no file the host wrote holds the client's weights in clear
    pieces = _clear_pieces(sealed, _open(sealed, a)) + _clear_pieces(sealed, _open(sealed, b))
    for run in (straight, stopped):
        for f in run.rglob("*"):
            if f.is_file():
                data = f.read_bytes()
                assert not any(p in data for p in pieces), f"{f} holds clear client weights"


@pytest.mark.parametrize("board", ["native", "mps2_an386"])
def test_private_run_survives_a_board_reset(sealed: Path, tmp_path: Path, board: str) -> None:
    export = Export.load(sealed)
    image = build_firmware(board, sealed, tmp_path / "build")
    cfg = TrainConfig(epochs=100, batch=32, lr=0.1, seed=0)
    runs = [
        train_through_proxy(
            board_factory(board, image),
            export,
            cfg,
            rates=FaultRates(),
            seed=0,
            timeouts=LOCAL_TIMEOUTS if board == "native" else QEMU_TIMEOUTS,
            max_steps=STEPS,
            checkpoint_every=5,
            eval_every_epoch=False,
            private=True,
            reset_at=reset,
        )
        for reset in ((), (64,))
    ]
    clean, reset = runs
    assert clean.error is None and reset.error is None, reset.error
    assert reset.faults["reset"] == 1 and reset.result is not None and reset.result.recoveries >= 1
    no_order = np.zeros(0, np.int64)
    last = [Checkpoint(STEPS, {}, [], [], 0, o.client_state, 0, no_order) for o in runs]
    assert _open(sealed, last[0]) == _open(sealed, last[1])
    assert all(x.tobytes() == y.tobytes() for x, y in zip(clean.server, reset.server, strict=True))


def test_a_flipped_bit_in_the_sealed_image_is_refused(
    sealed: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = tmp_path / "run"
    watcher = interrupt_at(run, 10)
    assert _train(sealed, run) == 130
    watcher.join()
    before = {p: p.read_bytes() for p in run.iterdir()}
    real_load = RunDir.load

    def tampered(self: RunDir, previous: bool = False) -> tuple[Checkpoint, object]:
        ck, config = real_load(self, previous)
        assert ck.client_state is not None
        bad = bytearray(ck.client_state)
        bad[len(bad) // 2] ^= 0x10  # a curious or broken host changes one bit
        ck.client_state = bytes(bad)
        return ck, config

    monkeypatch.setattr(RunDir, "load", tampered)
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = cli.main(["train", "--resume", str(run), "--no-baseline"])
    lines = [x for x in err.getvalue().splitlines() if x.startswith("error:")]
    assert code == 2 and len(lines) == 1, err.getvalue()
    assert "sealed state image refused" in lines[0]
    assert {p: p.read_bytes() for p in run.iterdir()} == before  # the checkpoints are intact
