"""Hypothesis strategies shared by the protocol tests."""

from __future__ import annotations

import struct
import zlib

import numpy as np
from hypothesis import strategies as st

from tinysplit.core.protocol import (
    MAX_PAYLOAD,
    MAX_RAW,
    PUT_WEIGHTS_MAX_DATA,
    STATS_COUNTERS,
    TRAIN_STEP_MAX_COUNT,
    VERSION,
    WEIGHTS_MAX_DATA,
    Commit,
    ErrorMsg,
    Eval,
    GetWeights,
    Grad,
    HeadIn,
    HeadMode,
    HeadOut,
    Hello,
    HelloReq,
    Message,
    PutWeights,
    Smashed,
    Stats,
    StatsReq,
    Status,
    StepDone,
    Sync,
    TrainStep,
    Weights,
    cobs_encode,
    encode_frame,
    head_per_frame,
)

u8 = st.integers(0, 0xFF)
u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFF_FFFF)
f32 = st.floats(width=32, allow_nan=False)

# Payloads that stress COBS: random bytes, zero-heavy, long non-zero runs across 254.
payloads = st.one_of(
    st.binary(max_size=MAX_PAYLOAD),
    st.lists(st.sampled_from([0, 1, 0xFF]), max_size=600).map(bytes),
    st.builds(lambda n, b: bytes([b]) * n, st.integers(0, MAX_PAYLOAD), st.integers(1, 255)),
)
small_payloads = st.one_of(
    st.binary(max_size=300),
    st.builds(lambda n: b"\xff" * n, st.integers(240, 520)),
)


@st.composite
def frames(draw: st.DrawFn, payload: st.SearchStrategy[bytes] = small_payloads) -> bytes:
    """One encoded frame (with its delimiter)."""
    return encode_frame(draw(u8), draw(u32), draw(u32), draw(u16), draw(payload))


