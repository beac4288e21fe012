"""Paired boards (docs/protocol.md, "Paired boards") on the native board: a host with the wrong
key or none gets nothing but HELLO; forged and replayed frames, both ways, are refused and
counted and change nothing; an eavesdropper on the wire reads no smashed data."""

from __future__ import annotations

import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tinysplit.core.protocol import SEALED, Frame, FrameDecoder, MsgType
from tinysplit.core.protocol.frame import encode_frame
from tinysplit.core.protocol.secure import SealedSession
from tinysplit.core.protocol.spec import Direction
from tinysplit.host.board.launch import native_board, open_port
from tinysplit.host.training.server import ServerSegment
from tinysplit.host.training.session import Export
from tinysplit.host.training.trainer import TrainConfig, split_train
from tinysplit.host.transport.link import ClientLink, PairingRefused, Timeouts, refusal_line

FAST = Timeouts(reply_s=0.2, silence_s=3.0)
CFG = TrainConfig(epochs=1, batch=32, lr=0.1, seed=0)
STEPS = 16


class Tap:
    """A port between host and board that keeps every byte both ways (an eavesdropper) and,
    when told, sends the board (and the host) forged and replayed copies of real frames."""

    def __init__(self, port: Any, *, tamper_every: int = 0) -> None:
        self.port = port
        self.sent = bytearray()  # host -> board, as written
        self.received = bytearray()  # board -> host, as delivered
        self.tamper_every = tamper_every
        self.injected = {"to_board_forged": 0, "to_board_replayed": 0,
                         "to_host_forged": 0, "to_host_replayed": 0}  # fmt: skip
        self._out = FrameDecoder()
        self._in = FrameDecoder()
        self._last_out: bytes | None = None
        self._last_in: bytes | None = None
        self._frames_out = 0
        self._frames_in = 0
        self._pending_in = bytearray()

    def write(self, data: bytes, /) -> int | None:
        self.sent += data
        frames = self._out.feed(bytes(data))
        sealed = [f for f in frames if f.header.type & SEALED]
        if self.tamper_every and sealed:
            self._frames_out += 1
            if self._frames_out % self.tamper_every == 0:
                self.port.write(b"\x00" + _forged(sealed[0]))
                self.injected["to_board_forged"] += 1
        n = self.port.write(data)
        if self.tamper_every and sealed:
            if self._last_out is not None and self._frames_out % self.tamper_every == 1:
                self.port.write(self._last_out)  # the previous frame again, byte for byte
                self.injected["to_board_replayed"] += 1
            self._last_out = bytes(data)
        return n  # type: ignore[no-any-return]

    def read(self, size: int = 1, /) -> bytes:
        data: bytes = self.port.read(size)
        self.received += data
        if not self.tamper_every or not data:
            return data
        out = bytearray()
        for b in data:  # frame by frame, to slip copies in between whole frames
            self._pending_in.append(b)
            if b != 0:
                continue
            wire = bytes(self._pending_in)
            self._pending_in.clear()
            out += wire
            frames = [f for f in self._in.feed(wire) if f.header.type & SEALED]
            if not frames:
                continue
            self._frames_in += 1
            if self._frames_in % self.tamper_every == 0:
                out += _forged(frames[0])
                self.injected["to_host_forged"] += 1
            elif self._frames_in % self.tamper_every == 1 and self._last_in is not None:
                out += self._last_in
                self.injected["to_host_replayed"] += 1
            self._last_in = wire
        return bytes(out)

    @property
    def in_waiting(self) -> int:
        return int(self.port.in_waiting)


def _forged(frame: Frame) -> bytes:
    """The frame with one ciphertext (or tag) byte changed and its CRC made right again: what
    someone without the key can send."""
    body = bytearray(frame.payload)
    body[4 + secrets.randbelow(len(body) - 4)] ^= 1 << secrets.randbelow(8)
    h = frame.header
    return encode_frame(h.type, h.session, h.step, h.seq, bytes(body))


@pytest.fixture(scope="module")
def board(robust_native: Path) -> Iterator[str]:
    with native_board(robust_native) as url:
        yield url


