"""The wire formats' codec in C (firmware/protocol/ts_pack.c) against the host's
(core/protocol/wire.py) on random samples: the same bytes out of the board's packer, the same
gradients out of its reader, the same refusals; and the host's own round trips and refusals."""

from __future__ import annotations

import ctypes
import subprocess
from pathlib import Path

import numpy as np
import pytest
from wire_clib import ROOT, CLib

from tinysplit.core.errors import ProtocolError
from tinysplit.core.protocol import (
    PackedGrad,
    PackedSmashed,
    decode_message,
    encode_message,
)
from tinysplit.core.protocol import wire as w
from tinysplit.core.protocol.frame import FrameDecoder
from tinysplit.core.protocol.spec import smashed_per_frame

LIB = ROOT / "build" / "hostlib" / "libtinysplit.so"
CODED = sorted(b for b in w.NAMES.values() if b)
CASES = 320  # random samples per format


@pytest.fixture(scope="module")
def lib(clib: CLib) -> ctypes.CDLL:
    del clib  # built by it
    so = ctypes.CDLL(str(LIB))
    so.ts_pack_acts.restype = ctypes.c_uint32
    so.ts_pack_acts.argtypes = [ctypes.c_char_p, ctypes.c_uint32, ctypes.c_int8, ctypes.c_uint8,
                                ctypes.c_char_p]  # fmt: skip
    so.ts_unpack_grad.restype = ctypes.c_int32
    so.ts_unpack_grad.argtypes = [ctypes.c_char_p, ctypes.c_uint32, ctypes.c_char_p,
                                  ctypes.c_uint32, ctypes.c_uint8, ctypes.c_char_p]  # fmt: skip
    return so


def _sample(rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """A ReLU cut's activations: a random size, zero point (extremes included), share of zeros."""
    n = int(rng.choice([1, 2, 3, 7, 8, 9, 15, 16, 17, int(rng.integers(1, 1400))]))
    zp = int(rng.choice([-128, -128, -127, int(rng.integers(-128, 113)), 112]))
    q = rng.integers(zp, 128, n)
    q[rng.random(n) < rng.random()] = zp  # post-ReLU: zeros, a random share of them
    return q.astype(np.int8), zp


def _c_pack(lib: ctypes.CDLL, q: np.ndarray, zp: int, wire: int) -> bytes:
    out = ctypes.create_string_buffer(w.worst_acts_sample(q.size, wire) + 1)
    n = lib.ts_pack_acts(q.tobytes(), q.size, zp, wire, out)
    return out.raw[:n]


def _c_unpack(lib: ctypes.CDLL, body: bytes, acts: np.ndarray, zp: int, wire: int
              ) -> tuple[int, np.ndarray]:  # fmt: skip
    """The board's reader, given the bitmap its packer wrote for these activations."""
    g = ctypes.create_string_buffer(acts.size)
    sent = _c_pack(lib, acts, zp, wire)[: (acts.size + 7) // 8] if wire & w.SPARSE else b""
    used = lib.ts_unpack_grad(body, len(body), sent, acts.size, wire, g)
    return used, np.frombuffer(g.raw, np.int8)


@pytest.mark.parametrize("wire", CODED, ids=w.wire_name)
def test_the_boards_packer_writes_the_hosts_bytes(lib: ctypes.CDLL, wire: int) -> None:
    rng = np.random.default_rng(wire)
    for case in range(CASES):
        q, zp = _sample(rng)
        want = w.pack_acts(q[None], zp, wire)
        got = _c_pack(lib, q, zp, wire)
        if got != want:
            short = min(len(got), len(want))
            at = next((i for i in range(short) if got[i] != want[i]), short)
            pytest.fail(f"{w.wire_name(wire)} case {case} (n {q.size}, zp {zp}): byte {at} "
                        f"C {got[at:at + 1].hex()} host {want[at:at + 1].hex()}, "
                        f"{len(got)} vs {len(want)} bytes")  # fmt: skip
        back = w.unpack_acts(got, 1, q.size, zp, wire)[0]
        assert np.array_equal(back, w.on_the_wire(q, zp, wire)), f"case {case}"
        assert len(got) <= w.worst_acts_sample(q.size, wire)


@pytest.mark.parametrize("wire", CODED, ids=w.wire_name)
def test_the_boards_reader_takes_the_hosts_gradients(lib: ctypes.CDLL, wire: int) -> None:
    rng = np.random.default_rng(100 + wire)
    lo, hi = (-8, 8) if wire & w.GRADS4 else (-128, 128)
    for case in range(CASES):
        q, zp = _sample(rng)
        sent = w.on_the_wire(q, zp, wire)
        mask = w.sent_mask(sent[None], zp, wire)
        g = rng.integers(lo, hi, (1, q.size)).astype(np.int8)
        if mask is not None:
            g[~mask] = 0
        body = w.pack_grads(g, mask, wire)
        used, got = _c_unpack(lib, body, q, zp, wire)  # the board masks with its raw outputs
        assert used == len(body), f"case {case}: read {used} of {len(body)} bytes"
        bad = np.flatnonzero(got != g[0])
        assert bad.size == 0, f"case {case}: gradient {bad[0]} C {got[bad[0]]} host {g[0, bad[0]]}"
        assert np.array_equal(w.unpack_grads(body, 1, q.size, mask, wire), g)
        if len(body):  # cut short by a byte: both refuse
            used, _ = _c_unpack(lib, body[:-1], q, zp, wire)
            assert used == -1, f"case {case}: a short body was read ({used})"
            with pytest.raises(ProtocolError):
                w.unpack_grads(body[:-1], 1, q.size, mask, wire)


def test_a_set_padding_nibble_is_refused_by_both(lib: ctypes.CDLL) -> None:
    q = np.full(3, 50, np.int8)  # three values: the last byte's high nibble is padding
    body = bytes([0x21, 0x53])
    used, _ = _c_unpack(lib, body, q, -128, w.GRADS4)
    assert used == -1
    with pytest.raises(ProtocolError, match="padding"):
        w.unpack_grads(body, 1, 3, None, w.GRADS4)
    assert _c_unpack(lib, bytes([0x21, 0x03]), q, -128, w.GRADS4)[0] == 2


def test_packed_messages_round_trip_through_frames() -> None:
    rng = np.random.default_rng(7)
    for wire in CODED:
        raw = rng.integers(-128, 128, (4, 300)).astype(np.int8)
        raw[raw < 0] = -128
        acts = w.on_the_wire(raw, -128, wire)
        for labels in (bytes(range(4)), None):
            msg = PackedSmashed(0.25, -128, labels, acts, wire)
            dec = FrameDecoder()
            (frame,) = dec.feed(encode_message(msg, 1, 2, 0))
            assert decode_message(frame) == msg
        grads = rng.integers(-7, 8, (4, 300)).astype(np.int8)
        mask = w.sent_mask(acts, -128, wire)
        if mask is not None:
            grads[~mask] = 0
        g = PackedGrad.of(np.full(4, 0.5, np.float32), grads, wire, acts, -128)
        (frame,) = FrameDecoder().feed(encode_message(g, 1, 2, 0))
        back = decode_message(frame)
        assert back == g and isinstance(back, PackedGrad)
        assert np.array_equal(back.grads(acts, -128), grads)


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (lambda p: p[:8] + bytes([0]) + p[9:], "name no coded format"),  # wire 0
        (lambda p: p[:8] + bytes([0x10]) + p[9:], "name no coded format"),
        (lambda p: p[:-1], "cut short|after the last"),
        (lambda p: p + b"\x00", "after the last"),
        (lambda p: p[:9] + b"\x01" + p[10:], "padding"),
    ],
)
def test_a_malformed_smashed_packed_is_one_protocol_error(mutate: object, match: str) -> None:
    raw = np.array([[-128, 5, -128, 90, 127, -128, 3]], np.int8)
    payload = PackedSmashed(0.5, -128, b"\x01", w.on_the_wire(raw, -128, 6), 6).pack()
    with pytest.raises(ProtocolError, match=match) as e:
        PackedSmashed.unpack(mutate(payload))  # type: ignore[operator]
    assert "\n" not in str(e.value)


