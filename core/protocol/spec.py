"""Wire protocol v6: the one definition of every constant and payload layout (docs/protocol.md).

`python -m tinysplit.core.protocol.gen_c` turns this module into firmware/protocol/ts_wire.h;
a test fails when the committed header is stale. Change the protocol here, nowhere else.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

MAGIC = 0x5354  # bytes "TS" on the wire (little-endian u16)
VERSION = 6
HEADER_SIZE = 16
HEADER_FORMAT = "<HBBIIHH"  # magic, version, type, session, step, seq, length
CRC_SIZE = 4
MAX_PAYLOAD = 2048  # one SMASHED/GRAD frame holds a cut of up to 2040 bytes

# Sealed frames (docs/protocol.md, "Paired boards"): a paired board and its host encrypt and
# authenticate every frame after OPEN with ChaCha20-Poly1305 (RFC 8439) under a session key.
SEALED = 0x80  # set in the header's type: payload = u32 counter | ciphertext | tag
SEAL_COUNTER_SIZE = 4
SEAL_TAG_SIZE = 16
SEAL_OVERHEAD = SEAL_COUNTER_SIZE + SEAL_TAG_SIZE
PAIR_KEY_SIZE = 32  # written by `tinysplit export` into the image and DIR/pairing.key
OPEN_NONCE_SIZE = 8  # the host's share of the session key, fresh per OPEN
REPLAY_WINDOW = 32  # counters this far below the highest accepted one may still arrive late

MAX_WIRE_PAYLOAD = MAX_PAYLOAD + SEAL_OVERHEAD  # what a frame carries between header and crc
MAX_RAW = HEADER_SIZE + MAX_WIRE_PAYLOAD + CRC_SIZE


class Direction(IntEnum):
    """Which way a sealed frame travels: part of its nonce, so the two never share one."""

    TO_HOST = 1
    TO_BOARD = 2


def cobs_max_encoded(n: int) -> int:
    """Worst-case COBS encoding of n bytes: one code byte per started 254-byte block."""
    return n + n // 254 + 1


MAX_ENCODED = cobs_max_encoded(MAX_RAW) + 1  # + the 0x00 delimiter


class MsgType(IntEnum):
    HELLO_REQ = 0x01
    HELLO = 0x02
    SYNC = 0x03
    STATUS = 0x04
    OPEN = 0x05  # paired boards: the host proves the key and the board starts a sealed session
    TRAIN_STEP = 0x10
    SMASHED = 0x11
    GRAD = 0x12
    STEP_DONE = 0x13
    COMMIT = 0x14
    HEAD_IN = 0x15  # U-shaped (--labels client): the server's last activations to the board
    HEAD_OUT = 0x16  # U-shaped: the board's head answers (gradient of HEAD_IN's activations)
    SMASHED_PACKED = 0x17  # an export with --wire other than int8: SMASHED, coded (wire.py)
    GRAD_PACKED = 0x18  # its GRAD, coded; sparse: only the positions its SMASHED_PACKED carried
    EVAL = 0x20
    EVAL_DONE = 0x21
    GET_WEIGHTS = 0x30
    WEIGHTS = 0x31
    PUT_WEIGHTS = 0x32
    STATS_REQ = 0x40
    STATS = 0x41
    ERROR = 0x7F


class ErrorCode(IntEnum):
    BAD_REQUEST = 1  # length or fields
    BAD_INDEX = 2
    BATCH_TOO_LARGE = 3
    UNEXPECTED = 4  # message not valid in the device's state
    WRONG_SESSION = 5
    UNSUPPORTED_VERSION = 6
    GRAD_MISSING = 7  # COMMIT before every gradient of the step arrived: send them again
    GRAD_CRC = 8  # the staged gradients' CRC is not COMMIT's: they were dropped, send them again
    NOT_IN_FLIGHT = 9  # COMMIT for a step the board does not hold: run the step again
    WEIGHTS_INCOMPLETE = 10  # a PUT_WEIGHTS is unfinished (or was refused): push them again
    PUT_CRC = 11  # the pushed image's CRC is not PUT_WEIGHTS': push it again
    BASE_MISMATCH = 12  # TRAIN_STEP's base_crc is not the board's weights: restore, run again
    SEAL_INVALID = 13  # a pushed sealed state image failed its tag: tampered, or not this export's


class HelloFlag(IntEnum):
    """HELLO's flags field (bits)."""

    PAIRED = 1  # the image holds a pairing key: only HELLO_REQ and OPEN are taken in clear
    WIRE_SPARSE = 2  # the export's wire format (WireBit): SMASHED_PACKED / GRAD_PACKED
    WIRE_ACTS4 = 4
    WIRE_GRADS4 = 8


