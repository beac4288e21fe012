"""U-shaped split learning (export --labels client): the board holds the model's last layer and
the loss. The labels and the logits never leave it, and the firmware's head trains bit for bit
like the golden model's."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tinysplit.codegen.data import load_npz
from tinysplit.codegen.export import export_client, load_client_state
from tinysplit.core.errors import BadInput
from tinysplit.core.golden.head import head_exp, head_log, head_train, make_head
from tinysplit.core.protocol import (
    SEALED,
    Frame,
    FrameDecoder,
    HeadOut,
    MsgType,
    Smashed,
    decode_message,
)
from tinysplit.core.protocol.secure import SealedSession
from tinysplit.core.protocol.spec import Direction
from tinysplit.host.board.launch import open_port
from tinysplit.host.training.server import ServerSegment
from tinysplit.host.training.session import Export, board_url
from tinysplit.host.training.simulate import GoldenClient
from tinysplit.host.training.trainer import TrainConfig, split_train
from tinysplit.host.training.weights import first_blob_difference, ops_blob, state_image
from tinysplit.host.transport.link import ClientLink

STEPS = 24
CFG = TrainConfig(epochs=2, batch=32, lr=0.1, seed=0)


@pytest.fixture(scope="module")
def u_export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("u-shaped") / "export"
    export_client("digits-mlp", None, out, labels="client")
    return out


class RecordingPort:
    """A pyserial port that keeps every byte the board sent."""

    def __init__(self, port: Any) -> None:
        self.port = port
        self.received = bytearray()

    def write(self, data: bytes, /) -> int | None:
        return self.port.write(data)  # type: ignore[no-any-return]

    def read(self, size: int = 1, /) -> bytes:
        data: bytes = self.port.read(size)
        self.received += data
        return data

    @property
    def in_waiting(self) -> int:
        return int(self.port.in_waiting)


@contextlib.contextmanager
def no_label_arrays() -> Iterator[list[str]]:
    """Every way this host reads a data set raises inside: the run must not need labels."""
    tried: list[str] = []
    real_load = np.load

    def guarded(*args: Any, **kwargs: Any) -> Any:
        tried.append(str(args[0]) if args else "np.load")
        raise AssertionError(f"the host read a data file during a U-shaped run: {args[:1]}")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(np, "load", guarded)
        mp.setattr("tinysplit.codegen.data.load_npz", guarded)
        yield tried
    assert np.load is real_load


def _train_on_native(
    export_dir: Path, port_hook: Any = None, sessions: list[Any] | None = None
) -> tuple[Any, bytes, list[Any]]:
    """STEPS steps on the native board; the result, the board's state image and every
    SmashedBatch the host got. sessions: gets the link's sealed session (its key)."""
    export = Export.load(export_dir)
    server = ServerSegment.load(export_dir / "server.keras", CFG.lr)
    seen: list[Any] = []
    with board_url("native", export) as url:
        port = open_port(url, timeout=0.05)
        wrapped = port_hook(port) if port_hook else port
        try:
            link = ClientLink(wrapped, **export.link_key())
            link.hello(export.model_hash)
            forward, evaluate = link.forward, link.evaluate
            link.forward = lambda *a: seen.append(forward(*a)) or seen[-1]  # type: ignore[method-assign]
            link.evaluate = lambda *a: seen.append(evaluate(*a)) or seen[-1]  # type: ignore[method-assign]
            with no_label_arrays() as tried:
                result = split_train(link, server, CFG, progress=False, max_steps=STEPS)
            assert tried == []
            image = link.pull_state()
            if sessions is not None:
                sessions.append(link.sealed)
        finally:
            port.close()
    return result, image, seen


def test_board_head_trains_bit_exact_with_the_golden_model(u_export: Path) -> None:
    result, image, _ = _train_on_native(u_export)
    state = load_client_state(u_export)
    assert state.head is not None
    golden = GoldenClient(state)
    server = ServerSegment.load(u_export / "server.keras", CFG.lr)
    replay = split_train(golden, server, CFG, progress=False, max_steps=STEPS)
    layers = state.layers
    blob = ops_blob(layers)
    assert first_blob_difference(image[: len(blob)], layers) is None, (
        f"after {STEPS} steps: {first_blob_difference(image[: len(blob)], layers)}"
    )
    assert image == state_image(layers)  # the quantization tail too
    assert result.history[-1].test_accuracy == replay.history[-1].test_accuracy
    assert result.history[-1].train_accuracy == replay.history[-1].train_accuracy
    assert result.history[-1].test_accuracy > 0.2  # it learns (10 classes: chance is 0.1)


