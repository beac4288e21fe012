"""Writes the seed inputs of the fuzz corpora (firmware/fuzz/corpus/{frame,client}/seed-*).

    python firmware/fuzz/seeds.py

The seeds are well-formed inputs the fuzzers mutate from: frames of every message type for
fuzz_frame; a whole training step, evaluation, weight transfers and STATS for fuzz_client (the
record format is in fuzz_client.c). Sizes fit the bundled digits-mlp export (cut 32, batch 32);
for another model they are still valid starting points. The corpus the fuzzers grow is merged
next to them by scripts/fuzz.sh --update-corpus.
"""

from __future__ import annotations

import struct
from pathlib import Path

from tinysplit.core.protocol import (
    Commit,
    Eval,
    GetWeights,
    Grad,
    HeadIn,
    HeadMode,
    HelloReq,
    Message,
    MsgType,
    PackedGrad,
    PutWeights,
    StatsReq,
    Sync,
    TrainStep,
    WireBit,
    encode_message,
)

HERE = Path(__file__).resolve().parent
CUT, BATCH = 32, 4  # digits-mlp's cut, and its head's inputs (fc2: 32)
IMAGE = 12_728 + 28  # the fuzz model's sealed state image: the clear one + nonce + tag
# fuzz_client.c's table of message kinds: kind % len(TYPES) picks one.
TYPES = [
    MsgType.HELLO_REQ,
    MsgType.SYNC,
    MsgType.TRAIN_STEP,
    MsgType.GRAD,
    MsgType.COMMIT,
    MsgType.EVAL,
    MsgType.GET_WEIGHTS,
    MsgType.PUT_WEIGHTS,
    MsgType.STATS_REQ,
    MsgType.TRAIN_STEP,
    MsgType.GRAD,
    MsgType.GRAD,
    MsgType.COMMIT,
    MsgType.HEAD_IN,  # the fuzz model is U-shaped (--labels client)
    MsgType.GRAD_PACKED,  # and its wire is int4 (--wire int4)
]
COMMITTED, NEXT, IN_FLIGHT = 0, 1, 2  # fuzz_client.c's step selectors
FIX_CRC = 0x40


def record(msg: Message, sel: int, seq: int = 0) -> bytes:
    payload = msg.pack()
    return struct.pack("<BBHH", TYPES.index(msg.TYPE), sel, seq, len(payload)) + payload


def sealed(msg: Message, sel: int, seq: int = 0) -> bytes:
    """A kind 0xFD record: fuzz_client.c seals the message as a paired host would (sel bit 7:
    then flips bit seq % 8 of byte seq // 8; bit 6: sends it twice)."""
    body = bytes([TYPES.index(msg.TYPE)]) + msg.pack()
    return struct.pack("<BBHH", 0xFD, sel, seq, len(body)) + body


def grads(n: int) -> Grad:
    import numpy as np

    g = (np.arange(n * CUT, dtype=np.int64) % 17 - 8).astype(np.int8).reshape(n, CUT)
    return Grad(np.full(n, 1e-3, np.float32), g)


def packed_grads(n: int) -> PackedGrad:
    """GRAD_PACKED of the fuzz model's --wire int4: 4-bit gradients in [-7, 7]."""
    import numpy as np

    g = (np.arange(n * CUT, dtype=np.int64) % 15 - 7).astype(np.int8).reshape(n, CUT)
    return PackedGrad.of(
        np.full(n, 1e-3, np.float32), g, int(WireBit.ACTS4 | WireBit.GRADS4), None, 0
    )


def head_in(mode: HeadMode, n: int) -> HeadIn:
    import numpy as np

    h = (np.arange(n * CUT, dtype=np.int64) % 23 - 11).astype(np.int8).reshape(n, CUT)
    return HeadIn(int(mode), np.full(n, 0.05, np.float32), h)


