"""One dataclass per message (docs/protocol.md, Messages); layouts come from spec.LAYOUTS.

pack() raises ValueError for a field the layout cannot carry (a host bug); unpack() raises
ProtocolError, one line, for a payload the protocol does not allow (the board's or the link's
fault). Array fields are read-only numpy arrays.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any, ClassVar, Self

import numpy as np
import numpy.typing as npt

from tinysplit.core.errors import ProtocolError
from tinysplit.core.protocol import wire as wire_codec
from tinysplit.core.protocol.frame import Frame, encode_frame
from tinysplit.core.protocol.spec import (
    LAYOUTS,
    MAX_BOARD_NAME,
    MODEL_HASH_SIZE,
    OPEN_NONCE_SIZE,
    SEAL_TAG_SIZE,
    STATS_COUNTERS,
    ErrorCode,
    EvalFlag,
    HeadMode,
    HelloFlag,
    MsgType,
    SmashedFlag,
)

_FIXED = {t: struct.Struct(layout.format) for t, layout in LAYOUTS.items()}


def _pack(t: MsgType, *values: Any, tail: bytes = b"") -> bytes:
    try:
        return _FIXED[t].pack(*values) + tail
    except (struct.error, OverflowError) as e:
        raise ValueError(f"{t.name}: field out of range: {e}") from None


def _fixed(t: MsgType, payload: bytes, exact: bool = False) -> tuple[Any, ...]:
    """Unpacks the fixed part; with exact, the payload must be nothing but the fixed part."""
    size = _FIXED[t].size
    if len(payload) < size or (exact and len(payload) != size):
        want = f"{size}" if exact else f"at least {size}"
        raise ProtocolError(f"{t.name} payload is {len(payload)} bytes, expected {want}")
    return _FIXED[t].unpack_from(payload)


def _check_pad(t: MsgType, pad: int) -> None:
    if pad != 0:
        raise ProtocolError(f"{t.name} padding field is {pad}, expected 0")


def _text(t: MsgType, what: str, data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ProtocolError(f"{t.name} {what} is not valid UTF-8: {data!r}") from None


def _readonly(a: npt.NDArray[Any]) -> npt.NDArray[Any]:
    a.flags.writeable = False
    return a


def _samples(t: MsgType, n_bytes: int, count: int, per_sample_fixed: int) -> int:
    """cut_size from the bytes left for `count` samples of per_sample_fixed + cut_size bytes."""
    if count == 0:
        raise ProtocolError(f"{t.name} carries no samples (count 0)")
    per_sample, rest = divmod(n_bytes, count)
    if rest or per_sample <= per_sample_fixed:
        raise ProtocolError(
            f"{t.name} has {n_bytes} bytes for {count} samples: not {count} equal samples "
            f"of {per_sample_fixed} + cut_size (>= 1) bytes"
        )
    return per_sample - per_sample_fixed


@dataclass(frozen=True)
class HelloReq:
    TYPE: ClassVar[MsgType] = MsgType.HELLO_REQ

    def pack(self) -> bytes:
        return b""

    @classmethod
    def unpack(cls, payload: bytes) -> Self:
        _fixed(cls.TYPE, payload, exact=True)
        return cls()


@dataclass(frozen=True)
class Hello:
    TYPE: ClassVar[MsgType] = MsgType.HELLO
    proto: int
    max_payload: int
    model_hash: bytes
    n_train: int
    n_test: int
    cut_size: int
    max_batch: int
    boot_count: int
    committed: int  # the board's last committed step id
    weights_crc: int  # CRC-32 of its weight blob now
    reset_cause: int
    board: str
    challenge: int = 0  # paired boards: the board's share of the next OPEN's session key
    flags: int = 0  # HelloFlag bits

    @property
    def paired(self) -> bool:
        """The image holds a pairing key: the board talks only sealed after OPEN."""
        return bool(self.flags & HelloFlag.PAIRED)

    def pack(self) -> bytes:
        if len(self.model_hash) != MODEL_HASH_SIZE:
            raise ValueError(f"HELLO model_hash is {len(self.model_hash)} bytes, expected 8")
        name = self.board.encode("utf-8")
        if len(name) > MAX_BOARD_NAME:
            raise ValueError(f"HELLO board name is {len(name)} bytes, at most {MAX_BOARD_NAME}")
        return _pack(
            self.TYPE,
            self.proto,
            self.max_payload,
            bytes(self.model_hash),
            self.n_train,
            self.n_test,
            self.cut_size,
            self.max_batch,
            self.boot_count,
            self.committed,
            self.weights_crc,
            self.challenge,
            self.reset_cause,
            self.flags,
            len(name),
            tail=name,
        )

    @classmethod
    def unpack(cls, payload: bytes) -> Self:
        (
            proto,
            max_payload,
            model_hash,
            n_train,
            n_test,
            cut_size,
            max_batch,
            boot,
            committed,
            weights_crc,
            challenge,
            reset,
            flags,
            name_len,
        ) = _fixed(cls.TYPE, payload)
        fixed = _FIXED[cls.TYPE].size
        if len(payload) != fixed + name_len:
            raise ProtocolError(
                f"HELLO payload is {len(payload)} bytes, expected {fixed} + name_len {name_len}"
            )
        board = _text(cls.TYPE, "board name", payload[fixed:])
        return cls(
            proto,
            max_payload,
            model_hash,
            n_train,
            n_test,
            cut_size,
            max_batch,
            boot,
            committed,
            weights_crc,
            reset,
            board,
            challenge,
            flags,
        )


@dataclass(frozen=True)
class Open:
    """Starts a sealed session on a paired board: the host's share of the session key and the
    tag that proves it holds the pairing key (core/protocol/secure.py)."""

    TYPE: ClassVar[MsgType] = MsgType.OPEN
    host_nonce: bytes
    tag: bytes

    def pack(self) -> bytes:
        if len(self.host_nonce) != OPEN_NONCE_SIZE or len(self.tag) != SEAL_TAG_SIZE:
            raise ValueError("OPEN takes an 8-byte host nonce and a 16-byte tag")
        return _pack(self.TYPE, bytes(self.host_nonce), bytes(self.tag))

    @classmethod
    def unpack(cls, payload: bytes) -> Self:
        host_nonce, tag = _fixed(cls.TYPE, payload, exact=True)
        return cls(host_nonce, tag)


@dataclass(frozen=True)
class Sync:
    """Drops the board's uncommitted step (if any) and sets its last committed step."""

    TYPE: ClassVar[MsgType] = MsgType.SYNC
    committed: int

    def pack(self) -> bytes:
        return _pack(self.TYPE, self.committed)

    @classmethod
    def unpack(cls, payload: bytes) -> Self:
        return cls(*_fixed(cls.TYPE, payload, exact=True))


