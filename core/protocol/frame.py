"""Frames: header | payload | crc32, COBS-encoded, ended by 0x00 (docs/protocol.md, Framing).

FrameDecoder is the host twin of firmware/protocol/ts_frame.c: same checks in the same order,
same counters, so a byte stream gives identical results on both sides (tests/protocol).
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

from tinysplit.core.errors import ProtocolError
from tinysplit.core.protocol.cobs import CobsOverflow, cobs_decode, cobs_encode
from tinysplit.core.protocol.spec import (
    CRC_SIZE,
    HEADER_FORMAT,
    HEADER_SIZE,
    MAGIC,
    MAX_ENCODED,
    MAX_PAYLOAD,
    MAX_RAW,
    MAX_WIRE_PAYLOAD,
    SEALED,
    VERSION,
)

_HEADER = struct.Struct(HEADER_FORMAT)
_CRC = struct.Struct("<I")


@dataclass(frozen=True)
class Header:
    """A frame header; magic and version are implied (spec.MAGIC, spec.VERSION)."""

    type: int
    session: int
    step: int
    seq: int
    length: int

    def pack(self) -> bytes:
        try:
            return _HEADER.pack(
                MAGIC, VERSION, self.type, self.session, self.step, self.seq, self.length
            )
        except struct.error as e:
            raise ValueError(f"header field out of range ({self}): {e}") from None

    @classmethod
    def unpack(cls, data: bytes) -> Header:
        """Parses 16 header bytes; ProtocolError on a wrong size, magic or version."""
        if len(data) != HEADER_SIZE:
            raise ProtocolError(f"frame header is {len(data)} bytes, expected {HEADER_SIZE}")
        magic, version, type_, session, step, seq, length = _HEADER.unpack(data)
        if magic != MAGIC:
            raise ProtocolError(f"frame magic 0x{magic:04x}, expected 0x{MAGIC:04x}")
        if version != VERSION:
            raise ProtocolError(
                f"board speaks protocol version {version}, this host speaks {VERSION}"
            )
        return cls(type_, session, step, seq, length)


@dataclass(frozen=True)
class Frame:
    header: Header
    payload: bytes


def encode_frame(msg_type: int, session: int, step: int, seq: int, payload: bytes) -> bytes:
    """One frame ready for the wire: COBS(header | payload | crc32) followed by 0x00."""
    most = MAX_WIRE_PAYLOAD if msg_type & SEALED else MAX_PAYLOAD  # sealed: + counter and tag
    if len(payload) > most:
        raise ValueError(f"payload of {len(payload)} bytes exceeds the frame's {most}")
    body = Header(msg_type, session, step, seq, len(payload)).pack() + bytes(payload)
    encoded: bytes = cobs_encode(body + _CRC.pack(zlib.crc32(body)))
    return encoded + b"\x00"


_COUNTERS = (
    "frames_ok",
    "crc_errors",
    "cobs_errors",
    "oversize",
    "short",
    "bad_magic",
    "bad_version",
    "bad_length",
    "resyncs",
)


class FrameDecoder:
    """Splits a byte stream at 0x00 and returns the valid frames.

    Every invalid frame is dropped and counted once, when its delimiter arrives, under the
    first check it fails: oversize (more than MAX_RAW decoded bytes), cobs_errors, short
    (fewer than header + crc), crc_errors, bad_magic, bad_version, bad_length (length field
    disagrees with the frame size). `resyncs` counts all dropped frames. Empty frames
    (consecutive 0x00) are ignored silently: a sender may emit 0x00 to flush the receiver.
    `last_bad_version` keeps the version byte of the last bad_version frame (None if none), so
    the caller can name both versions. Never raises on input.
    """

    def __init__(self) -> None:
        self.frames_ok = 0
        self.crc_errors = 0
        self.cobs_errors = 0
        self.oversize = 0
        self.short = 0
        self.bad_magic = 0
        self.bad_version = 0
        self.bad_length = 0
        self.resyncs = 0
        self.last_bad_version: int | None = None
        self._buf = bytearray()
        self._skipping = False  # the frame in progress is already too long

    def stats(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in _COUNTERS}

    @property
    def in_frame(self) -> bool:
        """True while bytes of an unfinished frame are buffered."""
        return bool(self._buf) or self._skipping

    def expire(self) -> bool:
        """Drops the frame in progress without counting it (the caller knows why: no byte came
        for too long, so its tail and delimiter were lost). True if there was one."""
        had = self.in_frame
        self._buf.clear()
        self._skipping = False
        return had

    def feed(self, data: bytes) -> list[Frame]:
        frames: list[Frame] = []
        start = 0
        while True:
            end = data.find(b"\x00", start)
            if end < 0:
                self._append(data[start:])
                return frames
            self._append(data[start:end])
            frame = self._finish()
            if frame is not None:
                frames.append(frame)
            start = end + 1

    def _append(self, chunk: bytes) -> None:
        if self._skipping or not chunk:
            return
        self._buf += chunk
        # Bounded memory: no valid frame encodes to more than MAX_ENCODED - 1 bytes.
        if len(self._buf) > MAX_ENCODED - 1:
            self._skipping = True
            self._buf.clear()

    def _finish(self) -> Frame | None:
        """Ends the frame in progress; counts it under the check it fails, if any."""
        result = self._check(bytes(self._buf), self._skipping)
        self._buf.clear()
        self._skipping = False
        if isinstance(result, Frame):
            self.frames_ok += 1
            return result
        if result is not None:
            setattr(self, result, getattr(self, result) + 1)
            self.resyncs += 1
        return None

    def _check(self, encoded: bytes, skipping: bool) -> Frame | str | None:
        """The frame, or the counter it fails, or None for an empty frame."""
        if skipping:
            return "oversize"
        if not encoded:
            return None
        try:
            raw = cobs_decode(encoded, MAX_RAW)
        except CobsOverflow:
            return "oversize"
        except ValueError:
            return "cobs_errors"
        if len(raw) < HEADER_SIZE + CRC_SIZE:
            return "short"
        body = raw[:-CRC_SIZE]
        if zlib.crc32(body) != _CRC.unpack_from(raw, len(body))[0]:
            return "crc_errors"
        magic, version, type_, session, step, seq, length = _HEADER.unpack_from(body)
        if magic != MAGIC:
            return "bad_magic"
        if version != VERSION:
            self.last_bad_version = version
            return "bad_version"
        if length != len(body) - HEADER_SIZE:
            return "bad_length"
        return Frame(Header(type_, session, step, seq, length), body[HEADER_SIZE:])