class WireBit(IntEnum):
    """The wire format's bits (SMASHED_PACKED's and GRAD_PACKED's `wire` field, and HELLO's
    flags): 0 is int8, today's SMASHED and GRAD. docs/protocol.md, "Wire formats"."""

    SPARSE = 2  # a bitmap of the activations that are not the zero point, then only those
    ACTS4 = 4  # activations in 4 bits: 16 levels from the zero point
    GRADS4 = 8  # gradients in 4 bits: [-7, 7], scale max |g| / 7


class BoardState(IntEnum):
    """STATUS's state field: where the board's training state machine is."""

    IDLE = 0  # no step in flight
    COLLECT = 1  # TRAIN_STEP indices arriving (a batch larger than one frame)
    AWAIT_GRAD = 2  # forward passes sent; gradients are being staged
    LOADING = 3  # a PUT_WEIGHTS is in progress: no training until it completes


#: STATS counters, in payload order (all u32). The decoder's counters first (ts_frame.h),
#: then the client's.
STATS_COUNTERS = (
    "frames_ok",  # valid frames received
    "crc_errors",
    "cobs_errors",
    "oversize",
    "short_frames",
    "bad_magic",
    "bad_version",
    "bad_length",
    "resyncs",  # dropped frames, all reasons
    "rx_timeouts",  # frames cut off by a gap between bytes (dropped)
    "duplicates",  # requests already applied: answered from cache or ignored
    "retransmits",  # replies sent again
    "stale",  # frames for another step (older, or out of order) ignored
    "wrong_session",  # requests that carried another session id
    "aborts",  # uncommitted steps dropped (SYNC, PUT_WEIGHTS, a new step)
    "commits",  # steps applied
    "grad_crc_errors",  # COMMITs whose CRC did not match the staged gradients
    "pushes",  # PUT_WEIGHTS images applied
    "errors_sent",  # ERROR replies
    "auth_failures",  # sealed frames and OPENs whose tag did not verify (wrong key, forged)
    "replays",  # sealed frames whose counter was seen before (or is too old): refused
    "unsealed",  # frames in clear that a paired board does not take in clear: refused
    "uptime_ms",
)


class Split(IntEnum):
    """EVAL's split field."""

    TRAIN = 0
    TEST = 1
    LIVE = 2  # samples from the board's ts_board_read_sample hook (inference on new data)


class SmashedFlag(IntEnum):
    """SMASHED's flags field (bits)."""

    NO_LABELS = 1  # U-shaped: the frame has no label field at all (labels stay on the board)


class HeadMode(IntEnum):
    """HEAD_IN's and HEAD_OUT's mode field."""

    TRAIN = 0  # finish the forward, the loss, backward through the head; answer its gradient
    EVAL = 1  # finish the forward and count correct predictions; answer the count only


