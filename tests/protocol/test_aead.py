"""ChaCha20-Poly1305 in C (firmware/protocol/ts_aead.c) against RFC 8439's test vectors and pyca
`cryptography`, on random keys, nonces, lengths and chunkings."""

from __future__ import annotations

import ctypes
import random

import pytest
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from wire_clib import ROOT, CLib

LIB = ROOT / "build" / "hostlib" / "libtinysplit.so"


class Aead(ctypes.Structure):
    """Storage for a ts_aead_t (136 bytes on x86-64) or a ts_poly1305_t."""

    _fields_ = [("raw", ctypes.c_uint8 * 256)]


@pytest.fixture(scope="module")
def lib(clib: CLib) -> ctypes.CDLL:
    del clib  # built by it
    return ctypes.CDLL(str(LIB))


def _seal(lib: ctypes.CDLL, key: bytes, nonce: bytes, aad: bytes, pt: bytes,
          pieces: list[int]) -> bytes:  # fmt: skip
    a = Aead()
    lib.ts_aead_init(ctypes.byref(a), key, nonce, aad, ctypes.c_uint32(len(aad)))
    out, pos = [], 0
    for n in pieces:
        buf = ctypes.create_string_buffer(pt[pos : pos + n], n)
        lib.ts_aead_encrypt(ctypes.byref(a), buf, buf, ctypes.c_size_t(n))
        out.append(buf.raw[:n])
        pos += n
    tag = ctypes.create_string_buffer(16)
    lib.ts_aead_finish(ctypes.byref(a), tag)
    return b"".join(out) + tag.raw


def _open(lib: ctypes.CDLL, key: bytes, nonce: bytes, aad: bytes, sealed: bytes,
          pieces: list[int]) -> tuple[bytes, bool]:  # fmt: skip
    a = Aead()
    lib.ts_aead_init(ctypes.byref(a), key, nonce, aad, ctypes.c_uint32(len(aad)))
    ct, tag = sealed[:-16], sealed[-16:]
    out, pos = [], 0
    for n in pieces:
        buf = ctypes.create_string_buffer(ct[pos : pos + n], n)
        lib.ts_aead_decrypt(ctypes.byref(a), buf, buf, ctypes.c_size_t(n))
        out.append(buf.raw[:n])
        pos += n
    mine = ctypes.create_string_buffer(16)
    lib.ts_aead_finish(ctypes.byref(a), mine)
    return b"".join(out), bool(lib.ts_aead_tags_equal(mine, tag))


def _pieces(rng: random.Random, n: int) -> list[int]:
    out = []
    while n > 0:
        k = min(n, rng.choice((1, 3, 15, 16, 17, 63, 64, 65, 200)))
        out.append(k)
        n -= k
    return out


def test_rfc8439_chacha20_block(lib: ctypes.CDLL) -> None:
    """RFC 8439 2.3.2."""
    key = bytes(range(32))
    nonce = bytes.fromhex("000000090000004a00000000")
    out = ctypes.create_string_buffer(64)
    lib.ts_chacha20_block(key, ctypes.c_uint32(1), nonce, out)
    assert out.raw.hex() == (
        "10f1e7e4d13b5915500fdd1fa32071c4c7d1f4c733c068030422aa9ac3d46c4e"
        "d2826446079faa0914c2d705d98b02a2b5129cd1de164eb9cbd083e8a2503c4e"
    )


def test_rfc8439_poly1305(lib: ctypes.CDLL) -> None:
    """RFC 8439 2.5.2."""
    key = bytes.fromhex("85d6be7857556d337f4452fe42d506a80103808afb0db2fd4abff6af4149f51b")
    msg = b"Cryptographic Forum Research Group"
    state = Aead()
    tag = ctypes.create_string_buffer(16)
    lib.ts_poly1305_init(ctypes.byref(state), key)
    lib.ts_poly1305_update(ctypes.byref(state), msg, ctypes.c_size_t(len(msg)))
    lib.ts_poly1305_finish(ctypes.byref(state), tag)
    assert tag.raw.hex() == "a8061dc1305136c6c22b8baf0c0127a9"


def test_rfc8439_aead(lib: ctypes.CDLL) -> None:
    """RFC 8439 2.8.2: the sunscreen message."""
    key = bytes(range(0x80, 0xA0))
    nonce = bytes.fromhex("070000004041424344454647")
    aad = bytes.fromhex("50515253c0c1c2c3c4c5c6c7")
    pt = (b"Ladies and Gentlemen of the class of '99: If I could offer you only one tip for "
          b"the future, sunscreen would be it.")  # fmt: skip
    sealed = _seal(lib, key, nonce, aad, pt, [len(pt)])
    assert sealed[-16:].hex() == "1ae10b594f09e26a7e902ecbd0600691"
    assert sealed[:16].hex() == "d31a8d34648e60db7b86afbc53ef7ec2"
    assert _open(lib, key, nonce, aad, sealed, [len(pt)]) == (pt, True)


@pytest.mark.parametrize("seed", range(4))
def test_matches_pyca_on_random_messages_and_chunkings(lib: ctypes.CDLL, seed: int) -> None:
    rng = random.Random(seed)
    for case in range(60):
        key, nonce = rng.randbytes(32), rng.randbytes(12)
        aad, pt = rng.randbytes(rng.randrange(0, 40)), rng.randbytes(rng.randrange(0, 700))
        want = ChaCha20Poly1305(key).encrypt(nonce, pt, aad)
        got = _seal(lib, key, nonce, aad, pt, _pieces(rng, len(pt)))
        assert got == want, f"seed {seed} case {case}: len {len(pt)}, aad {len(aad)}"
        assert _open(lib, key, nonce, aad, want, _pieces(rng, len(pt))) == (pt, True)


def test_any_flipped_bit_is_refused(lib: ctypes.CDLL) -> None:
    rng = random.Random(7)
    key, nonce, aad, pt = rng.randbytes(32), rng.randbytes(12), b"step", rng.randbytes(300)
    sealed = ChaCha20Poly1305(key).encrypt(nonce, pt, aad)
    for bit in rng.sample(range(8 * len(sealed)), 64):
        bad = bytearray(sealed)
        bad[bit // 8] ^= 1 << (bit % 8)
        assert not _open(lib, key, nonce, aad, bytes(bad), [len(pt)])[1], f"bit {bit}"
    assert not _open(lib, key, nonce, b"stex", sealed, [len(pt)])[1]  # other associated data


def test_chacha20_xor_is_seekable(lib: ctypes.CDLL) -> None:
    rng = random.Random(3)
    key, nonce, data = rng.randbytes(32), rng.randbytes(12), rng.randbytes(1000)
    whole = ctypes.create_string_buffer(data, len(data))
    lib.ts_chacha20_xor(key, nonce, ctypes.c_uint32(1), ctypes.c_uint32(0), whole, whole,
                        ctypes.c_size_t(len(data)))  # fmt: skip
    for start in (0, 1, 63, 64, 65, 500, 999):
        part = ctypes.create_string_buffer(data[start:], len(data) - start)
        lib.ts_chacha20_xor(key, nonce, ctypes.c_uint32(1), ctypes.c_uint32(start), part, part,
                            ctypes.c_size_t(len(data) - start))  # fmt: skip
        assert part.raw == whole.raw[start:], start
