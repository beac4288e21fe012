"""Consistent Overhead Byte Stuffing: the encoded bytes contain no 0x00, so 0x00 ends a frame.

The encoder always closes the last block (254 non-zero bytes encode as FF <254 bytes> 01), so
n bytes encode to at most n + n // 254 + 1 bytes (spec.cobs_max_encoded). The decoder accepts
both that form and the shorter one without the final 01. firmware/protocol/ts_cobs.c is the
same algorithm; the frame decoders mirror cobs_decode's error order exactly.
"""

from __future__ import annotations


class CobsError(ValueError):
    """The bytes are not a valid COBS encoding (truncated block or a 0x00 inside)."""


class CobsOverflow(CobsError):
    """The decoding would be longer than the caller's limit."""


def cobs_encode(data: bytes) -> bytes:
    """COBS-encodes data (without the trailing 0x00 delimiter)."""
    out = bytearray()
    for chunk in bytes(data).split(b"\x00"):
        while len(chunk) >= 254:
            out.append(0xFF)
            out += chunk[:254]
            chunk = chunk[254:]
        out.append(len(chunk) + 1)
        out += chunk
    return bytes(out)


def cobs_decode(data: bytes, max_len: int | None = None) -> bytes:
    """Decodes one COBS block sequence (no delimiter). Raises CobsOverflow when the result
    would exceed max_len (checked first, as the byte-wise C decoder does), CobsError when
    the encoding is invalid."""
    out = bytearray()
    limit = len(data) if max_len is None else max_len
    i = 0
    n = len(data)
    while i < n:
        code = data[i]
        if code == 0:
            raise CobsError(f"COBS: 0x00 inside the encoding at byte {i}")
        end = i + code
        block = data[i + 1 : end]
        if 0 in block:
            raise CobsError(f"COBS: 0x00 inside the encoding at byte {i + 1 + block.index(0)}")
        out += block
        if len(out) > limit:
            raise CobsOverflow(f"COBS: decoding exceeds {limit} bytes")
        if end > n:
            raise CobsError(f"COBS: block at byte {i} needs {code - 1} bytes, {n - i - 1} left")
        i = end
        if code != 0xFF and i < n:
            out.append(0)
            if len(out) > limit:
                raise CobsOverflow(f"COBS: decoding exceeds {limit} bytes")
    return bytes(out)