@dataclass(frozen=True)
class Status:
    """The board's training state: reply to SYNC and to each PUT_WEIGHTS chunk."""

    TYPE: ClassVar[MsgType] = MsgType.STATUS
    committed: int  # last committed step id
    weights_crc: int  # CRC-32 of the weight blob (STEP_DONE's weights_crc)
    state_size: int  # bytes of the state image (GET_WEIGHTS / PUT_WEIGHTS)
    loaded: int  # bytes of the PUT_WEIGHTS in progress received in order
    state: int  # spec.BoardState

    def pack(self) -> bytes:
        return _pack(
            self.TYPE,
            self.committed,
            self.weights_crc,
            self.state_size,
            self.loaded,
            self.state,
            0,
        )

    @classmethod
    def unpack(cls, payload: bytes) -> Self:
        committed, crc, size, loaded, state, pad = _fixed(cls.TYPE, payload, exact=True)
        _check_pad(cls.TYPE, pad)
        return cls(committed, crc, size, loaded, state)


@dataclass(frozen=True)
class TrainStep:
    """One frame of a step's sample indices: `indices` are positions seq.. of a batch of
    `batch` samples (the header's seq); a batch larger than one frame takes several. base_crc
    is the CRC of the weights the step must start from: a board holding others refuses it."""

    TYPE: ClassVar[MsgType] = MsgType.TRAIN_STEP
    lr: float
    base_crc: int
    batch: int
    indices: tuple[int, ...]

    def pack(self) -> bytes:
        n = len(self.indices)
        try:
            tail = struct.pack(f"<{n}H", *self.indices)
        except struct.error as e:
            raise ValueError(f"TRAIN_STEP index out of range: {e}") from None
        return _pack(self.TYPE, self.lr, self.base_crc, self.batch, n, tail=tail)

    @classmethod
    def unpack(cls, payload: bytes) -> Self:
        lr, base_crc, batch, count = _fixed(cls.TYPE, payload)
        fixed = _FIXED[cls.TYPE].size
        if len(payload) != fixed + 2 * count:
            raise ProtocolError(
                f"TRAIN_STEP payload is {len(payload)} bytes, expected {fixed} + 2 * {count}"
            )
        return cls(lr, base_crc, batch, struct.unpack_from(f"<{count}H", payload, fixed))