def test_no_byte_the_board_sends_carries_a_label_or_a_logit(u_export: Path) -> None:
    ports: list[RecordingPort] = []

    def record(port: Any) -> RecordingPort:
        ports.append(RecordingPort(port))
        return ports[0]

    sessions: list[Any] = []
    _, _, seen = _train_on_native(u_export, record, sessions)
    # The host was never handed a label.
    assert seen and all(batch.labels is None for batch in seen)
    # Decode every frame the board sent, independently of the link: sealed ones with the
    # session's key (an eavesdropper without it reads nothing: tests/robust/test_pairing.py).
    decoder = FrameDecoder()
    host_end = SealedSession(sessions[0].session_key, sessions[0].session, sends=Direction.TO_BOARD)
    frames = []
    for f in decoder.feed(bytes(ports[0].received)):
        opened = host_end.open(f) if f.header.type & SEALED else f
        assert isinstance(opened, Frame), f"a board frame failed to open: {opened}"
        frames.append(opened)
    msgs = [decode_message(f) for f in frames]
    kinds = {MsgType(f.header.type) for f in frames}
    assert kinds <= {MsgType.HELLO, MsgType.STATUS, MsgType.SMASHED, MsgType.HEAD_OUT,
                     MsgType.STEP_DONE, MsgType.WEIGHTS}, kinds  # fmt: skip
    smashed = [m for m in msgs if isinstance(m, Smashed)]
    heads = [m for m in msgs if isinstance(m, HeadOut)]
    assert len(smashed) >= STEPS and len(heads) >= STEPS
    assert all(m.labels is None for m in smashed)  # flag NO_LABELS: no label field at all
    n_classes = Export.load(u_export).manifest["head"]["out"]
    head_size = Export.load(u_export).manifest["head"]["in"]
    for m in heads:  # gradients of the server's outputs: head_size wide, never class-wide
        assert m.grads is None or m.grads.shape[1] == head_size != n_classes
    assert {f.name for f in dataclasses.fields(HeadOut)} == {
        "mode", "count", "correct", "loss_sum", "scales", "grads"
    }  # fmt: skip
    # No label sequence of a minibatch appears in the bytes either.
    y = load_npz(u_export / "data.npz").y_train.astype(np.uint8)
    from tinysplit.host.training.schedule import schedule

    raw = bytes(ports[0].received)
    for s in schedule(len(y), CFG.batch, epochs=1, seed=CFG.seed):
        if s.step > STEPS:
            break
        assert y[s.indices[:16]].tobytes() not in raw, s.step


def test_head_math_matches_float64_and_is_finite() -> None:
    """The board's own exp/log (float32 ops only) stay within float32 rounding of the truth,
    over the range the softmax uses; and the head's loss gradient is softmax - onehot."""
    x = np.concatenate([-np.geomspace(1e-7, 86, 4000), [0.0, -86.5, -200.0]]).astype(np.float32)
    got = head_exp(x)
    want = np.exp(x.astype(np.float64))
    ok = x > -86
    rel = np.abs(got[ok] - want[ok]) / want[ok]
    assert rel.max() < 4e-7, f"exp: worst relative error {rel.max():.2e} at {x[ok][rel.argmax()]}"
    assert np.all(got[~ok] == 0)
    s = np.geomspace(1, 1e4, 4000).astype(np.float32)
    err = np.abs(head_log(s) - np.log(s.astype(np.float64)))
    assert err.max() < 1e-6 * np.log(1e4), f"log: worst error {err.max():.2e}"
    rng = np.random.default_rng(3)
    head = make_head(rng.normal(0, 0.3, (12, 5)), rng.normal(0, 0.1, 5))
    h = rng.integers(-127, 128, (6, 12)).astype(np.int8)
    s_h = np.full(6, 0.02, np.float32)
    y = rng.integers(0, 5, 6)
    ans = head_train(head, h, s_h, y, batch=6)
    z = (h.astype(np.float64) * 0.02) @ head.w.astype(np.float64).T * head.w_scale + head.master_b
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    loss = -np.log(p[np.arange(6), y]).sum()
    assert abs(float(ans.loss_sum) - loss) < 1e-4 * max(1.0, loss)
    assert ans.correct == int(np.sum(z.argmax(1) == y))


def test_labels_client_refuses_a_model_without_a_dense_head(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="no trainable layer between the cut"):
        export_client("digits-mlp", 2, tmp_path / "e", labels="client")
    with pytest.raises(BadInput, match="--labels nowhere"):
        export_client("digits-mlp", None, tmp_path / "f", labels="nowhere")


def test_u_shaped_run_through_every_fault_ends_bit_identical(u_export: Path) -> None:
    """HEAD_IN and HEAD_OUT dropped, repeated, reordered, cut, flipped, and the board reset
    mid-step: each position goes through the head once, and the run ends with a clean run's
    client state (head included) and server weights."""
    from tinysplit.host.board.build import build_firmware
    from tinysplit.host.training.soak import (
        LOCAL_TIMEOUTS,
        board_factory,
        identical,
        lost_steps,
        train_through_proxy,
    )
    from tinysplit.host.transport.faults import FRAME_KINDS, FaultRates

    image = build_firmware("native", u_export)
    export = Export.load(u_export)
    steps, cfg = 50, TrainConfig(epochs=2, batch=32, lr=0.1, seed=3)
    clean = train_through_proxy(board_factory("native", image), export, cfg, rates=FaultRates(),
                                seed=0, timeouts=LOCAL_TIMEOUTS, max_steps=steps)  # fmt: skip
    faulty = train_through_proxy(
        board_factory("native", image), export, cfg, rates=FaultRates.uniform(0.03, reset=0.0),
        seed=5, timeouts=LOCAL_TIMEOUTS, max_steps=steps, reset_at=(60, 250),
    )  # fmt: skip
    print(f"\nfaults {faulty.faults}; host link {faulty.link}; board {faulty.board}")
    assert clean.error is None and faulty.error is None, faulty.error
    assert all(faulty.faults[k] > 0 for k in FRAME_KINDS) and faulty.faults["reset"] >= 2
    assert lost_steps(faulty, clean) == 0
    assert identical(faulty, clean), "client state or server weights differ from the clean run"
    assert faulty.result is not None and clean.result is not None
    assert faulty.result.history == clean.result.history
    assert faulty.board["duplicates"] > 0