def _link(url: str, port_hook: Any = None, **kwargs: Any) -> tuple[ClientLink, Any]:
    port = open_port(url, timeout=0.02)
    return ClientLink(port_hook(port) if port_hook else port, timeouts=FAST, **kwargs), port


def _train(export: Export, link: ClientLink, steps: int) -> int:
    server = ServerSegment.load(export.path / "server.keras", CFG.lr)
    link.hello(export.model_hash)
    link.sync(0)
    res = split_train(link, server, CFG, progress=False, max_steps=steps)
    assert res.steps == steps
    return int(res.last_weights_crc)


def test_a_host_with_a_wrong_key_or_none_gets_nothing_but_hello(
    board: str, digits_export: Path
) -> None:
    export = Export.load(digits_export)
    taps: list[Tap] = []

    def tap(port: Any) -> Tap:
        taps.append(Tap(port))
        return taps[-1]

    link, port = _link(board, tap, key=secrets.token_bytes(32), key_name="a stranger's key")
    try:
        with pytest.raises(PairingRefused, match="the board refused a stranger's key") as info:
            link.hello(export.model_hash)
        assert "\n" not in str(info.value)
        # a host that sends requests anyway, in clear: no answer at all
        for t in (MsgType.SYNC, MsgType.STATS_REQ, MsgType.GET_WEIGHTS):
            link.port.write(b"\x00" + encode_frame(int(t), link.session, 7, 0, bytes(6)))
        assert link._next_frame(time.monotonic() + 0.3) is None
    finally:
        port.close()
    link, port = _link(board, tap)  # no key at all
    try:
        with pytest.raises(PairingRefused, match="the board is paired"):
            link.hello(export.model_hash)
    finally:
        port.close()
    frames = [f for t in taps for f in FrameDecoder().feed(bytes(t.received))]
    assert frames and {MsgType(f.header.type) for f in frames} == {MsgType.HELLO}, frames
    # the right key: the board counted the stranger's OPEN and the clear requests, and its
    # weights are what they were
    good, port = _link(board, **export.link_key())
    try:
        hello = good.hello(export.model_hash)
        stats = good.board_stats()
        assert stats["auth_failures"] >= 1 and stats["unsealed"] >= 3, stats
        assert hello.weights_crc == good.sync(0).weights_crc
    finally:
        port.close()


def test_forged_and_replayed_frames_both_ways_are_refused_counted_and_change_nothing(
    robust_native: Path, digits_export: Path
) -> None:
    export = Export.load(digits_export)
    with native_board(robust_native) as url:
        link, port = _link(url, **export.link_key())
        try:
            clean = _train(export, link, STEPS)
        finally:
            port.close()
    with native_board(robust_native) as url:
        taps: list[Tap] = []

        def tap(p: Any) -> Tap:
            taps.append(Tap(p, tamper_every=3))
            return taps[-1]

        link, port = _link(url, tap, **export.link_key())
        try:
            tampered = _train(export, link, STEPS)
            taps[0].tamper_every = 0  # what STATS counts: everything injected before it
            board = link.board_stats()
        finally:
            port.close()
    injected = taps[0].injected
    assert all(v >= 5 for v in injected.values()), injected
    assert tampered == clean, "forged or replayed frames changed the weights"
    assert board["auth_failures"] == injected["to_board_forged"], (board, injected)
    assert board["replays"] == injected["to_board_replayed"], (board, injected)
    host = link.stats.as_dict()
    # the host reads STATS after the run: frames tampered with after it are not in the run
    assert host["auth_failures"] >= injected["to_host_forged"] - 2, (host, injected)
    assert host["replays"] >= injected["to_host_replayed"] - 2, (host, injected)
    line = refusal_line(host, board)
    assert line is not None and "\n" not in line
    assert f"the board refused {board['auth_failures']} forged, {board['replays']} replayed" in line