def _take_samples(msg: object, labels: bytes | None, acts: npt.ArrayLike) -> None:
    """Checks and stores a SMASHED (or SMASHED_PACKED) message's labels and acts [count, cut]:
    2-D int8, both sizes >= 1, as many labels as rows (None: no labels); acts read-only."""
    a = np.asarray(acts)
    if a.dtype != np.int8 or a.ndim != 2:
        raise ValueError(f"SMASHED acts must be a 2-D int8 array, got {a.dtype} {a.shape}")
    n = a.shape[0] if labels is None else len(labels)
    if a.shape[0] != n or a.shape[0] == 0 or a.shape[1] == 0:
        raise ValueError(f"SMASHED acts {a.shape} must be [len(labels)={n}, cut_size], both >= 1")
    if labels is not None:
        object.__setattr__(msg, "labels", bytes(labels))
    object.__setattr__(msg, "acts", _readonly(np.array(a, order="C")))


@dataclass(frozen=True, eq=False)
class Smashed:
    """Cut-layer activations of `count` samples: acts[i] belongs to labels[i]. labels None:
    a U-shaped board's frame (flag NO_LABELS), which has no label field at all."""

    TYPE: ClassVar[MsgType] = MsgType.SMASHED
    scale: float
    zero_point: int
    labels: bytes | None
    acts: npt.NDArray[np.int8]  # [count, cut_size]

    def __post_init__(self) -> None:
        _take_samples(self, self.labels, self.acts)

    @property
    def count(self) -> int:
        return int(self.acts.shape[0])

    @property
    def cut_size(self) -> int:
        return int(self.acts.shape[1])

    def pack(self) -> bytes:
        if self.labels is None:
            flags, tail = int(SmashedFlag.NO_LABELS), self.acts.tobytes()
        else:
            flags, tail = 0, self.labels + self.acts.tobytes()
        return _pack(self.TYPE, self.scale, self.zero_point, flags, self.count, tail=tail)

    @classmethod
    def unpack(cls, payload: bytes) -> Self:
        scale, zero_point, flags, count = _fixed(cls.TYPE, payload)
        if flags & ~int(SmashedFlag.NO_LABELS):
            raise ProtocolError(f"SMASHED flags 0x{flags:02x} has unknown bits")
        fixed = _FIXED[cls.TYPE].size
        if flags & SmashedFlag.NO_LABELS:
            cut = _samples(cls.TYPE, len(payload) - fixed, count, 0)
            acts = np.frombuffer(payload, np.int8, count * cut, fixed).reshape(count, cut)
            return cls(scale, zero_point, None, acts)
        cut = _samples(cls.TYPE, len(payload) - fixed, count, 1)
        labels = payload[fixed : fixed + count]
        acts = np.frombuffer(payload, np.int8, count * cut, fixed + count).reshape(count, cut)
        return cls(scale, zero_point, labels, acts)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Smashed):
            return NotImplemented
        return (self.scale, self.zero_point, self.labels) == (
            other.scale,
            other.zero_point,
            other.labels,
        ) and np.array_equal(self.acts, other.acts)

    __hash__ = None  # type: ignore[assignment]


