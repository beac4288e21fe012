"""Message dataclasses: round trips, and one clear ProtocolError for every malformed payload."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from wire_strategies import messages

from tinysplit.core.errors import ProtocolError
from tinysplit.core.protocol import (
    MESSAGE_CLASSES,
    ErrorMsg,
    Eval,
    Frame,
    FrameDecoder,
    Grad,
    Header,
    HeadIn,
    HeadOut,
    Hello,
    HelloReq,
    Message,
    MsgType,
    Smashed,
    StepDone,
    TrainStep,
    decode_message,
    encode_message,
)
from tinysplit.core.protocol.messages import (
    Commit,
    PutWeights,
    Stats,
    StatsReq,
    Status,
    Sync,
    Weights,
)


@given(messages, st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1), st.integers(0, 0xFFFF))
def test_every_message_round_trips_through_a_frame(
    msg: Message, session: int, step: int, seq: int
) -> None:
    assert type(msg).unpack(msg.pack()) == msg
    frames = FrameDecoder().feed(encode_message(msg, session, step, seq))
    assert [f.header for f in frames] == [Header(msg.TYPE, session, step, seq, len(msg.pack()))]
    assert decode_message(frames[0]) == msg


def test_every_message_type_has_a_class() -> None:
    assert set(MESSAGE_CLASSES) == set(MsgType)


@given(st.sampled_from(sorted(MESSAGE_CLASSES)), st.binary(max_size=64))
def test_random_payloads_raise_only_protocol_error(msg_type: int, payload: bytes) -> None:
    frame = Frame(Header(msg_type, 0, 0, 0, len(payload)), payload)
    try:
        decode_message(frame)
    except ProtocolError as e:
        assert "\n" not in str(e)


@given(messages, st.data())
def test_truncated_payloads_are_rejected_or_still_well_formed(
    msg: Message, data: st.DataObject
) -> None:
    payload = msg.pack()
    if not payload:
        return
    cut = data.draw(st.integers(0, len(payload) - 1))
    try:
        short = type(msg).unpack(payload[:cut])
    except ProtocolError:
        return
    # Only a free-length tail survives truncation; SMASHED, GRAD, HEAD_IN and HEAD_OUT derive
    # their width from the length, so the caller must compare it with HELLO's cut size or the
    # export's head size (the link does; the frame CRC catches truncation).
    assert msg.TYPE in (
        MsgType.WEIGHTS,
        MsgType.PUT_WEIGHTS,
        MsgType.ERROR,
        MsgType.SMASHED,
        MsgType.GRAD,
        MsgType.HEAD_IN,
        MsgType.HEAD_OUT,
    )
    if isinstance(short, Smashed | Grad):
        assert isinstance(msg, Smashed | Grad)
        assert short.cut_size < msg.cut_size
    if isinstance(short, HeadIn):
        assert isinstance(msg, HeadIn) and short.acts.shape[1] < msg.acts.shape[1]
    if isinstance(short, HeadOut):
        assert isinstance(msg, HeadOut) and msg.grads is not None and short.grads is not None
        assert short.grads.shape[1] < msg.grads.shape[1]


def smashed_payload(count: int, cut: int, pad: int = 0) -> bytes:
    return struct.pack("<fbBH", 0.5, 0, pad, count) + bytes(count) + bytes(count * cut)


@pytest.mark.parametrize(
    ("cls", "payload", "words"),
    [
        (HelloReq, b"\x00", "expected 0"),
        (Hello, bytes(38), "at least 39"),
        (Hello, bytes(38) + b"\x03" + b"ab", "name_len 3"),
        (Hello, bytes(38) + b"\x02" + b"\xff\xfe", "UTF-8"),
        (TrainStep, struct.pack("<fIHH", 0.1, 0, 3, 3) + bytes(4), "2 * 3"),
        (Sync, bytes(3), "expected 4"),
        (Status, bytes(17) + b"\x01", "padding"),
        (Commit, bytes(6) + b"\x01\x00", "padding"),
        (PutWeights, bytes(15), "at least 16"),
        (Weights, bytes(11), "at least 12"),
        (StatsReq, b"\x00", "expected 0"),
        (Stats, bytes(91), "expected 92"),
        (Smashed, smashed_payload(0, 4), "count 0"),
        (Smashed, smashed_payload(3, 4)[:-1], "equal samples"),
        (Smashed, smashed_payload(3, 0), "cut_size (>= 1)"),
        (Smashed, smashed_payload(1, 4, pad=7), "unknown bits"),
        (Smashed, smashed_payload(2, 4, pad=1)[:-1], "equal samples"),  # NO_LABELS
        (HeadIn, struct.pack("<BBH", 2, 0, 1) + bytes(5), "mode 2"),
        (HeadIn, struct.pack("<BBH", 0, 1, 1) + bytes(5), "padding"),
        (HeadIn, struct.pack("<BBH", 0, 0, 2) + bytes(9), "equal samples"),
        (HeadOut, struct.pack("<BBHHHf", 1, 0, 2, 3, 0, 0.0), "3 correct of 2"),
        (HeadOut, struct.pack("<BBHHHf", 1, 0, 2, 1, 0, 0.0) + b"\x00", "(EVAL) payload"),
        (HeadOut, struct.pack("<BBHHHf", 0, 0, 1, 0, 0, 0.0) + bytes(4), "cut_size (>= 1)"),
        (Grad, struct.pack("<HH", 2, 0) + bytes(8), "equal samples"),
        (Grad, struct.pack("<HH", 1, 1) + bytes(5), "padding"),
        (StepDone, bytes(17), "expected 16"),
        (Eval, bytes(5), "expected 6"),
        (Eval, b"\x00\x02" + bytes(4), "flags"),
        (ErrorMsg, b"\x01", "at least 2"),
    ],
)
def test_malformed_payloads_name_the_problem(
    cls: type[Message], payload: bytes, words: str
) -> None:
    with pytest.raises(ProtocolError, match=None) as info:
        cls.unpack(payload)
    assert words in str(info.value)
    assert cls.TYPE.name in str(info.value) or cls.TYPE.name in ("HELLO_REQ", "STATS_REQ")


def test_unknown_message_type() -> None:
    with pytest.raises(ProtocolError, match="unknown message type 0x55"):
        decode_message(Frame(Header(0x55, 0, 0, 0, 0), b""))


def test_smashed_derives_cut_size_and_keeps_arrays_read_only() -> None:
    acts = np.arange(-6, 6, dtype=np.int8).reshape(3, 4)
    msg = Smashed.unpack(Smashed(0.25, -3, b"\x01\x02\x03", acts).pack())
    assert (msg.count, msg.cut_size, msg.zero_point) == (3, 4, -3)
    assert np.array_equal(msg.acts, acts)
    assert not msg.acts.flags.writeable


@pytest.mark.parametrize(
    "make",
    [
        lambda: Smashed(1.0, 0, b"\x01", np.zeros((1, 4), np.int16)),  # wrong dtype
        lambda: Smashed(1.0, 0, b"\x01\x02", np.zeros((1, 4), np.int8)),  # count mismatch
        lambda: Grad(np.zeros(2, np.float64), np.zeros((2, 4), np.int8)),  # wrong dtype
        lambda: Grad(np.zeros(0, np.float32), np.zeros((0, 4), np.int8)),  # empty
        lambda: Hello(1, 1, b"short", 0, 0, 0, 0, 0, 0, 0, 0, "b").pack(),
        lambda: Hello(1, 1, bytes(8), 0, 0, 0, 0, 0, 0, 0, 0, "b" * 256).pack(),
        lambda: TrainStep(0.1, 0, 1, (70000,)).pack(),
        lambda: Stats((1, 2)),  # not one value per counter
        lambda: Eval(2, -1, 0).pack(),
        lambda: StepDone(0, 1e40, 0.0, 0).pack(),  # not an f32
    ],
)
def test_fields_the_layout_cannot_carry_raise_value_error(make: object) -> None:
    with pytest.raises(ValueError):
        make()  # type: ignore[operator]


def test_error_message_describes_its_code() -> None:
    assert ErrorMsg(2, "EVAL range out of bounds").describe() == (
        "BAD_INDEX (2): EVAL range out of bounds"
    )
    assert "unknown" in ErrorMsg(99, "x").describe()