@st.composite
def smashed(draw: st.DrawFn) -> Smashed:
    cut = draw(st.integers(1, 64))
    count = draw(st.integers(1, (MAX_PAYLOAD - 8) // (cut + 1)))
    acts = draw(st.binary(min_size=count * cut, max_size=count * cut))
    return Smashed(
        draw(f32),
        draw(st.integers(-128, 127)),
        draw(st.one_of(st.none(), st.binary(min_size=count, max_size=count))),
        np.frombuffer(acts, np.int8).reshape(count, cut),
    )


@st.composite
def head_in(draw: st.DrawFn) -> HeadIn:
    size = draw(st.integers(1, 64))
    count = draw(st.integers(1, head_per_frame(size)))
    scales = draw(st.lists(f32, min_size=count, max_size=count))
    acts = draw(st.binary(min_size=count * size, max_size=count * size))
    return HeadIn(
        draw(st.sampled_from(list(HeadMode))),
        np.array(scales, np.float32),
        np.frombuffer(acts, np.int8).reshape(count, size),
    )


@st.composite
def head_out(draw: st.DrawFn) -> HeadOut:
    size = draw(st.integers(1, 64))
    count = draw(st.integers(1, head_per_frame(size)))
    correct = draw(st.integers(0, count))
    if draw(st.booleans()):
        return HeadOut(int(HeadMode.EVAL), count, correct, draw(f32))
    scales = draw(st.lists(f32, min_size=count, max_size=count))
    grads = draw(st.binary(min_size=count * size, max_size=count * size))
    return HeadOut(
        int(HeadMode.TRAIN), count, correct, draw(f32), np.array(scales, np.float32),
        np.frombuffer(grads, np.int8).reshape(count, size),
    )  # fmt: skip


@st.composite
def grad(draw: st.DrawFn) -> Grad:
    cut = draw(st.integers(1, 64))
    count = draw(st.integers(1, (MAX_PAYLOAD - 4) // (cut + 4)))
    scales = draw(st.lists(f32, min_size=count, max_size=count))
    grads = draw(st.binary(min_size=count * cut, max_size=count * cut))
    return Grad(np.array(scales, np.float32), np.frombuffer(grads, np.int8).reshape(count, cut))


board_names = st.text(max_size=40).filter(lambda s: len(s.encode()) <= 255)

messages: st.SearchStrategy[Message] = st.one_of(
    st.just(HelloReq()),
    st.builds(
        Hello,
        u16,
        u16,
        st.binary(min_size=8, max_size=8),
        u16,
        u16,
        u16,
        u16,
        u32,
        u32,
        u32,
        u8,
        board_names,
    ),
    st.builds(Sync, u32),
    st.builds(Status, u32, u32, u32, u32, u8),
    st.builds(TrainStep, f32, u32, u16, st.lists(u16, max_size=TRAIN_STEP_MAX_COUNT).map(tuple)),
    smashed(),
    grad(),
    head_in(),
    head_out(),
    st.builds(StepDone, u32, f32, f32, u32),
    st.builds(Commit, u32, u16),
    st.builds(Eval, u8, u16, u16),
    st.builds(GetWeights, u32, u16),
    st.builds(Weights, u32, u32, u32, st.binary(max_size=WEIGHTS_MAX_DATA)),
    st.builds(PutWeights, u32, u32, u32, u32, st.binary(max_size=PUT_WEIGHTS_MAX_DATA)),
    st.just(StatsReq()),
    st.builds(
        Stats,
        st.lists(u32, min_size=len(STATS_COUNTERS), max_size=len(STATS_COUNTERS)).map(tuple),
    ),
    st.builds(ErrorMsg, u16, st.text(max_size=100)),
)


# A stream made of frames, garbage and stray delimiters.
STREAM_PARTS = st.lists(
    st.one_of(frames(), st.binary(max_size=200), st.just(b"\x00"), st.just(b"\x01" * 1100)),
    min_size=1,
    max_size=6,
)


def raw_frame(
    magic: int = 0x5354,
    version: int = VERSION,
    length: int | None = None,
    payload: bytes = b"xy",
    crc_xor: int = 0,
) -> bytes:
    """COBS-encoded frame with arbitrary header fields and a CRC that is valid unless crc_xor."""
    length = len(payload) if length is None else length
    body = struct.pack("<HBBIIHH", magic, version, 0x10, 1, 2, 3, length) + payload
    return cobs_encode(body + struct.pack("<I", zlib.crc32(body) ^ crc_xor)) + b"\x00"


# One stream per counter, shared with the C cross test (test_wire_c.py).
COUNTER_CASES = {
    "oversize": b"\x01" * (MAX_RAW + 100) + b"\x00",
    "oversize_by_decoded_size": cobs_encode(b"\x11" * (MAX_RAW + 1)) + b"\x00",
    "cobs_errors": b"\x05\x01\x02\x00",
    "short": cobs_encode(bytes(19)) + b"\x00",
    "crc_errors": raw_frame(crc_xor=0x8000_0000),
    "bad_magic": raw_frame(magic=0x5453),
    "bad_version": raw_frame(version=VERSION + 1),
    "bad_length": raw_frame(length=3),
}


def every_single_fault(frame: bytes) -> list[bytes]:
    """frame with each single-bit flip, each truncation, each byte deleted, a byte inserted at
    each position (0x00, 0x01, 0xFF, 0x55 in turn)."""
    out = []
    for i in range(len(frame)):
        for bit in range(8):
            out.append(frame[:i] + bytes([frame[i] ^ (1 << bit)]) + frame[i + 1 :])
        out.append(frame[:i])
        out.append(frame[:i] + frame[i + 1 :])
        out.append(frame[:i] + bytes([(0x00, 0x01, 0xFF, 0x55)[i % 4]]) + frame[i:])
    return out


FAULT_FRAMES = [
    encode_frame(0x10, 1, 2, 3, b""),
    encode_frame(0x11, 0xDEADBEEF, 7, 0, bytes(range(256)) + bytes(40)),
    encode_frame(0x12, 5, 6, 7, b"\xff" * 600),
]