@dataclass(frozen=True, eq=False)
class PackedSmashed:
    """SMASHED of an export with --wire other than int8: the same samples, coded (wire.py).
    acts holds what the codes stand for (wire.on_the_wire of the board's activations)."""

    TYPE: ClassVar[MsgType] = MsgType.SMASHED_PACKED
    scale: float
    zero_point: int
    labels: bytes | None
    acts: npt.NDArray[np.int8]  # [count, cut_size]
    wire: int  # WireBit bits, not 0

    def __post_init__(self) -> None:
        _take_samples(self, self.labels, self.acts)
        if not wire_codec.is_coded(self.wire):
            raise ValueError(f"SMASHED_PACKED wire bits 0x{self.wire:02x} are not a coded format")
        if not np.array_equal(
            wire_codec.on_the_wire(self.acts, self.zero_point, self.wire), self.acts
        ):
            raise ValueError("SMASHED_PACKED acts are not values the format can carry")

    @property
    def count(self) -> int:
        return int(self.acts.shape[0])

    @property
    def cut_size(self) -> int:
        return int(self.acts.shape[1])

    def pack(self) -> bytes:
        flags = int(SmashedFlag.NO_LABELS) if self.labels is None else 0
        body = wire_codec.pack_acts(self.acts, self.zero_point, self.wire)
        return _pack(
            self.TYPE,
            self.scale,
            self.zero_point,
            flags,
            self.count,
            self.wire,
            0,
            self.cut_size,
            tail=(self.labels or b"") + body,
        )

    @classmethod
    def unpack(cls, payload: bytes) -> Self:
        scale, zero_point, flags, count, wire, pad, cut = _fixed(cls.TYPE, payload)
        _check_pad(cls.TYPE, pad)
        if flags & ~int(SmashedFlag.NO_LABELS):
            raise ProtocolError(f"SMASHED_PACKED flags 0x{flags:02x} has unknown bits")
        if not wire_codec.is_coded(wire):
            raise ProtocolError(f"SMASHED_PACKED wire bits 0x{wire:02x} name no coded format")
        if count == 0 or cut == 0:
            raise ProtocolError(f"SMASHED_PACKED carries {count} samples of {cut} values")
        if wire & wire_codec.ACTS4 and zero_point > 127 - 15:
            raise ProtocolError(f"SMASHED_PACKED zero point {zero_point} leaves no 4-bit levels")
        pos = _FIXED[cls.TYPE].size
        labels = None
        if not flags & SmashedFlag.NO_LABELS:
            labels = payload[pos : pos + count]
            if len(labels) != count:
                raise ProtocolError(f"SMASHED_PACKED is cut short in its {count} labels")
            pos += count
        acts = wire_codec.unpack_acts(payload[pos:], count, cut, zero_point, wire)
        return cls(scale, zero_point, labels, acts, wire)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PackedSmashed):
            return NotImplemented
        return (self.scale, self.zero_point, self.labels, self.wire) == (
            other.scale,
            other.zero_point,
            other.labels,
            other.wire,
        ) and np.array_equal(self.acts, other.acts)

    __hash__ = None  # type: ignore[assignment]


def _scaled_rows(
    t: MsgType, scales: npt.ArrayLike, values: npt.ArrayLike
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int8]]:
    """(scales [n] float32, values [n, size] int8), both read-only, n >= 1 and size >= 1."""
    sc, v = np.asarray(scales), np.asarray(values)
    if sc.dtype != np.float32 or sc.ndim != 1:
        raise ValueError(f"{t.name} scales must be 1-D float32, got {sc.dtype} {sc.shape}")
    if v.dtype != np.int8 or v.ndim != 2:
        raise ValueError(f"{t.name} values must be 2-D int8, got {v.dtype} {v.shape}")
    if v.shape[0] != sc.shape[0] or v.shape[0] == 0 or v.shape[1] == 0:
        raise ValueError(
            f"{t.name} values {v.shape} must be [len(scales)={sc.shape[0]}, size], both >= 1"
        )
    return _readonly(np.array(sc, order="C")), _readonly(np.array(v, order="C"))


def _unpack_rows(
    t: MsgType, payload: bytes, fixed: int, count: int
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int8]]:
    size = _samples(t, len(payload) - fixed, count, 4)
    scales = np.frombuffer(payload, "<f4", count, fixed).astype(np.float32)
    values = np.frombuffer(payload, np.int8, count * size, fixed + 4 * count)
    return scales, values.reshape(count, size)


@dataclass(frozen=True, eq=False)
class HeadIn:
    """U-shaped: the server segment's last activations for `count` samples, int8 per sample
    with its own scale (real[i] = scales[i] * acts[i], zero point 0), for the board's head."""

    TYPE: ClassVar[MsgType] = MsgType.HEAD_IN
    mode: int  # HeadMode
    scales: npt.NDArray[np.float32]  # [count]
    acts: npt.NDArray[np.int8]  # [count, head_size]

    def __post_init__(self) -> None:
        if self.mode not in tuple(HeadMode):
            raise ValueError(f"HEAD_IN mode {self.mode} is not a HeadMode")
        sc, v = _scaled_rows(self.TYPE, self.scales, self.acts)
        object.__setattr__(self, "scales", sc)
        object.__setattr__(self, "acts", v)

    @property
    def count(self) -> int:
        return int(self.scales.shape[0])

    def pack(self) -> bytes:
        tail = self.scales.astype("<f4").tobytes() + self.acts.tobytes()
        return _pack(self.TYPE, self.mode, 0, self.count, tail=tail)

    @classmethod
    def unpack(cls, payload: bytes) -> Self:
        mode, pad, count = _fixed(cls.TYPE, payload)
        _check_pad(cls.TYPE, pad)
        if mode not in tuple(HeadMode):
            raise ProtocolError(f"HEAD_IN mode {mode} is unknown")
        return cls(mode, *_unpack_rows(cls.TYPE, payload, _FIXED[cls.TYPE].size, count))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, HeadIn):
            return NotImplemented
        return (
            self.mode == other.mode
            and np.array_equal(self.scales, other.scales)
            and np.array_equal(self.acts, other.acts)
        )

    __hash__ = None  # type: ignore[assignment]


