"""The C codec (firmware/protocol) against the Python one, through ctypes and a sanitized driver."""

from __future__ import annotations

import ctypes
import random
import re
import subprocess
import zlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from wire_clib import ROOT, CDecoder, CLib
from wire_strategies import (
    COUNTER_CASES,
    FAULT_FRAMES,
    STREAM_PARTS,
    every_single_fault,
    frames,
    payloads,
    u8,
    u16,
    u32,
)

from tinysplit.core.protocol import (
    MAX_ENCODED,
    MAX_PAYLOAD,
    MAX_RAW,
    VERSION,
    Frame,
    FrameDecoder,
    Header,
    cobs_encode,
    encode_frame,
    spec,
)

C_FAST = settings(max_examples=50, deadline=None)
C_CORRUPTION = settings(max_examples=150, deadline=None)


def test_decoder_struct_mirror_and_size() -> None:
    text = (ROOT / "firmware/protocol/ts_frame.h").read_text()
    assert "2132" in text  # the size documented for the memory plan
    assert ctypes.sizeof(CDecoder) == 44 + MAX_RAW == 2132


@given(st.binary(max_size=3000), st.integers(0, 3000))
def test_crc32_is_zlib_crc32(clib: CLib, data: bytes, split: int) -> None:
    assert clib.crc32(data) == zlib.crc32(data)
    state = clib.crc32(data[split:], clib.crc32(data[:split], 0xFFFF_FFFF))
    assert state ^ 0xFFFF_FFFF == zlib.crc32(data)


def test_crc32_check_value(clib: CLib) -> None:
    assert clib.crc32(b"123456789") == 0xCBF43926


@given(payloads)
def test_cobs_same_bytes_both_ways(clib: CLib, data: bytes) -> None:
    enc = cobs_encode(data)
    assert clib.cobs_encode(data) == enc
    assert clib.cobs_decode(enc, len(data)) == (0, data)
    if data:
        assert clib.cobs_decode(enc, len(data) - 1)[0] == -1  # TS_ERR_ARG: does not fit
    assert clib.cobs_decode(enc + b"\x00", len(data) + 1)[0] == -3  # TS_ERR_FRAME


@given(u8, u32, u32, u16, payloads)
def test_c_encoder_matches_python_byte_for_byte(
    clib: CLib, t: int, session: int, step: int, seq: int, payload: bytes
) -> None:
    h = Header(t, session, step, seq, 0xFFFF)  # length is taken from the payload
    wire = clib.encode_frame(h, payload)
    assert wire == encode_frame(t, session, step, seq, payload)
    [frame] = FrameDecoder().feed(wire)
    assert frame == Frame(Header(t, session, step, seq, len(payload)), payload)
    assert clib.encode_frame(h, payload, cap=len(wire) - 1) == b""


def test_c_encoder_refuses_oversize_payload(clib: CLib) -> None:
    h = Header(1, 0, 0, 0, 0)
    # the largest clear frame; a sealed one carries 20 bytes more (counter, tag): MAX_ENCODED
    clear_max = spec.cobs_max_encoded(spec.HEADER_SIZE + MAX_PAYLOAD + spec.CRC_SIZE) + 1
    assert len(clib.encode_frame(h, b"\xff" * MAX_PAYLOAD)) == clear_max == 2078
    assert spec.cobs_max_encoded(spec.MAX_RAW) + 1 == MAX_ENCODED
    assert clib.encode_frame(h, bytes(MAX_PAYLOAD + 1)) == b""


@C_CORRUPTION
@given(STREAM_PARTS, st.data())
def test_python_frames_decode_in_c_and_corruption_counts_the_same(
    clib: CLib, parts: list[bytes], data: st.DataObject
) -> None:
    """Any mix of frames, garbage, flips, drops: C and Python agree on frames and counters."""
    stream = bytearray(b"".join(parts))
    for _ in range(data.draw(st.integers(0, 3))):
        pos = data.draw(st.integers(0, max(len(stream) - 1, 0)))
        kind = data.draw(st.sampled_from(["flip", "insert", "delete"]))
        if kind == "flip" and stream:
            stream[pos] ^= 1 << data.draw(st.integers(0, 7))
        elif kind == "insert":
            stream.insert(pos, data.draw(u8))
        elif stream:
            del stream[pos]
    py = FrameDecoder()
    py_frames = py.feed(bytes(stream))
    c = clib.decode(stream)
    assert c.frames == py_frames
    assert c.stats == py.stats()


@pytest.mark.parametrize("name", COUNTER_CASES)
def test_c_counters_match_python(clib: CLib, name: str) -> None:
    stream = COUNTER_CASES[name] + encode_frame(1, 2, 3, 4, b"ok")
    py = FrameDecoder()
    py_frames = py.feed(stream)
    d = clib.new_decoder()
    c = clib.decode(stream, d)
    assert c.frames == py_frames
    assert c.stats == py.stats()
    if name == "bad_version":
        assert d.last_bad_version == VERSION + 1