class EvalFlag(IntEnum):
    """EVAL's flags field (bits)."""

    TIMING = 1  # end the SMASHED stream with EVAL_DONE: the device time the forward passes took


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
            ("committed", "I"),
            ("weights_crc", "I"),
            ("challenge", "I"),
            ("reset_cause", "B"),
            ("flags", "B"),
            ("name_len", "B"),
        ),
        "char board[name_len]",
    ),
    MsgType.OPEN: Layout("host->device", (("host_nonce", "8s"), ("tag", "16s"))),
    MsgType.SYNC: Layout("host->device", (("committed", "I"),)),
    MsgType.STATUS: Layout(
        "device->host",
        (
            ("committed", "I"),
            ("weights_crc", "I"),
            ("state_size", "I"),
            ("loaded", "I"),
            ("state", "B"),
            ("pad", "B"),
        ),
    ),
    MsgType.TRAIN_STEP: Layout(
        "host->device",
        (("lr", "f"), ("base_crc", "I"), ("batch", "H"), ("count", "H")),
        "u16 index[count]",
    ),
    MsgType.SMASHED: Layout(
        "device->host",
        (("scale", "f"), ("zero_point", "b"), ("flags", "B"), ("count", "H")),
        "u8 label[count] (absent with NO_LABELS), i8 act[count * cut_size]",
    ),
    MsgType.GRAD: Layout(
        "host->device",
        (("count", "H"), ("pad", "H")),
        "f32 scale[count], i8 grad[count * cut_size]",
    ),
    MsgType.SMASHED_PACKED: Layout(
        "device->host",
        (
            ("scale", "f"),
            ("zero_point", "b"),
            ("flags", "B"),
            ("count", "H"),
            ("wire", "B"),
            ("pad", "B"),
            ("cut_size", "H"),
        ),
        "u8 label[count] (absent with NO_LABELS), then per sample its coded activations",
    ),
    MsgType.GRAD_PACKED: Layout(
        "host->device",
        (("count", "H"), ("wire", "B"), ("pad", "B"), ("cut_size", "H"), ("pad2", "H")),
        "f32 scale[count], then per sample its coded gradient",
    ),
    MsgType.STEP_DONE: Layout(
        "device->host",
        (("weights_crc", "I"), ("range_min", "f"), ("range_max", "f"), ("cycles", "I")),
    ),
    MsgType.COMMIT: Layout("host->device", (("grad_crc", "I"), ("count", "H"), ("pad", "H"))),
    MsgType.HEAD_IN: Layout(
        "host->device",
        (("mode", "B"), ("pad", "B"), ("count", "H")),
        "f32 scale[count], i8 act[count * head_size]",
    ),
    MsgType.HEAD_OUT: Layout(
        "device->host",
        (
            ("mode", "B"),
            ("pad", "B"),
            ("count", "H"),
            ("correct", "H"),
            ("pad2", "H"),
            ("loss_sum", "f"),
        ),
        "TRAIN: f32 scale[count], i8 grad[count * head_size]; EVAL: nothing",
    ),
    MsgType.EVAL: Layout(
        "host->device", (("split", "B"), ("flags", "B"), ("start", "H"), ("count", "H"))
    ),
    MsgType.EVAL_DONE: Layout("device->host", (("count", "H"), ("pad", "H"), ("cycles", "I"))),
    MsgType.GET_WEIGHTS: Layout("host->device", (("offset", "I"), ("length", "H"))),
    MsgType.WEIGHTS: Layout(
        "device->host", (("offset", "I"), ("total", "I"), ("weights_size", "I")), "u8 data[]"
    ),
    MsgType.PUT_WEIGHTS: Layout(
        "host->device",
        (("offset", "I"), ("total", "I"), ("image_crc", "I"), ("step", "I")),
        "u8 data[]",
    ),
    MsgType.STATS_REQ: Layout("host->device", ()),
    MsgType.STATS: Layout("device->host", tuple((name, "I") for name in STATS_COUNTERS)),
    MsgType.ERROR: Layout("device->host", (("code", "H"),), "char message[]"),
}

MODEL_HASH_SIZE = 8
MAX_BOARD_NAME = 255  # HELLO's name_len is a u8

FIXED_SIZE: dict[MsgType, int] = {t: layout.fixed_size for t, layout in LAYOUTS.items()}
HELLO_REQ_FIXED_SIZE = FIXED_SIZE[MsgType.HELLO_REQ]
HELLO_FIXED_SIZE = FIXED_SIZE[MsgType.HELLO]
OPEN_FIXED_SIZE = FIXED_SIZE[MsgType.OPEN]
TRAIN_STEP_FIXED_SIZE = FIXED_SIZE[MsgType.TRAIN_STEP]
SMASHED_FIXED_SIZE = FIXED_SIZE[MsgType.SMASHED]
GRAD_FIXED_SIZE = FIXED_SIZE[MsgType.GRAD]
SMASHED_PACKED_FIXED_SIZE = FIXED_SIZE[MsgType.SMASHED_PACKED]
GRAD_PACKED_FIXED_SIZE = FIXED_SIZE[MsgType.GRAD_PACKED]
STEP_DONE_FIXED_SIZE = FIXED_SIZE[MsgType.STEP_DONE]
COMMIT_FIXED_SIZE = FIXED_SIZE[MsgType.COMMIT]
HEAD_IN_FIXED_SIZE = FIXED_SIZE[MsgType.HEAD_IN]
HEAD_OUT_FIXED_SIZE = FIXED_SIZE[MsgType.HEAD_OUT]
EVAL_FIXED_SIZE = FIXED_SIZE[MsgType.EVAL]
EVAL_DONE_FIXED_SIZE = FIXED_SIZE[MsgType.EVAL_DONE]
GET_WEIGHTS_FIXED_SIZE = FIXED_SIZE[MsgType.GET_WEIGHTS]
WEIGHTS_FIXED_SIZE = FIXED_SIZE[MsgType.WEIGHTS]
PUT_WEIGHTS_FIXED_SIZE = FIXED_SIZE[MsgType.PUT_WEIGHTS]
ERROR_FIXED_SIZE = FIXED_SIZE[MsgType.ERROR]