@dataclass(frozen=True, eq=False)
class HeadOut:
    """U-shaped: the board's head on `count` samples of a HEAD_IN. TRAIN: the gradient of the
    mean loss with respect to HEAD_IN's activations (int8 per sample with its scale), the
    frame's summed loss and correct predictions; EVAL: the correct predictions only. Neither
    carries a label or a logit."""

    TYPE: ClassVar[MsgType] = MsgType.HEAD_OUT
    mode: int  # HeadMode
    count: int
    correct: int
    loss_sum: float
    scales: npt.NDArray[np.float32] | None = None  # TRAIN: [count]
    grads: npt.NDArray[np.int8] | None = None  # TRAIN: [count, head_size]

    def __post_init__(self) -> None:
        if self.mode not in tuple(HeadMode):
            raise ValueError(f"HEAD_OUT mode {self.mode} is not a HeadMode")
        if (self.mode == HeadMode.TRAIN) != (self.grads is not None and self.scales is not None):
            raise ValueError("HEAD_OUT carries gradients in TRAIN mode, and only then")
        if self.scales is not None and self.grads is not None:
            sc, g = _scaled_rows(self.TYPE, self.scales, self.grads)
            if sc.shape[0] != self.count:
                raise ValueError(f"HEAD_OUT count {self.count} != {sc.shape[0]} gradient rows")
            object.__setattr__(self, "scales", sc)
            object.__setattr__(self, "grads", g)

    def pack(self) -> bytes:
        tail = b""
        if self.scales is not None and self.grads is not None:
            tail = self.scales.astype("<f4").tobytes() + self.grads.tobytes()
        return _pack(self.TYPE, self.mode, 0, self.count, self.correct, 0, self.loss_sum, tail=tail)

    @classmethod
    def unpack(cls, payload: bytes) -> Self:
        mode, pad, count, correct, pad2, loss_sum = _fixed(cls.TYPE, payload)
        _check_pad(cls.TYPE, pad | pad2)
        if mode not in tuple(HeadMode):
            raise ProtocolError(f"HEAD_OUT mode {mode} is unknown")
        if count == 0 or correct > count:
            raise ProtocolError(f"HEAD_OUT says {correct} correct of {count} samples")
        fixed = _FIXED[cls.TYPE].size
        if mode == HeadMode.EVAL:
            if len(payload) != fixed:
                raise ProtocolError(f"HEAD_OUT (EVAL) payload is {len(payload)} bytes, not {fixed}")
            return cls(mode, count, correct, loss_sum)
        scales, grads = _unpack_rows(cls.TYPE, payload, fixed, count)
        return cls(mode, count, correct, loss_sum, scales, grads)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, HeadOut):
            return NotImplemented
        same_rows = (self.grads is None) == (other.grads is None) and (
            self.grads is None
            or (
                np.array_equal(self.scales, other.scales)  # type: ignore[arg-type]
                and np.array_equal(self.grads, other.grads)  # type: ignore[arg-type]
            )
        )
        return (self.mode, self.count, self.correct, self.loss_sum) == (
            other.mode,
            other.count,
            other.correct,
            other.loss_sum,
        ) and same_rows

    __hash__ = None  # type: ignore[assignment]


