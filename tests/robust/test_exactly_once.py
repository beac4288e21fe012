"""The board's side of exactly-once, frame by frame on the native build: every request is keyed
by (session, step, seq), a repeat is answered again and never applied twice, a step is applied
whole only after its CRC and step id check out, and pushed weights land whole or not at all."""

from __future__ import annotations

import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tinysplit.core.protocol import (
    MAX_RAW,
    BoardState,
    Commit,
    ErrorCode,
    ErrorMsg,
    Frame,
    Grad,
    Message,
    PutWeights,
    Smashed,
    StepDone,
    TrainStep,
    decode_message,
    encode_frame,
    grad_per_frame,
)
from tinysplit.host.board.launch import native_board, open_port
from tinysplit.host.training.session import Export
from tinysplit.host.transport.link import ClientLink, StepLost, Timeouts

FAST = Timeouts(reply_s=0.2, silence_s=3.0)
BATCH = 32


@pytest.fixture
def link(robust_native: Path, digits_export: Path) -> Iterator[ClientLink]:
    with native_board(robust_native) as url:
        port = open_port(url, timeout=0.02)
        try:
            link = ClientLink(port, timeouts=FAST, **Export.load(digits_export).link_key())
            link.hello()
            link.sync(0)
            yield link
        finally:
            port.close()


def replies(link: ClientLink, seconds: float = 0.3) -> list[tuple[Frame, Message]]:
    """Every frame the board sends within `seconds`."""
    out = []
    deadline = time.monotonic() + seconds
    while (frame := link._next_frame(deadline)) is not None:
        out.append((frame, decode_message(frame)))
    return out


def errors(got: list[tuple[Frame, Message]]) -> list[int]:
    return [m.code for _, m in got if isinstance(m, ErrorMsg)]