TRAIN_STEP_MAX_COUNT = (MAX_PAYLOAD - TRAIN_STEP_FIXED_SIZE) // 2
WEIGHTS_MAX_DATA = MAX_PAYLOAD - WEIGHTS_FIXED_SIZE
PUT_WEIGHTS_MAX_DATA = MAX_PAYLOAD - PUT_WEIGHTS_FIXED_SIZE


def smashed_per_frame(cut_size: int) -> int:
    """Samples per SMASHED frame: each carries a u8 label and cut_size int8 activations."""
    return (MAX_PAYLOAD - SMASHED_FIXED_SIZE) // (cut_size + 1)


def grad_per_frame(cut_size: int) -> int:
    """Samples per GRAD frame: each carries an f32 scale and cut_size int8 gradients."""
    return (MAX_PAYLOAD - GRAD_FIXED_SIZE) // (cut_size + 4)


def head_per_frame(head_size: int) -> int:
    """Samples per HEAD_IN (and HEAD_OUT) frame: an f32 scale and head_size int8 values each."""
    return (MAX_PAYLOAD - HEAD_OUT_FIXED_SIZE) // (head_size + 4)


def training_step_payloads(
    batch: int, cut_size: int, head_size: int = 0
) -> dict[MsgType, list[int]]:
    """Payload bytes of each frame one training step of `batch` samples sends, per message:
    TRAIN_STEP chunks, GRAD frames and COMMIT to the board; SMASHED frames and STEP_DONE to the
    host. head_size > 0 (U-shaped, --labels client): SMASHED carries no labels, and HEAD_IN
    frames (to the board) and HEAD_OUT frames (to the host) of head_size values per sample
    make the extra hop. A cut that no frame can carry (0 samples per frame) is counted one
    sample per frame, so that a planner can still compare it."""

    def frames(per_frame: int, fixed: int, per_sample: int) -> list[int]:
        per = max(per_frame, 1)
        return [fixed + min(per, batch - first) * per_sample for first in range(0, batch, per)]

    label = 0 if head_size else 1
    out = {
        MsgType.TRAIN_STEP: frames(TRAIN_STEP_MAX_COUNT, TRAIN_STEP_FIXED_SIZE, 2),
        MsgType.GRAD: frames(grad_per_frame(cut_size), GRAD_FIXED_SIZE, cut_size + 4),
        MsgType.COMMIT: [COMMIT_FIXED_SIZE],
        MsgType.SMASHED: frames(smashed_per_frame(cut_size), SMASHED_FIXED_SIZE, cut_size + label),
        MsgType.STEP_DONE: [STEP_DONE_FIXED_SIZE],
        MsgType.HEAD_IN: [],
        MsgType.HEAD_OUT: [],
    }
    if head_size:
        per = head_per_frame(head_size)
        out[MsgType.HEAD_IN] = frames(per, HEAD_IN_FIXED_SIZE, head_size + 4)
        out[MsgType.HEAD_OUT] = frames(per, HEAD_OUT_FIXED_SIZE, head_size + 4)
    return out


#: Direction of each message of a training step.
TO_BOARD = (MsgType.TRAIN_STEP, MsgType.HEAD_IN, MsgType.GRAD, MsgType.COMMIT)
TO_HOST = (MsgType.SMASHED, MsgType.HEAD_OUT, MsgType.STEP_DONE)