@dataclass(frozen=True, eq=False)
class Grad:
    """Int8 gradients of the cut layer for `count` samples: real[i] = scales[i] * grads[i]."""

    TYPE: ClassVar[MsgType] = MsgType.GRAD
    scales: npt.NDArray[np.float32]  # [count]
    grads: npt.NDArray[np.int8]  # [count, cut_size]

    def __post_init__(self) -> None:
        scales = np.asarray(self.scales)
        grads = np.asarray(self.grads)
        if scales.dtype != np.float32 or scales.ndim != 1:
            raise ValueError(f"GRAD scales must be 1-D float32, got {scales.dtype} {scales.shape}")
        if grads.dtype != np.int8 or grads.ndim != 2:
            raise ValueError(f"GRAD grads must be 2-D int8, got {grads.dtype} {grads.shape}")
        if grads.shape[0] != scales.shape[0] or grads.shape[0] == 0 or grads.shape[1] == 0:
            raise ValueError(
                f"GRAD grads {grads.shape} must be [len(scales)={scales.shape[0]}, cut_size], "
                "both >= 1"
            )
        object.__setattr__(self, "scales", _readonly(np.array(scales, order="C")))
        object.__setattr__(self, "grads", _readonly(np.array(grads, order="C")))

    @property
    def count(self) -> int:
        return int(self.scales.shape[0])

    @property
    def cut_size(self) -> int:
        return int(self.grads.shape[1])

    def pack(self) -> bytes:
        tail = self.scales.astype("<f4").tobytes() + self.grads.tobytes()
        return _pack(self.TYPE, self.count, 0, tail=tail)

    @classmethod
    def unpack(cls, payload: bytes) -> Self:
        count, pad = _fixed(cls.TYPE, payload)
        _check_pad(cls.TYPE, pad)
        fixed = _FIXED[cls.TYPE].size
        cut = _samples(cls.TYPE, len(payload) - fixed, count, 4)
        scales = np.frombuffer(payload, "<f4", count, fixed).astype(np.float32)
        grads = np.frombuffer(payload, np.int8, count * cut, fixed + 4 * count)
        return cls(scales, grads.reshape(count, cut))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Grad):
            return NotImplemented
        return np.array_equal(self.scales, other.scales) and np.array_equal(self.grads, other.grads)

    __hash__ = None  # type: ignore[assignment]


@dataclass(frozen=True, eq=False)
class PackedGrad:
    """GRAD of an export with --wire other than int8: per sample a scale and its coded gradient.
    body is opaque here: a SPARSE body holds only the positions its SMASHED_PACKED named, so it
    reads back only beside those activations (`grads`)."""

    TYPE: ClassVar[MsgType] = MsgType.GRAD_PACKED
    scales: npt.NDArray[np.float32]  # [count]
    wire: int
    cut_size: int
    body: bytes

    @classmethod
    def of(
        cls,
        scales: npt.NDArray[np.float32],
        grads: npt.NDArray[np.int8],
        wire: int,
        sent: npt.NDArray[np.int8] | None,
        zero_point: int,
    ) -> Self:
        """Codes grads [n, cut]; SPARSE needs `sent`, the activations [n, cut] the host received
        for those samples (the gradient elsewhere must be 0: it would not reach the board)."""
        mask = wire_codec.sent_mask(sent, zero_point, wire) if sent is not None else None
        if wire & wire_codec.SPARSE:
            if mask is None:
                raise ValueError("a SPARSE GRAD_PACKED needs the activations it answers")
            if np.any(np.asarray(grads)[~mask]):
                raise ValueError("a SPARSE gradient is not 0 where its activation was")
        body = wire_codec.pack_grads(grads, mask if wire & wire_codec.SPARSE else None, wire)
        return cls(np.asarray(scales, dtype=np.float32), wire, int(np.shape(grads)[1]), body)

    def __post_init__(self) -> None:
        scales = np.asarray(self.scales)
        if scales.dtype != np.float32 or scales.ndim != 1 or scales.size == 0:
            raise ValueError(f"GRAD_PACKED scales must be 1-D float32, got {scales.shape}")
        if not wire_codec.is_coded(self.wire):
            raise ValueError(f"GRAD_PACKED wire bits 0x{self.wire:02x} are not a coded format")
        object.__setattr__(self, "scales", _readonly(np.array(scales, order="C")))
        object.__setattr__(self, "body", bytes(self.body))

    @property
    def count(self) -> int:
        return int(self.scales.shape[0])

    def grads(self, sent: npt.NDArray[np.int8] | None, zero_point: int) -> npt.NDArray[np.int8]:
        """The int8 gradients [count, cut_size] (SPARSE: beside the activations sent)."""
        mask = None
        if self.wire & wire_codec.SPARSE:
            if sent is None:
                raise ValueError("a SPARSE GRAD_PACKED reads back only beside its activations")
            mask = wire_codec.sent_mask(sent, zero_point, self.wire)
        return wire_codec.unpack_grads(self.body, self.count, self.cut_size, mask, self.wire)

    def pack(self) -> bytes:
        tail = self.scales.astype("<f4").tobytes() + self.body
        return _pack(self.TYPE, self.count, self.wire, 0, self.cut_size, 0, tail=tail)

    @classmethod
    def unpack(cls, payload: bytes) -> Self:
        count, wire, pad, cut, pad2 = _fixed(cls.TYPE, payload)
        _check_pad(cls.TYPE, pad)
        _check_pad(cls.TYPE, pad2)
        if not wire_codec.is_coded(wire):
            raise ProtocolError(f"GRAD_PACKED wire bits 0x{wire:02x} name no coded format")
        if count == 0 or cut == 0:
            raise ProtocolError(f"GRAD_PACKED carries {count} samples of {cut} values")
        fixed = _FIXED[cls.TYPE].size
        body = payload[fixed + 4 * count :]
        if len(payload) < fixed + 4 * count or len(body) > count * wire_codec.worst_grad_sample(
            cut, wire
        ):
            raise ProtocolError(
                f"GRAD_PACKED is {len(payload)} bytes: not {count} scales and coded samples"
            )
        if not wire & wire_codec.SPARSE and len(body) != count * wire_codec.worst_grad_sample(
            cut, wire
        ):
            raise ProtocolError(f"GRAD_PACKED body is {len(body)} bytes for {count} samples")
        scales = np.frombuffer(payload, "<f4", count, fixed).astype(np.float32)
        return cls(scales, wire, cut, body)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PackedGrad):
            return NotImplemented
        return (self.wire, self.cut_size, self.body) == (
            other.wire,
            other.cut_size,
            other.body,
        ) and np.array_equal(self.scales, other.scales)

    __hash__ = None  # type: ignore[assignment]