def test_a_bitmap_naming_a_zero_is_refused() -> None:
    # sparse int8: bitmap names position 0, whose value is the zero point
    with pytest.raises(ProtocolError, match="names a zero"):
        w.unpack_acts(bytes([0x01, 0x80]), 1, 3, -128, w.SPARSE)
    with pytest.raises(ProtocolError, match="past the cut"):
        w.unpack_acts(bytes([0x08, 0x05]), 1, 3, -128, w.SPARSE)


def test_samples_per_frame_agree_with_the_c_macros(tmp_path: Path) -> None:
    """TS_SMASHED_PACKED_PER_FRAME / TS_GRAD_PACKED_PER_FRAME (ts_wire.h, what the board sizes
    its frames by) against wire.smashed_per_frame / grad_per_frame."""
    cuts, out = (1, 32, 800, 1352, 2000, 2040), []
    lines = [f'printf("%u %u\\n", (unsigned)TS_SMASHED_PACKED_PER_FRAME({c}, {b}), '
             f"(unsigned)TS_GRAD_PACKED_PER_FRAME({c}, {b}));"
             for c in cuts for b in CODED]  # fmt: skip
    src = tmp_path / "per_frame.c"
    src.write_text('#include <stdio.h>\n#include "ts_wire.h"\nint main(void) {\n'
                   + "\n".join(lines) + "\nreturn 0;\n}\n")  # fmt: skip
    exe = tmp_path / "per_frame"
    subprocess.run(["gcc", "-Wall", "-Wextra", "-Werror", "-I", str(ROOT / "firmware" / "protocol"),
                    str(src), "-o", str(exe)], check=True)  # fmt: skip
    got = subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout.split()
    for c in cuts:
        for b in CODED:
            packed = (2048 - 12) // (w.worst_acts_sample(c, b) + 1)
            out.append(f"{packed} {w.grad_per_frame(c, b)}")
    assert " ".join(got) == " ".join(out)
    for c in cuts:
        for b in CODED:  # the board assembles a frame in SMASHED's buffer: never more samples
            assert w.smashed_per_frame(c, b) <= smashed_per_frame(c)