def test_an_eavesdropper_reads_no_smashed_data_or_gradient(
    board: str, digits_export: Path
) -> None:
    export = Export.load(digits_export)
    taps: list[Tap] = []
    seen: list[Any] = []

    def tap(port: Any) -> Tap:
        taps.append(Tap(port))
        return taps[-1]

    link, port = _link(board, tap, **export.link_key())
    forward = link.forward
    link.forward = lambda *a: seen.append(forward(*a)) or seen[-1]  # type: ignore[method-assign]
    try:
        _train(export, link, 4)
        assert link.sealed is not None
        key, session = link.sealed.session_key, link.sealed.session
    finally:
        port.close()
    t = taps[0]
    both = [(f, "to board") for f in FrameDecoder().feed(bytes(t.sent))] + [
        (f, "to host") for f in FrameDecoder().feed(bytes(t.received))
    ]
    clear = {MsgType(f.header.type) for f, _ in both if not f.header.type & SEALED}
    assert clear <= {MsgType.HELLO_REQ, MsgType.HELLO, MsgType.OPEN}, clear
    sealed_types = {f.header.type & ~SEALED for f, _ in both if f.header.type & SEALED}
    assert {MsgType.SMASHED, MsgType.GRAD, MsgType.TRAIN_STEP} <= sealed_types
    wire = bytes(t.sent) + bytes(t.received)
    for batch in seen:  # no 16-byte run of any sample's smashed data is on the wire
        for row in np.asarray(batch.acts)[:8]:
            assert row.tobytes()[:16] not in wire
    # with the key, the same bytes open to exactly those activations (the test can see)
    host_end = SealedSession(key, session, sends=Direction.TO_BOARD)
    opened = [host_end.open(f) for f in FrameDecoder().feed(bytes(t.received))
              if f.header.type & SEALED and f.header.session == session]  # fmt: skip
    smashed = [f for f in opened if isinstance(f, Frame) and f.header.type == MsgType.SMASHED]
    assert smashed and np.asarray(seen[0].acts)[0].tobytes()[:16] in b"".join(
        f.payload for f in smashed
    )


def test_an_insecure_export_talks_in_clear_and_says_so(tmp_path: Path) -> None:
    """`export --insecure`: no key in the image or beside it; `train` works in clear and says
    on stderr, once, that the link is not encrypted."""
    out = tmp_path / "insecure"
    exp = _cli("export", "digits-mlp", "--insecure", "--out", str(out))
    assert exp.returncode == 0, exp.stderr
    assert "--insecure" in exp.stdout
    assert not (out / "pairing.key").exists() and not (out / "pairing_key.c").exists()
    assert "#define TS_MODEL_PAIRED 0" in (out / "model_data.h").read_text()
    run = _cli("train", "--board", "native", "--model-dir", str(out), "--max-steps", "3",
               "--no-baseline", "--run-dir", str(tmp_path / "run"))  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert run.stderr.count("the link is NOT encrypted") == 1, run.stderr
    assert "link, security        IN CLEAR" in run.stdout


def _cli(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tinysplit.host.cli", *argv],
                          capture_output=True, text=True, timeout=300, check=False)  # fmt: skip


def test_a_board_that_reboots_with_the_same_session_id_is_opened_again_and_restored(
    robust_native: Path, digits_export: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A board without a random source may boot with the same session id every time (QEMU's
    can). After such a reboot it holds no sealed session: it answers the host's sealed frames
    with HELLO in clear, the host takes that as a reboot, OPENs again, restores the board's
    state and goes on; the run ends with a clean run's weights."""
    from tinysplit.host.training.soak import (
        LOCAL_TIMEOUTS,
        board_factory,
        identical,
        train_through_proxy,
    )
    from tinysplit.host.transport.faults import FaultRates

    monkeypatch.setenv("TINYSPLIT_NATIVE_REPEAT_ENTROPY", "1")
    export = Export.load(digits_export)
    runs = [
        train_through_proxy(board_factory("native", robust_native), export, CFG,
                            rates=FaultRates(), seed=0, timeouts=LOCAL_TIMEOUTS,
                            max_steps=24, checkpoint_every=5, eval_every_epoch=False,
                            reset_at=reset)
        for reset in ((), (30,))
    ]
    clean, reset = runs
    assert clean.error is None and reset.error is None, reset.error
    assert reset.faults["reset"] == 1 and reset.result is not None
    assert reset.result.recoveries >= 1
    assert identical(clean, reset)