@dataclass(frozen=True)
class StepDone:
    TYPE: ClassVar[MsgType] = MsgType.STEP_DONE
    weights_crc: int
    range_min: float
    range_max: float
    cycles: int

    def pack(self) -> bytes:
        return _pack(self.TYPE, self.weights_crc, self.range_min, self.range_max, self.cycles)

    @classmethod
    def unpack(cls, payload: bytes) -> Self:
        return cls(*_fixed(cls.TYPE, payload, exact=True))


@dataclass(frozen=True)
class Commit:
    """Applies the staged step: grad_crc is the CRC-32 of the step's GRAD payloads, in order."""

    TYPE: ClassVar[MsgType] = MsgType.COMMIT
    grad_crc: int
    count: int

    def pack(self) -> bytes:
        return _pack(self.TYPE, self.grad_crc, self.count, 0)

    @classmethod
    def unpack(cls, payload: bytes) -> Self:
        grad_crc, count, pad = _fixed(cls.TYPE, payload, exact=True)
        _check_pad(cls.TYPE, pad)
        return cls(grad_crc, count)


@dataclass(frozen=True)
class Eval:
    TYPE: ClassVar[MsgType] = MsgType.EVAL
    split: int  # spec.Split
    start: int
    count: int
    flags: int = 0  # spec.EvalFlag bits

    def pack(self) -> bytes:
        return _pack(self.TYPE, self.split, self.flags, self.start, self.count)

    @classmethod
    def unpack(cls, payload: bytes) -> Self:
        split, flags, start, count = _fixed(cls.TYPE, payload, exact=True)
        if flags & ~int(EvalFlag.TIMING):
            raise ProtocolError(f"EVAL flags 0x{flags:02x} has bits this protocol does not define")
        return cls(split, start, count, flags)


@dataclass(frozen=True)
class EvalDone:
    """Ends an EVAL with the TIMING flag: `count` forward passes took `cycles` device cycles
    (the board's ts_board_cycles; its profile's clock_hz turns them into seconds)."""

    TYPE: ClassVar[MsgType] = MsgType.EVAL_DONE
    count: int
    cycles: int

    def pack(self) -> bytes:
        return _pack(self.TYPE, self.count, 0, self.cycles)

    @classmethod
    def unpack(cls, payload: bytes) -> Self:
        count, pad, cycles = _fixed(cls.TYPE, payload, exact=True)
        _check_pad(cls.TYPE, pad)
        return cls(count, cycles)


@dataclass(frozen=True)
class GetWeights:
    TYPE: ClassVar[MsgType] = MsgType.GET_WEIGHTS
    offset: int
    length: int

    def pack(self) -> bytes:
        return _pack(self.TYPE, self.offset, self.length)

    @classmethod
    def unpack(cls, payload: bytes) -> Self:
        return cls(*_fixed(cls.TYPE, payload, exact=True))


@dataclass(frozen=True)
class Weights:
    """A chunk of the state image: bytes [offset, offset + len(data)) of `total`; the weight
    blob is its first `weights_size` bytes."""

    TYPE: ClassVar[MsgType] = MsgType.WEIGHTS
    offset: int
    total: int
    weights_size: int
    data: bytes

    def pack(self) -> bytes:
        return _pack(self.TYPE, self.offset, self.total, self.weights_size, tail=bytes(self.data))

    @classmethod
    def unpack(cls, payload: bytes) -> Self:
        offset, total, weights_size = _fixed(cls.TYPE, payload)
        return cls(offset, total, weights_size, payload[_FIXED[cls.TYPE].size :])