def client_seeds() -> dict[str, bytes]:
    step = record(TrainStep(0.1, 0, BATCH, tuple(range(BATCH))), NEXT | FIX_CRC)
    grad = record(grads(BATCH), IN_FLIGHT)
    commit = record(Commit(0, BATCH), IN_FLIGHT | FIX_CRC)
    head = record(head_in(HeadMode.TRAIN, BATCH), IN_FLIGHT)
    chunked = record(TrainStep(0.1, 0, BATCH, (5, 6)), NEXT | FIX_CRC) + record(
        TrainStep(0.1, 0, BATCH, (7, 8)), NEXT | FIX_CRC, seq=2
    )
    half = record(Grad(grads(BATCH).scales[:2], grads(BATCH).grads[:2]), IN_FLIGHT)
    push = struct.pack("<BBHH", 0xFE, 3, 0, 4) + bytes(4)
    wire = encode_message(HelloReq(), 0, 7)
    return {
        "step": step + grad + commit,
        "step-dup": step + step + grad + grad + commit + commit + step,
        "step-chunked": chunked + half + record(grads(BATCH), IN_FLIGHT) + commit,
        "sync-abort": step + record(Sync(5), 7) + step,
        "eval": record(Eval(1, 0, 40), 4),
        "eval-timed-live": record(Eval(1, 0, 3, 1), 4)
        + record(Eval(2, 0, 3, 1), 4)
        + record(Eval(2, 60000, 1, 1), 4),
        "weights": record(GetWeights(0, 1012), 4) + record(GetWeights(10000, 1012), 4),
        # the fuzz model (scripts/fuzz.sh) seals its state: its wire image is 12,728 + 28 bytes
        "put": record(PutWeights(0, IMAGE, 0, 3, bytes(100)), 5),
        "put-sealed-whole": b"".join(
            record(PutWeights(o, IMAGE, 0, 3, bytes(min(2048, IMAGE - o))), 5)
            for o in range(0, IMAGE, 2048)
        ),
        "head": step + head + grad + commit,
        "step-packed": step + head + record(packed_grads(BATCH), IN_FLIGHT) + commit,
        "head-dup-gap": step
        + record(head_in(HeadMode.TRAIN, 2), IN_FLIGHT, seq=2)
        + head
        + record(head_in(HeadMode.TRAIN, 2), IN_FLIGHT)
        + head
        + grad
        + commit
        + head,
        "head-eval": record(Eval(1, 0, 40), 4)
        + record(head_in(HeadMode.EVAL, 40), 4)
        + record(head_in(HeadMode.EVAL, 3), 4, seq=39),
        "push-then-train": push + step + grad + commit,
        "stats": record(StatsReq(), 4) + record(HelloReq(), 4),
        "wire": struct.pack("<BBHH", 0xFF, 0, 0, len(wire)) + wire,
        # the fuzz model is paired: the same messages sealed, then forged and replayed
        "sealed-step": sealed(TrainStep(0.1, 0, BATCH, tuple(range(BATCH))), NEXT | FIX_CRC)
        + sealed(grads(BATCH), IN_FLIGHT)
        + sealed(Commit(0, BATCH), IN_FLIGHT | FIX_CRC),
        "sealed-forged-replayed": sealed(StatsReq(), 0x80 | 4, seq=8 * 20 + 3)
        + sealed(Sync(2), 0x40 | 7)
        + sealed(GetWeights(0, 1012), 4),
    }


def frame_seeds() -> dict[str, bytes]:
    msgs: list[tuple[str, Message]] = [
        ("hello-req", HelloReq()),
        ("sync", Sync(3)),
        ("train-step", TrainStep(0.1, 0x1234, BATCH, tuple(range(BATCH)))),
        ("grad", grads(BATCH)),
        ("commit", Commit(0xDEADBEEF, BATCH)),
        ("put", PutWeights(0, 10932, 1, 2, bytes(range(256)) * 3)),
        ("stats", StatsReq()),
        ("eval-live", Eval(2, 5, 2, 1)),
    ]
    out = {name: encode_message(m, 0x11223344, 9, 1) for name, m in msgs}
    from tinysplit.core.protocol.secure import SealedSession
    from tinysplit.core.protocol.spec import Direction

    # fuzz_frame.c opens every frame with this session (key 1..16, zeros; session 0x5354)
    host = SealedSession(bytes(range(1, 17)) + bytes(16), 0x5354, sends=Direction.TO_BOARD)
    for name, m in msgs[:4]:
        out[f"sealed-{name}"] = host.seal(int(m.TYPE), 9, 1, m.pack())
    out["stream"] = b"\x00".join(out.values()) + b"\x01" * 40 + b"\x00"
    out["oversize"] = b"\x05" * 1100 + b"\x00"
    return out


def main() -> None:
    for kind, seeds in (("client", client_seeds()), ("frame", frame_seeds())):
        folder = HERE / "corpus" / kind
        folder.mkdir(parents=True, exist_ok=True)
        for name, data in seeds.items():
            (folder / f"seed-{name}").write_bytes(data)
        print(f"{folder}: {len(seeds)} seeds")


if __name__ == "__main__":
    main()
