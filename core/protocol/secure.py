"""Sealed frames between a paired board and its host (docs/protocol.md, "Paired boards").

`tinysplit export` draws a 32-byte pairing key per client and writes it into that client's
image and into DIR/pairing.key. Every frame after OPEN is encrypted and authenticated with
ChaCha20-Poly1305 (RFC 8439) under a session key; only HELLO_REQ, HELLO and OPEN travel in
clear. The firmware twin is firmware/protocol/ts_secure.c; both are checked against each
other and against RFC 8439's vectors (tests/protocol/test_secure.py).

Keys and nonces, all integers little-endian:

    session key = ChaCha20 block(pairing key, counter 0, nonce = u32 challenge | host nonce[8])[:32]
    frame nonce = u32 session | u32 direction | u32 counter

The session key is ChaCha20 used as a PRF, exactly as RFC 8439 section 2.6 derives each
Poly1305 key. The challenge is the board's share (in HELLO: drawn at boot, advanced by every
accepted OPEN, so no OPEN is accepted twice); the host nonce is the host's (8 random bytes per
OPEN). Both change with every session, so a session key is never used twice even on a board
whose boot entropy repeats, and within a session each direction counts its frames from 1
(counter 0 is OPEN's), so no (key, nonce) pair repeats while a counter is below 2**32.

    OPEN    payload = host nonce[8] | tag[16], tag = AEAD(session key, frame nonce(session,
            TO_BOARD, 0), plaintext empty, aad = OPEN's header | host nonce)
    sealed  header type |= SEALED, length = 4 + n + 16;
            payload = u32 counter | AEAD(session key, frame nonce(session, dir, counter),
            plaintext[n], aad = the header as sent)

A receiver checks the tag first, then the counter against a window of the last REPLAY_WINDOW
counters (RFC 4303's anti-replay window): a frame seen before, or older than the window, is
refused. The CRC stays: it tells line noise (dropped, counted as crc_errors) from a frame that
arrived intact but is forged (auth_failures).
"""

from __future__ import annotations

import enum
import struct

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from tinysplit.core.protocol.frame import Frame, Header, encode_frame
from tinysplit.core.protocol.spec import (
    MAX_PAYLOAD,
    OPEN_NONCE_SIZE,
    PAIR_KEY_SIZE,
    REPLAY_WINDOW,
    SEAL_COUNTER_SIZE,
    SEAL_OVERHEAD,
    SEAL_TAG_SIZE,
    SEALED,
    Direction,
    MsgType,
)

_U32 = struct.Struct("<I")
_COUNTER_MAX = 0xFFFF_FFFF


def derive_session_key(pair_key: bytes, challenge: int, host_nonce: bytes) -> bytes:
    """The session key of one OPEN: the first 32 bytes of ChaCha20's block 0 (RFC 8439 2.3)
    under the pairing key, with nonce = u32 challenge | host nonce."""
    if len(pair_key) != PAIR_KEY_SIZE or len(host_nonce) != OPEN_NONCE_SIZE:
        raise ValueError("a pairing key is 32 bytes and a host nonce 8")
    # pyca's ChaCha20 takes the 16-byte IV of RFC 7539's block: u32 counter | 12-byte nonce
    iv = _U32.pack(0) + _U32.pack(challenge) + bytes(host_nonce)
    stream = Cipher(algorithms.ChaCha20(pair_key, iv), mode=None).encryptor()
    return stream.update(bytes(32))


def frame_nonce(session: int, direction: Direction, counter: int) -> bytes:
    return _U32.pack(session) + _U32.pack(int(direction)) + _U32.pack(counter)


def open_tag(session_key: bytes, header: Header, host_nonce: bytes) -> bytes:
    """OPEN's tag: the AEAD of an empty plaintext with aad = OPEN's header | host nonce."""
    aead = ChaCha20Poly1305(session_key)
    nonce = frame_nonce(header.session, Direction.TO_BOARD, 0)
    return aead.encrypt(nonce, b"", header.pack() + bytes(host_nonce))


def open_header(session: int, step: int) -> Header:
    return Header(int(MsgType.OPEN), session, step, 0, OPEN_NONCE_SIZE + SEAL_TAG_SIZE)


class Refusal(enum.Enum):
    """Why a sealed frame was not taken."""

    FORGED = "auth_failures"  # the tag does not verify: another key, or altered on the way
    REPLAY = "replays"  # its counter was taken before, or is older than the window


class ReplayWindow:
    """The counters taken so far: the highest, and which of the REPLAY_WINDOW below it."""

    def __init__(self) -> None:
        self.top = 0  # counter 0 belongs to OPEN: never taken in a sealed frame
        self.seen = 0  # bit i: counter top - i was taken

    def fresh(self, counter: int) -> bool:
        if counter > self.top:
            return True
        back = self.top - counter
        return counter > 0 and back < REPLAY_WINDOW and not (self.seen >> back) & 1

    def take(self, counter: int) -> None:
        if counter > self.top:
            shift = counter - self.top
            self.seen = ((self.seen << shift) | 1) & ((1 << REPLAY_WINDOW) - 1)
            self.top = counter
        else:
            self.seen |= 1 << (self.top - counter)


class SealedSession:
    """One direction pair of a sealed session, as one end of it (the host, or a test's board)."""

    def __init__(self, session_key: bytes, session: int, *, sends: Direction) -> None:
        self.session_key = session_key
        self._aead = ChaCha20Poly1305(session_key)
        self.session = session
        self.sends = sends
        self.receives = Direction.TO_HOST if sends is Direction.TO_BOARD else Direction.TO_BOARD
        self.sent = 0  # the last counter used
        self.window = ReplayWindow()

    def seal(self, msg_type: int, step: int, seq: int, payload: bytes) -> bytes:
        """One sealed frame ready for the wire (encode_frame of the sealed payload)."""
        if len(payload) > MAX_PAYLOAD:
            raise ValueError(f"payload of {len(payload)} bytes exceeds MAX_PAYLOAD")
        if self.sent >= _COUNTER_MAX:
            raise ValueError("this session sent 2**32 - 1 frames: OPEN a new one")
        self.sent += 1
        header = Header(msg_type | SEALED, self.session, step, seq, len(payload) + SEAL_OVERHEAD)
        nonce = frame_nonce(self.session, self.sends, self.sent)
        body = self._aead.encrypt(nonce, bytes(payload), header.pack())
        return encode_frame(header.type, self.session, step, seq, _U32.pack(self.sent) + body)

    def open(self, frame: Frame) -> Frame | Refusal:
        """The clear frame a sealed one carries (type without SEALED), or why it is refused.
        The frame must be sealed (its type has SEALED) and of this session."""
        h = frame.header
        if len(frame.payload) < SEAL_OVERHEAD or h.session != self.session:
            return Refusal.FORGED
        (counter,) = _U32.unpack_from(frame.payload)
        nonce = frame_nonce(self.session, self.receives, counter)
        try:
            plain = self._aead.decrypt(nonce, frame.payload[SEAL_COUNTER_SIZE:], h.pack())
        except InvalidTag:
            return Refusal.FORGED
        if not self.window.fresh(counter):
            return Refusal.REPLAY
        self.window.take(counter)
        return Frame(Header(h.type & ~SEALED, h.session, h.step, h.seq, len(plain)), plain)
