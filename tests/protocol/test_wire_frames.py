"""The Python frame codec: round trips, and no corrupted frame ever accepted."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from wire_strategies import (
    COUNTER_CASES,
    FAULT_FRAMES,
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
    VERSION,
    CobsError,
    FrameDecoder,
    Header,
    cobs_decode,
    cobs_encode,
    encode_frame,
)
from tinysplit.core.protocol.spec import cobs_max_encoded

STREAM = st.lists(frames(), min_size=1, max_size=4)
CORRUPTION = settings(max_examples=300, deadline=None)


def accepted(stream: bytes) -> list[bytes]:
    """The frames a fresh decoder accepts, re-encoded (so they compare with the originals)."""
    return [
        encode_frame(f.header.type, f.header.session, f.header.step, f.header.seq, f.payload)
        for f in FrameDecoder().feed(stream)
    ]


@given(st.binary(max_size=2000))
def test_cobs_round_trip_without_zeros_within_the_bound(data: bytes) -> None:
    enc = cobs_encode(data)
    assert 0 not in enc
    assert len(enc) <= cobs_max_encoded(len(data))
    assert cobs_decode(enc) == data


def test_cobs_blocks_of_254() -> None:
    assert cobs_encode(b"\xff" * 254) == b"\xff" + b"\xff" * 254 + b"\x01"
    assert cobs_decode(b"\xff" + b"\xff" * 254) == b"\xff" * 254  # without the final 01
    assert cobs_encode(b"") == b"\x01"
    assert cobs_encode(b"\x00") == b"\x01\x01"
    with pytest.raises(CobsError):
        cobs_decode(b"\x05\x01")
    with pytest.raises(CobsError):
        cobs_decode(b"\x02\x00")


@given(u8, u32, u32, u16, payloads)
def test_frame_round_trip(t: int, session: int, step: int, seq: int, payload: bytes) -> None:
    wire = encode_frame(t, session, step, seq, payload)
    assert wire.endswith(b"\x00") and 0 not in wire[:-1]
    assert len(wire) <= MAX_ENCODED
    d = FrameDecoder()
    [frame] = d.feed(wire)
    assert frame.header == Header(t, session, step, seq, len(payload))
    assert frame.payload == payload
    assert d.stats() == {**dict.fromkeys(d.stats(), 0), "frames_ok": 1}


def test_largest_frame_fits_max_encoded() -> None:
    # a sealed frame (type 0xFF has the SEALED bit) of the largest payload: counter and tag more
    wire = encode_frame(0xFF, 2**32 - 1, 2**32 - 1, 0xFFFF, b"\xff" * (MAX_PAYLOAD + 20))
    assert len(wire) == MAX_ENCODED
    with pytest.raises(ValueError, match="exceeds the frame's 2068"):
        encode_frame(0xFF, 0, 0, 0, bytes(MAX_PAYLOAD + 21))
    with pytest.raises(ValueError, match="exceeds the frame's 2048"):
        encode_frame(1, 0, 0, 0, bytes(MAX_PAYLOAD + 1))
    with pytest.raises(ValueError, match="out of range"):
        encode_frame(1, 2**32, 0, 0, b"")


@given(STREAM, st.data())
def test_feeding_in_pieces_gives_the_same_frames(chunks: list[bytes], data: st.DataObject) -> None:
    stream = b"".join(chunks)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=8)))
    d = FrameDecoder()
    got = []
    for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True):
        got += d.feed(stream[a:b])
    assert got == FrameDecoder().feed(stream)
    assert len(got) == len(chunks)


def corrupted_stream_properties(originals: list[bytes], stream: bytes) -> None:
    got = accepted(stream)
    assert set(got) <= set(originals), "a corrupted frame was accepted"


@pytest.mark.parametrize("frame", FAULT_FRAMES, ids=["empty", "zeros", "ff-runs"])
def test_every_single_fault_exhaustively(frame: bytes) -> None:
    """Each bit flip, truncation, deleted and inserted byte of a frame sent between two good
    frames: nothing but an original frame is accepted, and the frames around it survive."""
    before = encode_frame(1, 1, 1, 1, b"before")
    after = encode_frame(2, 2, 2, 2, b"after")
    for bad in every_single_fault(frame):
        got = accepted(before + bad + after)
        assert set(got) <= {before, frame, after}
        assert got[0] == before
        if bad.endswith(b"\x00") or not bad:
            assert got[-1] == after


@CORRUPTION
@given(STREAM, st.data())
def test_single_bit_flip(chunks: list[bytes], data: st.DataObject) -> None:
    stream = bytearray(b"".join(chunks))
    bit = data.draw(st.integers(0, 8 * len(stream) - 1))
    stream[bit // 8] ^= 1 << (bit % 8)
    corrupted_stream_properties(chunks, bytes(stream))
    # Frames ending before the flipped byte are untouched.
    intact = []
    pos = 0
    for c in chunks:
        pos += len(c)
        if pos <= bit // 8:
            intact.append(c)
    assert accepted(bytes(stream))[: len(intact)] == intact


@CORRUPTION
@given(STREAM, st.data())
def test_truncation_then_the_next_frame(chunks: list[bytes], data: st.DataObject) -> None:
    stream = b"".join(chunks)
    cut = data.draw(st.integers(0, len(stream)))
    tail = encode_frame(1, 2, 3, 4, b"after")
    got = accepted(stream[:cut] + b"\x00" + tail)
    assert set(got) <= {*chunks, tail}
    assert got[-1] == tail  # the delimiter resynchronizes
    whole = sum(1 for i in range(len(chunks)) if len(b"".join(chunks[: i + 1])) <= cut)
    assert got[:whole] == chunks[:whole]
    # + 1: a cut just before a final 01 code byte leaves an equivalent encoding of that frame.
    assert len(got) in (whole + 1, whole + 2)


@CORRUPTION
@given(STREAM, st.data())
def test_inserted_or_deleted_byte(chunks: list[bytes], data: st.DataObject) -> None:
    stream = bytearray(b"".join(chunks))
    pos = data.draw(st.integers(0, len(stream) - 1))
    if data.draw(st.booleans()):
        stream.insert(pos, data.draw(u8))
    else:
        del stream[pos]
    corrupted_stream_properties(chunks, bytes(stream))


@CORRUPTION
@given(STREAM, st.binary(max_size=3000), STREAM)
def test_garbage_between_frames(before: list[bytes], garbage: bytes, after: list[bytes]) -> None:
    got = accepted(b"".join(before) + garbage + b"".join(after))
    assert set(got) <= {*before, *after}
    assert got[: len(before)] == before
    # Without a 0x00 between them, the garbage swallows the first frame after it, no more.
    if not garbage or garbage.endswith(b"\x00"):
        assert got[len(before) :] == after
    else:
        assert got[len(before) :] in (after, after[1:])


@given(st.binary(min_size=1, max_size=4000))
def test_garbage_never_raises_and_every_drop_is_counted(garbage: bytes) -> None:
    d = FrameDecoder()
    got = d.feed(garbage + b"\x00")
    stats = d.stats()
    dropped = sum(v for k, v in stats.items() if k not in ("frames_ok", "resyncs"))
    assert stats["resyncs"] == dropped
    assert stats["frames_ok"] == len(got)
    non_empty = sum(1 for part in garbage.split(b"\x00") if part)
    assert stats["frames_ok"] + dropped == non_empty


def test_memory_stays_bounded_without_delimiters() -> None:
    d = FrameDecoder()
    for _ in range(100):
        assert d.feed(b"\x01" * 10_000) == []
        assert len(d._buf) <= MAX_ENCODED
    d.feed(b"\x00")
    assert d.oversize == 1 and d.resyncs == 1


@pytest.mark.parametrize("name", COUNTER_CASES)
def test_each_check_has_its_counter(name: str) -> None:
    d = FrameDecoder()
    stream = COUNTER_CASES[name] + encode_frame(1, 2, 3, 4, b"ok")
    assert len(d.feed(stream)) == 1
    counter = name.split("_by_")[0]
    assert d.stats() == {**dict.fromkeys(d.stats(), 0), counter: 1, "resyncs": 1, "frames_ok": 1}
    if counter == "bad_version":
        assert d.last_bad_version == VERSION + 1


def test_empty_frames_are_ignored() -> None:
    d = FrameDecoder()
    assert d.feed(b"\x00\x00" + encode_frame(1, 2, 3, 4, b"") + b"\x00") != []
    assert d.resyncs == 0
