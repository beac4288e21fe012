"""Wire protocol v1: the one definition of every constant and payload layout (docs/protocol.md).

`python -m tinysplit.host.protocol.gen_c` turns this module into firmware/protocol/ts_wire.h;
a test fails when the committed header is stale. Change the protocol here, nowhere else.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

MAGIC = 0x5354  # bytes "TS" on the wire (little-endian u16)
VERSION = 1
HEADER_SIZE = 16
HEADER_FORMAT = "<HBBIIHH"  # magic, version, type, session, step, seq, length
CRC_SIZE = 4
MAX_PAYLOAD = 1024
MAX_RAW = HEADER_SIZE + MAX_PAYLOAD + CRC_SIZE


def cobs_max_encoded(n: int) -> int:
    """Worst-case COBS encoding of n bytes: one code byte per started 254-byte block."""
    return n + n // 254 + 1


MAX_ENCODED = cobs_max_encoded(MAX_RAW) + 1  # + the 0x00 delimiter


class MsgType(IntEnum):
    HELLO_REQ = 0x01
    HELLO = 0x02
    TRAIN_STEP = 0x10
    SMASHED = 0x11
    GRAD = 0x12
    STEP_DONE = 0x13
    EVAL = 0x20
    GET_WEIGHTS = 0x30
    WEIGHTS = 0x31
    ERROR = 0x7F


class ErrorCode(IntEnum):
    BAD_REQUEST = 1  # length or fields
    BAD_INDEX = 2
    BATCH_TOO_LARGE = 3
    UNEXPECTED = 4  # message not valid in the device's state
    WRONG_SESSION = 5
    UNSUPPORTED_VERSION = 6


class Split(IntEnum):
    """EVAL's split field."""

    TRAIN = 0
    TEST = 1


@dataclass(frozen=True)
class Layout:
    """A payload: a fixed part of (name, struct code) fields, then a variable tail."""

    direction: str
    fields: tuple[tuple[str, str], ...]
    tail: str = ""

    @property
    def format(self) -> str:
        return "<" + "".join(code for _, code in self.fields)

    @property
    def fixed_size(self) -> int:
        return struct.calcsize(self.format)

    def offsets(self) -> dict[str, int]:
        out: dict[str, int] = {}
        pos = 0
        for name, code in self.fields:
            out[name] = pos
            pos += struct.calcsize("<" + code)
        return out


LAYOUTS: dict[MsgType, Layout] = {
    MsgType.HELLO_REQ: Layout("host->device", ()),
    MsgType.HELLO: Layout(
        "device->host",
        (
            ("proto", "H"),
            ("max_payload", "H"),
            ("model_hash", "8s"),
            ("n_train", "H"),
            ("n_test", "H"),
            ("cut_size", "H"),
            ("max_batch", "H"),
            ("boot_count", "I"),
            ("reset_cause", "B"),
            ("name_len", "B"),
        ),
        "char board[name_len]",
    ),
    MsgType.TRAIN_STEP: Layout("host->device", (("lr", "f"), ("count", "H")), "u16 index[count]"),
    MsgType.SMASHED: Layout(
        "device->host",
        (("scale", "f"), ("zero_point", "b"), ("pad", "B"), ("count", "H")),
        "u8 label[count], i8 act[count * cut_size]",
    ),
    MsgType.GRAD: Layout(
        "host->device",
        (("count", "H"), ("pad", "H")),
        "f32 scale[count], i8 grad[count * cut_size]",
    ),
    MsgType.STEP_DONE: Layout(
        "device->host",
        (("weights_crc", "I"), ("range_min", "f"), ("range_max", "f"), ("cycles", "I")),
    ),
    MsgType.EVAL: Layout(
        "host->device", (("split", "B"), ("pad", "B"), ("start", "H"), ("count", "H"))
    ),
    MsgType.GET_WEIGHTS: Layout("host->device", (("offset", "I"), ("length", "H"))),
    MsgType.WEIGHTS: Layout("device->host", (("offset", "I"), ("total", "I")), "u8 data[]"),
    MsgType.ERROR: Layout("device->host", (("code", "H"),), "char message[]"),
}

MODEL_HASH_SIZE = 8
MAX_BOARD_NAME = 255  # HELLO's name_len is a u8

FIXED_SIZE: dict[MsgType, int] = {t: layout.fixed_size for t, layout in LAYOUTS.items()}
HELLO_REQ_FIXED_SIZE = FIXED_SIZE[MsgType.HELLO_REQ]
HELLO_FIXED_SIZE = FIXED_SIZE[MsgType.HELLO]
TRAIN_STEP_FIXED_SIZE = FIXED_SIZE[MsgType.TRAIN_STEP]
SMASHED_FIXED_SIZE = FIXED_SIZE[MsgType.SMASHED]
GRAD_FIXED_SIZE = FIXED_SIZE[MsgType.GRAD]
STEP_DONE_FIXED_SIZE = FIXED_SIZE[MsgType.STEP_DONE]
EVAL_FIXED_SIZE = FIXED_SIZE[MsgType.EVAL]
GET_WEIGHTS_FIXED_SIZE = FIXED_SIZE[MsgType.GET_WEIGHTS]
WEIGHTS_FIXED_SIZE = FIXED_SIZE[MsgType.WEIGHTS]
ERROR_FIXED_SIZE = FIXED_SIZE[MsgType.ERROR]

TRAIN_STEP_MAX_COUNT = (MAX_PAYLOAD - TRAIN_STEP_FIXED_SIZE) // 2
WEIGHTS_MAX_DATA = MAX_PAYLOAD - WEIGHTS_FIXED_SIZE


def smashed_per_frame(cut_size: int) -> int:
    """Samples per SMASHED frame: each carries a u8 label and cut_size int8 activations."""
    return (MAX_PAYLOAD - SMASHED_FIXED_SIZE) // (cut_size + 1)


def grad_per_frame(cut_size: int) -> int:
    """Samples per GRAD frame: each carries an f32 scale and cut_size int8 gradients."""
    return (MAX_PAYLOAD - GRAD_FIXED_SIZE) // (cut_size + 4)
