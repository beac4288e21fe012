"""ctypes bindings of the C codec in build/hostlib/libtinysplit.so (firmware/protocol)."""

from __future__ import annotations

import ctypes
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from tinysplit.core.protocol import MAX_ENCODED, MAX_RAW, Frame, Header

ROOT = Path(__file__).resolve().parents[2]
COUNTERS = (
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


class CHeader(ctypes.Structure):
    _fields_ = (
        ("type", ctypes.c_uint8),
        ("session", ctypes.c_uint32),
        ("step", ctypes.c_uint32),
        ("seq", ctypes.c_uint16),
        ("length", ctypes.c_uint16),
    )


class CDecoder(ctypes.Structure):
    """Mirror of ts_frame_decoder_t (firmware/protocol/ts_frame.h)."""

    _fields_ = (
        *((name if name != "short" else "short_frames", ctypes.c_uint32) for name in COUNTERS),
        ("raw_len", ctypes.c_uint16),
        ("code", ctypes.c_uint8),
        ("left", ctypes.c_uint8),
        ("skipping", ctypes.c_uint8),
        ("last_bad_version", ctypes.c_uint8),
        ("reserved", ctypes.c_uint8 * 2),
        ("raw", ctypes.c_uint8 * MAX_RAW),
    )


@dataclass
class CResult:
    frames: list[Frame]
    stats: dict[str, int]


class CLib:
    """The protocol functions of build/hostlib/libtinysplit.so."""

    def __init__(self, path: Path) -> None:
        lib = ctypes.CDLL(str(path))
        u8p = ctypes.POINTER(ctypes.c_uint8)
        lib.ts_crc32.argtypes = (ctypes.c_char_p, ctypes.c_size_t)
        lib.ts_crc32.restype = ctypes.c_uint32
        lib.ts_crc32_update.argtypes = (ctypes.c_uint32, ctypes.c_char_p, ctypes.c_size_t)
        lib.ts_crc32_update.restype = ctypes.c_uint32
        lib.ts_cobs_encode.argtypes = (ctypes.c_char_p, ctypes.c_size_t, u8p, ctypes.c_size_t)
        lib.ts_cobs_encode.restype = ctypes.c_size_t
        lib.ts_cobs_decode.argtypes = (
            ctypes.c_char_p,
            ctypes.c_size_t,
            u8p,
            ctypes.c_size_t,
            ctypes.POINTER(ctypes.c_size_t),
        )
        lib.ts_cobs_decode.restype = ctypes.c_int
        lib.ts_frame_encode.argtypes = (
            ctypes.POINTER(CHeader),
            ctypes.c_char_p,
            ctypes.c_size_t,
            u8p,
            ctypes.c_size_t,
        )
        lib.ts_frame_encode.restype = ctypes.c_size_t
        lib.ts_frame_decoder_init.argtypes = (ctypes.POINTER(CDecoder),)
        lib.ts_frame_decoder_init.restype = None
        lib.ts_frame_decoder_push.argtypes = (
            ctypes.POINTER(CDecoder),
            ctypes.c_uint8,
            ctypes.POINTER(CHeader),
            ctypes.POINTER(u8p),
        )
        lib.ts_frame_decoder_push.restype = ctypes.c_int
        lib.ts_frame_decoder_expire.argtypes = (ctypes.POINTER(CDecoder),)
        lib.ts_frame_decoder_expire.restype = ctypes.c_int
        self.lib = lib

    def crc32(self, data: bytes, state: int | None = None) -> int:
        if state is None:
            return int(self.lib.ts_crc32(data, len(data)))
        return int(self.lib.ts_crc32_update(state, data, len(data)))

    def cobs_encode(self, data: bytes) -> bytes:
        out = (ctypes.c_uint8 * (len(data) + len(data) // 254 + 1))()
        n = self.lib.ts_cobs_encode(data, len(data), out, len(out))
        return bytes(out[:n])

    def cobs_decode(self, data: bytes, cap: int) -> tuple[int, bytes]:
        out = (ctypes.c_uint8 * max(cap, 1))()
        n = ctypes.c_size_t(0)
        status = self.lib.ts_cobs_decode(data, len(data), out, cap, ctypes.byref(n))
        return int(status), bytes(out[: n.value])

    def encode_frame(self, h: Header, payload: bytes, cap: int = MAX_ENCODED) -> bytes:
        ch = CHeader(h.type, h.session, h.step, h.seq, h.length)
        out = (ctypes.c_uint8 * max(cap, 1))()
        n = self.lib.ts_frame_encode(ctypes.byref(ch), payload, len(payload), out, cap)
        return bytes(out[:n])

    def new_decoder(self) -> CDecoder:
        d = CDecoder()
        self.lib.ts_frame_decoder_init(ctypes.byref(d))
        return d

    def expire(self, d: CDecoder) -> bool:
        """ts_frame_decoder_expire: drops the frame in progress (a gap in the stream)."""
        return bool(self.lib.ts_frame_decoder_expire(ctypes.byref(d)))

    def decode(self, stream: Iterable[int], d: CDecoder | None = None) -> CResult:
        """Pushes every byte through a C decoder (a new one unless given)."""
        d = self.new_decoder() if d is None else d
        h = CHeader()
        payload = ctypes.POINTER(ctypes.c_uint8)()
        push = self.lib.ts_frame_decoder_push
        frames: list[Frame] = []
        dref, href, pref = ctypes.byref(d), ctypes.byref(h), ctypes.byref(payload)
        for byte in stream:
            if push(dref, byte, href, pref):
                data = ctypes.string_at(payload, h.length)
                frames.append(Frame(Header(h.type, h.session, h.step, h.seq, h.length), data))
        return CResult(frames, counters(d))


def counters(d: CDecoder) -> dict[str, int]:
    return {name: getattr(d, "short_frames" if name == "short" else name) for name in COUNTERS}
