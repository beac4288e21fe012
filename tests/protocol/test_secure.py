"""Sealed frames: firmware/protocol/ts_secure.c against core/protocol/secure.py (pyca
`cryptography`) and RFC 8439's vectors, on random keys, sessions, payloads and counters."""

from __future__ import annotations

import ctypes
import random

import pytest
from wire_clib import CHeader, CLib

from tinysplit.core.protocol import MAX_PAYLOAD, SEALED, Frame, FrameDecoder, Header
from tinysplit.core.protocol.frame import encode_frame
from tinysplit.core.protocol.secure import (
    Refusal,
    ReplayWindow,
    SealedSession,
    derive_session_key,
    open_header,
    open_tag,
)
from tinysplit.core.protocol.spec import REPLAY_WINDOW, Direction


class CSecure(ctypes.Structure):
    """Mirror of ts_secure_t (firmware/protocol/ts_secure.h)."""

    _fields_ = (
        ("key", ctypes.c_uint8 * 32),
        ("session", ctypes.c_uint32),
        ("sent", ctypes.c_uint32),
        ("top", ctypes.c_uint32),
        ("seen", ctypes.c_uint32),
        ("open", ctypes.c_uint8),
    )


class Secure:
    """ts_secure_* of build/hostlib/libtinysplit.so."""

    def __init__(self, clib: CLib) -> None:
        self.lib = clib.lib
        self.clib = clib

    def derive(self, pair_key: bytes, challenge: int, host_nonce: bytes) -> bytes:
        out = ctypes.create_string_buffer(32)
        self.lib.ts_secure_derive(pair_key, ctypes.c_uint32(challenge), host_nonce, out)
        return out.raw

    def check_open(self, key: bytes, h: Header, host_nonce: bytes, tag: bytes) -> bool:
        ch = CHeader(h.type, h.session, h.step, h.seq, h.length)
        return bool(self.lib.ts_secure_check_open(key, ctypes.byref(ch), host_nonce, tag))

    def start(self, key: bytes, session: int) -> CSecure:
        s = CSecure()
        self.lib.ts_secure_start(ctypes.byref(s), key, ctypes.c_uint32(session))
        return s

    def encode(self, s: CSecure, direction: int, h: Header, payload: bytes) -> bytes:
        ch = CHeader(h.type, h.session, h.step, h.seq, len(payload))
        out = (ctypes.c_uint8 * 2200)()
        self.lib.ts_secure_encode.restype = ctypes.c_size_t
        n = self.lib.ts_secure_encode(ctypes.byref(s), ctypes.c_uint32(direction),
                                      ctypes.byref(ch), payload, ctypes.c_size_t(len(payload)),
                                      out, ctypes.c_size_t(len(out)))  # fmt: skip
        return bytes(out[:n])

    def open(self, s: CSecure, direction: int, frame: Frame) -> tuple[int, bytes]:
        """(ts_seal_result_t, plaintext if TS_SEAL_OK)."""
        h = frame.header
        ch = CHeader(h.type, h.session, h.step, h.seq, h.length)
        body = ctypes.create_string_buffer(frame.payload, len(frame.payload))
        n = ctypes.c_uint16(0)
        r = self.lib.ts_secure_open(ctypes.byref(s), ctypes.c_uint32(direction), body,
                                    ctypes.byref(ch), ctypes.byref(n))  # fmt: skip
        return int(r), body.raw[4 : 4 + n.value] if r == 0 else b""


OK, FORGED, REPLAY = 0, 1, 2


@pytest.fixture(scope="module")
def sec(clib: CLib) -> Secure:
    return Secure(clib)


def _one(wire: bytes) -> Frame:
    frames = FrameDecoder().feed(wire)
    assert len(frames) == 1
    return frames[0]


def test_session_key_is_rfc8439_poly1305_key_generation(sec: Secure) -> None:
    """RFC 8439 2.6.2: the first 32 bytes of block 0 for key 80..9f, nonce 000000000001..07.
    Here the nonce is u32 challenge 0 | host nonce 00 01 .. 07."""
    key, host_nonce = bytes(range(0x80, 0xA0)), bytes(range(8))
    want = "8ad5a08b905f81cc815040274ab29471a833b637e3fd0da508dbb8e2fdd1a646"
    assert derive_session_key(key, 0, host_nonce).hex() == want
    assert sec.derive(key, 0, host_nonce).hex() == want


def test_session_key_c_equals_pyca_on_random_inputs(sec: Secure) -> None:
    rng = random.Random(1)
    for _ in range(200):
        key, challenge, nonce = rng.randbytes(32), rng.getrandbits(32), rng.randbytes(8)
        assert sec.derive(key, challenge, nonce) == derive_session_key(key, challenge, nonce)


def test_open_tag_checks_key_header_and_nonce(sec: Secure) -> None:
    rng = random.Random(2)
    for case in range(100):
        key, nonce = rng.randbytes(32), rng.randbytes(8)
        h = open_header(rng.getrandbits(32), rng.getrandbits(32))
        tag = open_tag(key, h, nonce)
        assert sec.check_open(key, h, nonce, tag), case
        other = Header(h.type, h.session, h.step ^ 1, h.seq, h.length)
        assert not sec.check_open(key, other, nonce, tag)
        assert not sec.check_open(rng.randbytes(32), h, nonce, tag)
        assert not sec.check_open(key, h, bytes(8) if nonce != bytes(8) else b"\1" * 8, tag)
        bad = bytearray(tag)
        bad[rng.randrange(16)] ^= 1 << rng.randrange(8)
        assert not sec.check_open(key, h, nonce, bytes(bad))