def step_inputs(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    indices = rng.choice(1347, BATCH, replace=False)
    grads = rng.integers(-127, 128, (BATCH, 32)).astype(np.int8)
    scales = np.full(BATCH, 2e-4, np.float32)
    return indices, grads, scales


def grad_frames(link: ClientLink, step: int, grads: np.ndarray, scales: np.ndarray) -> Commit:
    per = grad_per_frame(32)
    payloads = []
    for first in range(0, BATCH, per):
        g = Grad(scales[first : first + per], grads[first : first + per])
        link.send(g, step=step, seq=first)
        payloads.append(g.pack())
    return Commit(zlib.crc32(b"".join(payloads)), BATCH)


def clean_crc(robust_native: Path, digits_export: Path, seeds: list[int]) -> int:
    """The weights CRC a fresh board reports after these steps, each sent once."""
    with native_board(robust_native) as url:
        port = open_port(url, timeout=0.02)
        try:
            link = ClientLink(port, timeouts=FAST, **Export.load(digits_export).link_key())
            link.hello()
            link.sync(0)
            for step, seed in enumerate(seeds, start=1):
                indices, grads, scales = step_inputs(seed)
                link.forward(step, 0.1, indices)
                done = link.backward(step, grads, scales)
            return done.weights_crc
        finally:
            port.close()


def test_repeated_requests_are_answered_and_never_applied_twice(
    link: ClientLink, robust_native: Path, digits_export: Path
) -> None:
    indices, grads, scales = step_inputs(1)
    first = link.forward(1, 0.1, indices)
    link.send(TrainStep(0.1, link.weights_crc or 0, BATCH, tuple(int(i) for i in indices)), step=1)
    again = [m for _, m in replies(link) if isinstance(m, Smashed)]
    assert sum(m.count for m in again) == BATCH  # the whole batch again, from what it kept
    assert np.array_equal(np.concatenate([m.acts for m in again]), first.acts)
    for _ in range(2):  # every gradient frame twice, COMMIT twice
        commit = grad_frames(link, 1, grads, scales)
    link.send(commit, step=1)
    link.send(commit, step=1)
    done = [m for _, m in replies(link) if isinstance(m, StepDone)]
    assert len(done) == 2 and done[0] == done[1]
    # a late TRAIN_STEP of the committed step: its STEP_DONE again, no new step
    link.send(TrainStep(0.1, 0, BATCH, tuple(int(i) for i in indices)), step=1)
    assert [m for _, m in replies(link) if isinstance(m, StepDone)] == done[:1]
    stats = link.board_stats()
    assert stats["commits"] == 1 and stats["duplicates"] >= 4 and stats["retransmits"] >= 3
    assert done[0].weights_crc == clean_crc(robust_native, digits_export, [1])


def test_a_step_commits_only_whole_and_with_its_crc(
    link: ClientLink, robust_native: Path, digits_export: Path
) -> None:
    indices, grads, scales = step_inputs(2)
    link.forward(1, 0.1, indices)
    per = min(grad_per_frame(32), BATCH) // 2
    first, rest = Grad(scales[:per], grads[:per]), Grad(scales[per:], grads[per:])
    link.send(first, step=1, seq=0)  # the rest is "lost"
    link.send(Commit(0, BATCH), step=1)
    assert errors(replies(link)) == [ErrorCode.GRAD_MISSING]
    link.send(rest, step=1, seq=per)  # now all are staged, but COMMIT names other gradients
    staged_crc = zlib.crc32(first.pack() + rest.pack())
    link.send(Commit(staged_crc ^ 1, BATCH), step=1)
    assert errors(replies(link)) == [ErrorCode.GRAD_CRC]
    assert link.board_stats()["grad_crc_errors"] == 1
    done = link.backward(1, grads, scales)  # everything again: staged from scratch
    assert done.weights_crc == clean_crc(robust_native, digits_export, [2])


def test_a_step_on_other_weights_is_refused(link: ClientLink) -> None:
    indices, _, _ = step_inputs(3)
    bad = (link.weights_crc or 0) ^ 1
    link.send(TrainStep(0.1, bad, BATCH, tuple(int(i) for i in indices)), step=1)
    assert errors(replies(link)) == [ErrorCode.BASE_MISMATCH]
    link.weights_crc = (link.weights_crc or 0) ^ 1  # a host that lost track
    with pytest.raises(StepLost, match="BASE_MISMATCH"):
        link.forward(1, 0.1, indices)


def test_sync_drops_the_step_in_flight(link: ClientLink) -> None:
    indices, grads, scales = step_inputs(4)
    before = link.weights_crc
    link.forward(5, 0.1, indices)
    status = link.sync(3)
    assert (status.committed, status.state, status.weights_crc) == (3, BoardState.IDLE, before)
    with pytest.raises(StepLost, match="NOT_IN_FLIGHT"):
        link.backward(5, grads, scales)
    assert link.board_stats()["aborts"] == 1


def test_a_batch_in_several_train_step_frames(link: ClientLink) -> None:
    indices, _, _ = step_inputs(5)
    whole = link.forward(1, 0.1, indices)
    link.sync(0)
    idx = tuple(int(i) for i in indices)
    base = link.weights_crc or 0

    def chunk(first: int) -> None:
        link.send(TrainStep(0.1, base, BATCH, idx[first : first + 10]), step=1, seq=first)

    chunk(10)  # its first frame is "lost": nothing starts
    chunk(0)
    chunk(0)  # a repeat
    chunk(20)  # a gap: positions 10..19 are missing
    assert not [m for _, m in replies(link) if isinstance(m, Smashed)]
    for first in (10, 20, 30):
        chunk(first)
    parts = [(f.header.seq, m) for f, m in replies(link) if isinstance(m, Smashed)]
    acts = np.concatenate([m.acts for _, m in sorted(parts, key=lambda p: p[0])])
    assert np.array_equal(acts, whole.acts)


def test_pushed_weights_land_whole_or_not_at_all(link: ClientLink) -> None:
    image = link.pull_state()
    start_crc = link.weights_crc or 0
    for step, seed in ((1, 6), (2, 7)):
        indices, grads, scales = step_inputs(seed)
        link.forward(step, 0.1, indices)
        trained = link.backward(step, grads, scales).weights_crc
    assert trained != start_crc
    total, crc = len(image), zlib.crc32(image)
    # the first chunk only: the board is LOADING and refuses to train
    link.send(PutWeights(0, total, crc, 0, image[:1000]), step=77)
    link.send(TrainStep(0.1, trained, BATCH, (1, 2)), step=3)
    assert errors(replies(link)) == [ErrorCode.WEIGHTS_INCOMPLETE]
    # a whole image whose CRC is wrong is refused, and the board stays LOADING
    for offset in range(0, total, 1000):
        link.send(PutWeights(offset, total, crc ^ 1, 0, image[offset : offset + 1000]), step=78)
    assert ErrorCode.PUT_CRC in errors(replies(link))
    assert link.sync(0).state == BoardState.LOADING
    status = link.push_state(image, 0, start_crc)
    assert (status.weights_crc, status.committed, status.state) == (start_crc, 0, BoardState.IDLE)
    assert link.pull_state() == image
    assert link.board_stats()["pushes"] == 1


def test_broken_frames_are_dropped_and_counted(link: ClientLink) -> None:
    port = link.port
    port.write(b"\x01" * (MAX_RAW + 100) + b"\x00")  # oversize: dropped at the delimiter
    frame = Grad(np.ones(2, np.float32), np.ones((2, 32), np.int8))
    wire = b"\x00" + encode_frame(frame.TYPE, link.session, 1, 0, frame.pack())
    port.write(wire[: len(wire) // 2])  # cut off, and then nothing: the board's gap timer
    time.sleep(0.4)
    stats = link.board_stats()  # the link still works
    assert stats["oversize"] == 1 and stats["rx_timeouts"] == 1 and stats["resyncs"] == 1