@dataclass(frozen=True)
class PutWeights:
    """A chunk of a state image pushed to the board (in order, from offset 0). After the last
    chunk the board checks image_crc, applies the image and takes `step` as its last
    committed step."""

    TYPE: ClassVar[MsgType] = MsgType.PUT_WEIGHTS
    offset: int
    total: int
    image_crc: int
    step: int
    data: bytes

    def pack(self) -> bytes:
        return _pack(
            self.TYPE,
            self.offset,
            self.total,
            self.image_crc,
            self.step,
            tail=bytes(self.data),
        )

    @classmethod
    def unpack(cls, payload: bytes) -> Self:
        offset, total, crc, step = _fixed(cls.TYPE, payload)
        return cls(offset, total, crc, step, payload[_FIXED[cls.TYPE].size :])


@dataclass(frozen=True)
class StatsReq:
    TYPE: ClassVar[MsgType] = MsgType.STATS_REQ

    def pack(self) -> bytes:
        return b""

    @classmethod
    def unpack(cls, payload: bytes) -> Self:
        _fixed(cls.TYPE, payload, exact=True)
        return cls()


@dataclass(frozen=True)
class Stats:
    """The board's link and request counters (spec.STATS_COUNTERS)."""

    TYPE: ClassVar[MsgType] = MsgType.STATS
    counters: tuple[int, ...]

    def __post_init__(self) -> None:
        if len(self.counters) != len(STATS_COUNTERS):
            raise ValueError(f"STATS has {len(STATS_COUNTERS)} counters, got {len(self.counters)}")

    def as_dict(self) -> dict[str, int]:
        return dict(zip(STATS_COUNTERS, self.counters, strict=True))

    def pack(self) -> bytes:
        return _pack(self.TYPE, *self.counters)

    @classmethod
    def unpack(cls, payload: bytes) -> Self:
        return cls(tuple(_fixed(cls.TYPE, payload, exact=True)))


@dataclass(frozen=True)
class ErrorMsg:
    TYPE: ClassVar[MsgType] = MsgType.ERROR
    code: int  # spec.ErrorCode, or a code this host does not know
    message: str

    def pack(self) -> bytes:
        return _pack(self.TYPE, self.code, tail=self.message.encode("utf-8"))

    @classmethod
    def unpack(cls, payload: bytes) -> Self:
        (code,) = _fixed(cls.TYPE, payload)
        return cls(code, _text(cls.TYPE, "message", payload[_FIXED[cls.TYPE].size :]))

    def describe(self) -> str:
        """One line for the user, e.g. 'BAD_INDEX (2): EVAL range out of bounds'."""
        try:
            name = ErrorCode(self.code).name
        except ValueError:
            name = "unknown error code"
        return f"{name} ({self.code}): {self.message}"


Message = (
    HelloReq
    | Hello
    | Open
    | Sync
    | Status
    | TrainStep
    | Smashed
    | Grad
    | PackedSmashed
    | PackedGrad
    | StepDone
    | Commit
    | HeadIn
    | HeadOut
    | Eval
    | EvalDone
    | GetWeights
    | Weights
    | PutWeights
    | StatsReq
    | Stats
    | ErrorMsg
)

MESSAGE_CLASSES: dict[int, type[Message]] = {
    cls.TYPE: cls
    for cls in (
        HelloReq,
        Hello,
        Open,
        Sync,
        Status,
        TrainStep,
        Smashed,
        Grad,
        PackedSmashed,
        PackedGrad,
        StepDone,
        Commit,
        HeadIn,
        HeadOut,
        Eval,
        EvalDone,
        GetWeights,
        Weights,
        PutWeights,
        StatsReq,
        Stats,
        ErrorMsg,
    )
}


def decode_message(frame: Frame) -> Message:
    """The message a frame carries; ProtocolError on an unknown type or a malformed payload."""
    cls = MESSAGE_CLASSES.get(frame.header.type)
    if cls is None:
        raise ProtocolError(f"unknown message type 0x{frame.header.type:02x}")
    return cls.unpack(frame.payload)


def encode_message(msg: Message, session: int, step: int, seq: int = 0) -> bytes:
    """encode_frame(msg.TYPE, session, step, seq, msg.pack())."""
    wire: bytes = encode_frame(msg.TYPE, session, step, seq, msg.pack())
    return wire