def test_frames_sealed_in_python_open_in_c_and_back(sec: Secure) -> None:
    """The host (pyca) seals to the board (C) and the board to the host, on random payloads
    of every size up to MAX_PAYLOAD, with the first mismatch printed."""
    rng = random.Random(3)
    for case in range(150):
        key, session = rng.randbytes(32), rng.getrandbits(32)
        host = SealedSession(key, session, sends=Direction.TO_BOARD)
        board = sec.start(key, session)
        for _ in range(3):
            n = rng.choice((0, 1, 15, 63, 64, 65, 200, MAX_PAYLOAD, rng.randrange(MAX_PAYLOAD)))
            payload = rng.randbytes(n)
            t, step, seq = rng.randrange(1, 0x7F), rng.getrandbits(32), rng.getrandbits(16)
            frame = _one(host.seal(t, step, seq, payload))
            assert frame.header.type == t | SEALED and frame.header.length == n + 20
            assert sec.open(board, Direction.TO_BOARD, frame) == (OK, payload), f"case {case}"

            wire = sec.encode(board, Direction.TO_HOST, Header(t, 0, step, seq, n), payload)
            got = host.open(_one(wire))
            assert isinstance(got, Frame), f"case {case}: the host refused the board's frame"
            assert got == Frame(Header(t, session, step, seq, n), payload), f"case {case}"
            # the same payload sealed twice never gives the same bytes (new counter, nonce)
            again = sec.encode(board, Direction.TO_HOST, Header(t, 0, step, seq, n), payload)
            assert again != wire
            assert isinstance(host.open(_one(again)), Frame)


def test_any_altered_byte_of_a_sealed_frame_is_forged(sec: Secure) -> None:
    """Header, counter, ciphertext or tag: one flipped bit (CRC made right again, as a forger
    would) and the frame is refused by both sides, and its counter is not taken."""
    rng = random.Random(4)
    key, session = rng.randbytes(32), rng.getrandbits(32)
    host = SealedSession(key, session, sends=Direction.TO_BOARD)
    board = sec.start(key, session)
    for case in range(120):
        payload = rng.randbytes(rng.randrange(1, 90))
        frame = _one(host.seal(0x10, case, 0, payload))
        raw = bytearray(frame.header.pack() + frame.payload)
        at = rng.randrange(len(raw))
        if at < 16 and at not in range(4, 16):  # magic/version/type: the decoder's business
            at = 4 + rng.randrange(12)
        raw[at] ^= 1 << rng.randrange(8)
        try:
            h = Header.unpack(bytes(raw[:16]))
        except Exception:
            continue
        if h.length != len(raw) - 16:
            continue  # a length that disagrees is dropped by the decoder as bad_length
        forged = Frame(h, bytes(raw[16:]))
        assert sec.open(board, Direction.TO_BOARD, forged)[0] == FORGED, f"byte {at}"
        assert sec.open(board, Direction.TO_BOARD, frame) == (OK, payload)  # counter not taken
    # the board refuses a frame sealed the other way (its own, reflected)
    mine = sec.encode(board, Direction.TO_HOST, Header(0x11, 0, 1, 0, 3), b"abc")
    assert sec.open(board, Direction.TO_BOARD, _one(mine))[0] == FORGED
    assert host.open(_one(host.seal(0x10, 1, 0, b"x"))) is Refusal.FORGED


def test_replay_window_matches_a_set_model_in_c_and_python(sec: Secure) -> None:
    """Counters in random order, repeats, and far jumps: both take a counter exactly when the
    model does (new, and not more than REPLAY_WINDOW - 1 below the highest taken)."""
    rng = random.Random(5)
    for case in range(40):
        key, session = rng.randbytes(32), rng.getrandbits(32)
        host = SealedSession(key, session, sends=Direction.TO_HOST)  # seals as a board would
        board_c = sec.start(key, session)
        window = ReplayWindow()
        frames = [_one(host.seal(0x10, i, 0, b"p")) for i in range(120)]
        taken: set[int] = set()
        top = 0
        for _ in range(300):
            i = rng.randrange(len(frames))
            if rng.random() < 0.1:
                i = min(len(frames) - 1, i + rng.randrange(40))
            counter = i + 1
            want = counter not in taken and counter > top - REPLAY_WINDOW
            assert window.fresh(counter) == want, f"case {case}: counter {counter}"
            r, _ = sec.open(board_c, Direction.TO_HOST, frames[i])
            assert r == (OK if want else REPLAY), f"case {case}: counter {counter}, C said {r}"
            if want:
                window.take(counter)
                taken.add(counter)
                top = max(top, counter)


def test_counter_zero_and_other_sessions_are_refused(sec: Secure) -> None:
    key = bytes(32)
    board = sec.start(key, 7)
    host = SealedSession(key, 7, sends=Direction.TO_BOARD)
    f = _one(host.seal(0x10, 0, 0, b"abc"))
    zero = Frame(f.header, (0).to_bytes(4, "little") + f.payload[4:])
    assert sec.open(board, Direction.TO_BOARD, zero)[0] == FORGED  # tag made for counter 1
    other = SealedSession(key, 8, sends=Direction.TO_BOARD)
    assert sec.open(board, Direction.TO_BOARD, _one(other.seal(0x10, 0, 0, b"abc")))[0] == FORGED
    # a clear frame's encoder is never used for sealed payloads beyond MAX_PAYLOAD
    with pytest.raises(ValueError):
        host.seal(0x10, 0, 0, bytes(MAX_PAYLOAD + 1))
    assert encode_frame(0x10 | SEALED, 7, 0, 0, bytes(MAX_PAYLOAD + 20))
