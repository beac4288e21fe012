"""Wire formats: how SMASHED_PACKED and GRAD_PACKED code a sample (docs/protocol.md, "Wire
formats"). The firmware's twin is firmware/protocol/ts_pack.c; the two agree bit for bit.

A format is a set of WireBit bits (0 is int8: plain SMASHED and GRAD, nothing coded):

- ACTS4: an activation q (int8, zero point zp, at or above zp: the cut is a ReLU's) is sent as
  one of 16 levels u = round(15 (q - zp) / r), r = 127 - zp, at least 1 for any q above zp
  (level 0 is the zero point alone), and read back as zp + round(u r / 15) — the value the
  server segment trains on.
- GRADS4: a gradient is sent as a signed 4-bit value in [-7, 7] (its scale is max |g| / 7 over
  the positions sent, host side).
- In 4 bits, two values a byte, the first in the low nibble; each sample starts on a byte.
- SPARSE: an activation sample is a bitmap (bit k of byte k // 8, least significant first) of
  the positions whose value is not the zero point, then only those values. A
  gradient sample carries only the positions its activation sample's bitmap named: the board
  knows them from the activations it kept, and its ReLU sends no gradient through the others.

Decoding refuses what no encoder produces (set padding bits, a named position holding the
zero point, a length that is not the sample's), with ProtocolError, one line.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from tinysplit.core.errors import ProtocolError
from tinysplit.core.protocol.spec import WireBit

I8 = npt.NDArray[np.int8]
Mask = npt.NDArray[np.bool_]

SPARSE = int(WireBit.SPARSE)
ACTS4 = int(WireBit.ACTS4)
GRADS4 = int(WireBit.GRADS4)
ALL_BITS = SPARSE | ACTS4 | GRADS4

#: The names `--wire` takes, and their bits.
NAMES: dict[str, int] = {
    "int8": 0,
    "sparse": SPARSE,
    "int4": ACTS4 | GRADS4,
    "sparse-int4": SPARSE | ACTS4 | GRADS4,
    "sparse-a4": SPARSE | ACTS4,  # 4-bit activations, int8 gradients
    "sparse-g4": SPARSE | GRADS4,  # int8 activations, 4-bit gradients
}


def is_coded(bits: int) -> bool:
    """Whether bits name a coded format (SMASHED_PACKED / GRAD_PACKED): some, and only known."""
    return bool(bits) and not bits & ~ALL_BITS


def wire_bits(name: str) -> int:
    """The bits of a wire format name; ValueError names the choices."""
    try:
        return NAMES[name]
    except KeyError:
        raise ValueError(
            f"unknown wire format {name!r}; choose one of {', '.join(NAMES)}"
        ) from None


def wire_name(bits: int) -> str:
    for name, b in NAMES.items():
        if b == bits:
            return name
    raise ValueError(f"wire bits 0x{bits:02x} name no format")


def _levels(zp: int) -> int:
    r = 127 - int(zp)
    if r < 15:
        raise ValueError(f"zero point {zp} leaves {r} steps: 4-bit activations need 15")
    return r


def act_codes(q: npt.ArrayLike, zp: int) -> npt.NDArray[np.int64]:
    """ACTS4: the 4-bit level (0..15) of each activation (values below zp count as zp); level
    0 is the zero point alone, so that a ReLU's zeros stay exactly its zeros on the wire."""
    r = _levels(zp)
    d = np.maximum(np.asarray(q, dtype=np.int64) - int(zp), 0)
    return np.where(d > 0, np.maximum((d * 15 + r // 2) // r, 1), 0)


def act_values(u: npt.ArrayLike, zp: int) -> I8:
    """ACTS4: the int8 activation a level stands for."""
    r = _levels(zp)
    return (int(zp) + (np.asarray(u, dtype=np.int64) * r + 7) // 15).astype(np.int8)


def on_the_wire(q: npt.ArrayLike, zp: int, wire: int) -> I8:
    """The activations as the host receives them: ACTS4 rounds to its 16 levels; the rest is
    exact. What the server segment trains on, and what a golden client must hand it."""
    qa = np.asarray(q, dtype=np.int8)
    if not wire & ACTS4:
        return qa.copy()
    return act_values(act_codes(qa, zp), zp)


def sent_mask(acts: npt.ArrayLike, zp: int, wire: int) -> Mask | None:
    """SPARSE: the positions whose gradient GRAD_PACKED carries (activation on the wire not the
    zero point); None for a dense format (every position)."""
    if not wire & SPARSE:
        return None
    mask: Mask = np.asarray(acts, dtype=np.int8) != np.int8(zp)
    return mask


def _nibbles(values: npt.NDArray[np.int64]) -> bytes:
    v = (values & 0xF).astype(np.uint8)
    if v.size % 2:
        v = np.append(v, np.uint8(0))
    return (v[0::2] | (v[1::2] << 4)).tobytes()


def _unnibble(data: bytes, n: int, what: str) -> npt.NDArray[np.int64]:
    b = np.frombuffer(data, dtype=np.uint8)
    v = np.empty(2 * b.size, dtype=np.int64)
    v[0::2], v[1::2] = b & 0xF, b >> 4
    if np.any(v[n:]):
        raise ProtocolError(f"{what}: the padding nibble is not 0")
    return v[:n]


def _nibble_bytes(values: float) -> float:
    """Bytes of `values` 4-bit values: a padding nibble after an odd count (an expected,
    fractional count: half a byte each)."""
    return (int(values) + 1) // 2 if float(values).is_integer() else values / 2


def _acts_bytes(n_sent: float, cut: int, wire: int) -> float:
    values = n_sent if wire & SPARSE else cut
    body = _nibble_bytes(values) if wire & ACTS4 else values
    return ((cut + 7) // 8 if wire & SPARSE else 0) + body


def _grad_bytes(n_sent: float, cut: int, wire: int) -> float:
    values = n_sent if wire & SPARSE else cut
    return _nibble_bytes(values) if wire & GRADS4 else values


def acts_sample_size(n_sent: int, cut: int, wire: int) -> int:
    """Bytes of one coded activation sample holding n_sent values (all of them when dense)."""
    return int(_acts_bytes(n_sent, cut, wire))


def grad_sample_size(n_sent: int, cut: int, wire: int) -> int:
    """Bytes of one coded gradient sample holding n_sent values (all of them when dense)."""
    return int(_grad_bytes(n_sent, cut, wire))


def worst_acts_sample(cut: int, wire: int) -> int:
    return acts_sample_size(cut, cut, wire)


def worst_grad_sample(cut: int, wire: int) -> int:
    return grad_sample_size(cut, cut, wire)


def pack_acts(acts: npt.ArrayLike, zp: int, wire: int) -> bytes:
    """Codes samples [n, cut] of int8 activations (raw from the cut layer: ACTS4 rounds)."""
    a = np.asarray(acts, dtype=np.int8)
    out = []
    for row in a:
        codes = act_codes(row, zp) if wire & ACTS4 else None
        if wire & SPARSE:
            keep = (codes != 0) if codes is not None else (row != np.int8(zp))
            out.append(np.packbits(keep, bitorder="little").tobytes())
            if codes is not None:
                out.append(_nibbles(codes[keep]))
            else:
                out.append(row[keep].tobytes())
        else:
            assert codes is not None, "a dense int8 wire is plain SMASHED"
            out.append(_nibbles(codes))
    return b"".join(out)


def unpack_acts(body: bytes, count: int, cut: int, zp: int, wire: int) -> I8:
    """The activations [count, cut] a coded body stands for (on_the_wire's values)."""
    what = "SMASHED_PACKED"
    out = np.full((count, cut), np.int8(zp), dtype=np.int8)
    pos = 0
    bitmap_size = (cut + 7) // 8
    for i in range(count):
        if wire & SPARSE:
            bm = body[pos : pos + bitmap_size]
            if len(bm) != bitmap_size:
                raise ProtocolError(f"{what}: sample {i} is cut short in its bitmap")
            bits = np.unpackbits(np.frombuffer(bm, np.uint8), bitorder="little")
            if np.any(bits[cut:]):
                raise ProtocolError(f"{what}: sample {i}'s bitmap sets a bit past the cut")
            keep = bits[:cut].astype(bool)
            pos += bitmap_size
        else:
            keep = np.ones(cut, dtype=bool)
        k = int(keep.sum())
        size = acts_sample_size(k, cut, wire) - (bitmap_size if wire & SPARSE else 0)
        data = body[pos : pos + size]
        if len(data) != size:
            raise ProtocolError(f"{what}: sample {i} is cut short ({len(data)} of {size} bytes)")
        pos += size
        if wire & ACTS4:
            codes = _unnibble(data, k, what)
            if wire & SPARSE and np.any(codes == 0):
                raise ProtocolError(f"{what}: sample {i}'s bitmap names a zero activation")
            out[i, keep] = act_values(codes, zp)
        else:
            v = np.frombuffer(data, np.int8)
            if np.any(v == np.int8(zp)):
                raise ProtocolError(f"{what}: sample {i}'s bitmap names a zero activation")
            out[i, keep] = v
    if pos != len(body):
        raise ProtocolError(f"{what}: {len(body) - pos} bytes after the last sample")
    return out


def pack_grads(grads: npt.ArrayLike, mask: Mask | None, wire: int) -> bytes:
    """Codes gradients [n, cut] (GRADS4: each in [-8, 7]); SPARSE: only where mask [n, cut]."""
    g = np.asarray(grads, dtype=np.int8)
    out = []
    for i, row in enumerate(g):
        v = row[mask[i]] if mask is not None else row
        if wire & GRADS4:
            if v.size and (v.min() < -8 or v.max() > 7):
                raise ValueError("a 4-bit gradient holds values in [-8, 7]")
            out.append(_nibbles(v.astype(np.int64)))
        else:
            out.append(v.tobytes())
    return b"".join(out)


def unpack_grads(body: bytes, count: int, cut: int, mask: Mask | None, wire: int) -> I8:
    """The int8 gradients [count, cut] a coded body stands for (0 where mask is False)."""
    what = "GRAD_PACKED"
    out = np.zeros((count, cut), dtype=np.int8)
    pos = 0
    for i in range(count):
        keep = mask[i] if mask is not None else np.ones(cut, dtype=bool)
        k = int(keep.sum())
        size = grad_sample_size(k, cut, wire)
        data = body[pos : pos + size]
        if len(data) != size:
            raise ProtocolError(f"{what}: sample {i} is cut short ({len(data)} of {size} bytes)")
        pos += size
        if wire & GRADS4:
            u = _unnibble(data, k, what)
            out[i, keep] = np.where(u >= 8, u - 16, u).astype(np.int8)
        else:
            out[i, keep] = np.frombuffer(data, np.int8)
    if pos != len(body):
        raise ProtocolError(f"{what}: {len(body) - pos} bytes after the last sample")
    return out


def smashed_per_frame(cut: int, wire: int) -> int:
    """Samples per SMASHED_PACKED frame: as many as fit at their worst size, and no more than a
    SMASHED frame holds (the board assembles them in the same buffer, ts_client_per_frame)."""
    from tinysplit.core.protocol import spec

    packed = (spec.MAX_PAYLOAD - spec.SMASHED_PACKED_FIXED_SIZE) // (
        worst_acts_sample(cut, wire) + 1
    )
    return min(packed, spec.smashed_per_frame(cut))


def grad_per_frame(cut: int, wire: int) -> int:
    """Samples per GRAD_PACKED frame (TS_GRAD_PACKED_PER_FRAME): an f32 scale + the worst."""
    from tinysplit.core.protocol.spec import GRAD_PACKED_FIXED_SIZE, MAX_PAYLOAD

    return (MAX_PAYLOAD - GRAD_PACKED_FIXED_SIZE) // (worst_grad_sample(cut, wire) + 4)


def frame_payloads(
    sent: Sequence[float], cut: int, wire: int, labelled: bool
) -> tuple[list[float], list[float]]:
    """Payload bytes of each SMASHED_PACKED and each GRAD_PACKED frame of a step whose samples
    send sent[i] values each (SPARSE; a dense format sends cut), as many frames as the protocol
    packs them into (at least one sample a frame). Exact for integer counts; an expected count
    (the planner's) gives the expected bytes."""
    from tinysplit.core.protocol import spec

    batch = len(sent)
    up_per = max(1, smashed_per_frame(cut, wire))
    down_per = max(1, grad_per_frame(cut, wire))
    up = [
        spec.SMASHED_PACKED_FIXED_SIZE
        + sum(int(labelled) + _acts_bytes(k, cut, wire) for k in sent[f : f + up_per])
        for f in range(0, batch, up_per)
    ]
    down = [
        spec.GRAD_PACKED_FIXED_SIZE
        + sum(4 + _grad_bytes(k, cut, wire) for k in sent[f : f + down_per])
        for f in range(0, batch, down_per)
    ]
    return up, down


def step_frames(
    acts: npt.ArrayLike, zp: int, wire: int, labelled: bool
) -> tuple[list[int], list[int]]:
    """Payload bytes of each SMASHED_PACKED and each GRAD_PACKED frame of a step whose
    activations on the wire are acts [batch, cut] (what the protocol makes of them)."""
    a = np.asarray(acts, dtype=np.int8)
    batch, cut = a.shape
    sent = (a != np.int8(zp)).sum(axis=1) if wire & SPARSE else np.full(batch, cut)
    up, down = frame_payloads([int(k) for k in sent], cut, wire, labelled)
    return [int(p) for p in up], [int(p) for p in down]  # whole counts: exact