@given(frames(), frames(), st.data())
def test_a_gap_drops_the_cut_frame_in_c_and_python(
    clib: CLib, cut_one: bytes, whole: bytes, data: st.DataObject
) -> None:
    """A frame cut short (its tail and delimiter lost), then a gap: both decoders drop the part
    and take the next frame whole, without counting a drop (the caller counts the gap)."""
    part = cut_one[: data.draw(st.integers(1, len(cut_one) - 1))]
    d, py = clib.new_decoder(), FrameDecoder()
    assert clib.decode(part, d).frames == py.feed(part) == []
    assert clib.expire(d) and py.expire()
    assert not clib.expire(d) and not py.expire()  # nothing in progress any more
    c = clib.decode(whole, d)
    assert c.frames == py.feed(whole) and len(c.frames) == 1
    assert c.stats == py.stats() and c.stats["resyncs"] == 0


def run_driver(exe: Path, args: list[str], stdin: bytes) -> str:
    proc = subprocess.run(
        [str(exe), *args],
        input=stdin,
        capture_output=True,
        timeout=60,
        env={"ASAN_OPTIONS": "detect_leaks=0:abort_on_error=0", "UBSAN_OPTIONS": "halt_on_error=1"},
    )
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")[-3000:]
    return proc.stdout.decode()


def parse_driver(out: str) -> tuple[list[Frame], dict[str, int]]:
    frames = []
    stats: dict[str, int] = {}
    for line in out.splitlines():
        kind, *fields = line.split(" ")
        if kind == "F":
            t, session, step, seq, length = map(int, fields[:5])
            payload = bytes.fromhex(fields[5]) if len(fields) > 5 else b""
            frames.append(Frame(Header(t, session, step, seq, length), payload))
        elif kind == "C":
            names = FrameDecoder().stats()
            stats = dict(zip(names, map(int, fields), strict=True))
    return frames, stats


def test_sanitized_decoder_on_long_random_streams(asan_driver: Path) -> None:
    """~1 MB of mixed frames, corruption and garbage through the ASan/UBSan build."""
    rng = random.Random(1234)
    for _ in range(4):
        parts = []
        for _ in range(400):
            r = rng.random()
            if r < 0.5:
                payload = rng.randbytes(rng.randint(0, MAX_PAYLOAD))
                frame = bytearray(encode_frame(rng.randint(0, 255), 7, 8, 9, payload))
                if rng.random() < 0.3:
                    frame[rng.randrange(len(frame))] ^= 1 << rng.randrange(8)
                parts.append(bytes(frame))
            elif r < 0.7:
                parts.append(rng.randbytes(rng.randint(0, 3000)))  # garbage, maybe long
            elif r < 0.8:
                parts.append(bytes(rng.choice([0x01, 0xFF, 0x11]) for _ in range(1500)))
            else:
                parts.append(b"\x00" * rng.randint(1, 3))
        stream = b"".join(parts)
        frames, stats = parse_driver(run_driver(asan_driver, ["decode"], stream))
        py = FrameDecoder()
        assert frames == py.feed(stream)
        assert stats == py.stats()
        assert stats["frames_ok"] > 50 and stats["oversize"] > 0 and stats["crc_errors"] > 0


def test_sanitized_decoder_on_every_single_fault(asan_driver: Path) -> None:
    """The exhaustive single-fault streams of test_wire_frames, one after another."""
    good = encode_frame(1, 1, 1, 1, b"good")
    cases = [bad for frame in FAULT_FRAMES for bad in every_single_fault(frame)]
    stream = b"".join(bad + b"\x00" + good for bad in cases)
    frames, stats = parse_driver(run_driver(asan_driver, ["decode"], stream))
    py = FrameDecoder()
    assert frames == py.feed(stream)
    assert stats == py.stats()
    assert stats["frames_ok"] >= len(cases)  # every good frame after a delimiter


@pytest.mark.parametrize("size", [0, 1, 253, 254, 255, 508, 1000, MAX_PAYLOAD])
def test_sanitized_encoder_never_writes_past_its_buffer(asan_driver: Path, size: int) -> None:
    payload = bytes(random.Random(size).choice([0, 1, 0xFF]) for _ in range(size))
    out = run_driver(asan_driver, ["encode", "17", "305419896", "7", "65535"], payload)
    match = re.fullmatch(r"E ([0-9a-f]+)\n", out)
    assert match, out
    assert bytes.fromhex(match.group(1)) == encode_frame(17, 305419896, 7, 65535, payload)


def test_sanitized_encoder_refuses_oversize(asan_driver: Path) -> None:
    assert (
        run_driver(asan_driver, ["encode", "1", "0", "0", "0"], bytes(MAX_PAYLOAD + 1)) == "E -\n"
    )


@C_FAST
@given(st.lists(frames(), min_size=1, max_size=3))
def test_c_decoder_handles_back_to_back_frames(clib: CLib, chunks: list[bytes]) -> None:
    stream = b"".join(chunks)
    assert clib.decode(stream).frames == FrameDecoder().feed(stream)
