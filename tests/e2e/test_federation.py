"""Several data holders: K boards, one server segment (host/training/federation.py).

The native boards' runs are replayed with the golden model in-process (bit-exact with the
firmware): the same schedule, the same drop-out at the same point, must end with the same client
state on every board and the same server weights."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tinysplit.codegen.data import partition
from tinysplit.codegen.export import export_clients, load_client_state
from tinysplit.core.errors import BadInput, BoardSilent
from tinysplit.host.board.build import build_firmware
from tinysplit.host.board.launch import native_board, open_port
from tinysplit.host.commands.federated import federation_exports, template
from tinysplit.host.training.federation import Member, average_states, federated_train
from tinysplit.host.training.schedule import Schedule
from tinysplit.host.training.server import ServerSegment
from tinysplit.host.training.simulate import GoldenClient
from tinysplit.host.training.trainer import TrainConfig
from tinysplit.host.transport.link import ClientLink, Timeouts

K = 3
CFG = TrainConfig(epochs=2, batch=32, lr=0.1, seed=0)
FAST = Timeouts(silence_s=5.0)  # the killed board's closed port fails at once anyway


@pytest.fixture(scope="module")
def federation(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("federation") / "export"
    export_clients("digits-mlp", None, out, K, "by-class")
    return out


def test_partition_rules_deal_every_row_once() -> None:
    y = np.arange(300) % 10
    for rule in ("iid", "by-class", "dirichlet:0.3"):
        shards = partition(y, 4, rule, seed=1)
        rows = np.sort(np.concatenate(shards))
        assert np.array_equal(rows, np.arange(300)), rule
    classes = [set(y[s]) for s in partition(y, 4, "by-class")]
    assert all(a.isdisjoint(b) for i, a in enumerate(classes) for b in classes[i + 1 :])
    with pytest.raises(BadInput, match="--shards sideways"):
        partition(y, 2, "sideways")
    with pytest.raises(BadInput, match="without data"):
        partition(y, 11, "by-class")  # 10 classes, 11 clients


def test_every_client_runs_the_same_int8_model(federation: Path) -> None:
    exports = federation_exports(federation)
    first = [op for op in template(exports[0]) if hasattr(op, "master_w")]
    for e in exports[1:]:
        other = [op for op in template(e) if hasattr(op, "master_w")]
        for a, b in zip(first, other, strict=True):
            assert np.array_equal(a.w, b.w) and a.in_scale == b.in_scale
    hashes = {e.manifest["model_hash"] for e in exports}
    assert len(hashes) == K  # each holds its own data: its own image
    # and its own pairing key, in its image and in the host's copy
    keys = [(e.path / "pairing.key").read_text().strip() for e in exports]
    assert len(set(keys)) == K and all(len(k) == 64 for k in keys)
    for e, k in zip(exports, keys, strict=True):
        c = (e.path / "pairing_key.c").read_text()
        assert ", ".join(f"0x{b:02x}" for b in bytes.fromhex(k)[:8]) in c
        assert (e.path / "pairing.key").stat().st_mode & 0o077 == 0  # owner only


def test_averaging_identical_states_changes_nothing(federation: Path) -> None:
    from tinysplit.host.training.weights import state_image

    layers = template(federation_exports(federation)[0])
    image = state_image(layers)
    avg, _ = average_states(layers, [image, image, image], [3, 1, 2])
    assert avg == image


class _Drops:
    """Client 1 goes away before its `at`-th forward pass and comes back at the `back`-th time
    it is asked again: `kill` takes the board down, `revive` gives a new client."""

    def __init__(self, link: Any, at: int, back: int, kill: Callable[[], None],
                 revive: Callable[[], Any]) -> None:  # fmt: skip
        self.link, self.at, self.back = link, at, back
        self.kill, self.revive = kill, revive
        self.forwards = self.asked = 0

    def wrap(self) -> Any:
        drops = self

        class Link:
            def __getattr__(self, name: str) -> Any:
                return getattr(drops.link, name)

            def forward(self, *args: Any) -> Any:
                drops.forwards += 1
                if drops.forwards == drops.at:
                    drops.kill()
                return drops.link.forward(*args)

        return Link()

    def reconnect(self) -> Any:
        self.asked += 1
        return self.revive() if self.asked >= self.back else None


def _members(links: list[Any], reconnect: Callable[[], Any] | None) -> list[Member]:
    return [
        Member(k, link, Schedule(link.n_train, CFG.batch, CFG.epochs, CFG.seed + k),
               reconnect if k == 1 else None)
        for k, link in enumerate(links)
    ]  # fmt: skip


def _golden_run(federation: Path, at: int, back: int, schedule: str) -> tuple[Any, list[bytes]]:
    exports = federation_exports(federation)
    clients = [GoldenClient(load_client_state(e.path)) for e in exports]

    def kill() -> None:
        def gone(*args: Any) -> Any:
            raise BoardSilent("the golden board 'died'")

        clients[1].forward = gone  # type: ignore[method-assign]

    def revive() -> Any:
        clients[1] = GoldenClient(load_client_state(exports[1].path))
        return clients[1]

    drops = _Drops(clients[1], at, back, kill, revive)
    links: list[Any] = [clients[0], drops.wrap(), clients[2]]
    server = ServerSegment.load(exports[0].path / "server.keras", CFG.lr)
    res = federated_train(_members(links, drops.reconnect), server, CFG, template(exports[0]),
                          schedule=schedule)  # fmt: skip
    return res, [c.pull_state() for c in clients] + [_server_bytes(server)]


def _server_bytes(server: ServerSegment) -> bytes:
    return b"".join(np.asarray(v).tobytes() for v in server.model.weights)


@contextlib.contextmanager
def _boards(federation: Path) -> Iterator[tuple[list[Any], list[contextlib.ExitStack], list[Path]]]:
    exports = federation_exports(federation)
    images = [build_firmware("native", e.path) for e in exports]
    stacks = [contextlib.ExitStack() for _ in exports]
    links = []
    try:
        for e, image, stack in zip(exports, images, stacks, strict=True):
            url = stack.enter_context(native_board(image))
            port = open_port(url, timeout=0.05)
            stack.callback(port.close)
            link = ClientLink(port, timeouts=FAST, **e.link_key())
            link.hello(e.model_hash)
            links.append(link)
        yield links, stacks, images
    finally:
        for stack in stacks:
            stack.close()


@pytest.mark.parametrize("schedule", ["splitfed", "sequential"])
def test_native_boards_with_a_drop_out_and_rejoin_equal_the_golden_replay(
    federation: Path, schedule: str
) -> None:
    """Client 1's board is killed mid-run; the others go on; a new board takes its place when
    asked again and gets the current weights; the run names both events, and every board's
    final state and the server's weights equal the golden replay of the same schedule."""
    at, back = (20, 3) if schedule == "splitfed" else (5, 1)
    exports = federation_exports(federation)
    with _boards(federation) as (links, stacks, images):
        revived: list[contextlib.ExitStack] = []

        def kill() -> None:
            stacks[1].close()

        def revive() -> Any:
            stack = contextlib.ExitStack()
            revived.append(stack)
            url = stack.enter_context(native_board(images[1]))
            port = open_port(url, timeout=0.05)
            stack.callback(port.close)
            link = ClientLink(port, timeouts=FAST, **exports[1].link_key())
            link.hello(exports[1].model_hash)
            links[1] = link
            return link

        drops = _Drops(links[1], at, back, kill, revive)
        wrapped = [links[0], drops.wrap(), links[2]]
        server = ServerSegment.load(exports[0].path / "server.keras", CFG.lr)
        try:
            res = federated_train(_members(wrapped, drops.reconnect), server, CFG,
                                  template(exports[0]), schedule=schedule)  # fmt: skip
            board = [link.pull_state() for link in links] + [_server_bytes(server)]
        finally:
            for stack in revived:
                stack.close()
    golden, replay = _golden_run(federation, at, back, schedule)
    seen = [(e.step, e.client, e.what) for e in res.events]
    assert [w for _, c, w in seen] == ["drop-out", "rejoin"] and {c for _, c, _ in seen} == {1}
    assert seen == [(e.step, e.client, e.what) for e in golden.events]
    for k, (a, b) in enumerate(zip(board, replay, strict=True)):
        assert a == b, f"{'server' if k == K else f'client {k}'} differs from the golden replay"
    assert res.history[-1].test_accuracy == golden.history[-1].test_accuracy
    assert res.history[-1].test_accuracy > 0.2  # it learns (10 classes: chance is 0.1)


@pytest.mark.parametrize("schedule", ["splitfed", "sequential"])
def test_a_run_resumed_from_an_epoch_checkpoint_ends_as_the_uninterrupted_one(
    federation: Path, schedule: str
) -> None:
    from tinysplit.host.training.checkpoint import capture_server, restore_server

    exports = federation_exports(federation)
    cfg = TrainConfig(epochs=3, batch=32, lr=0.1, seed=0)

    def run(resume: Any = None, server: Any = None, keep: Any = None) -> tuple[Any, list[Any]]:
        clients = [GoldenClient(load_client_state(e.path)) for e in exports]
        members = [Member(k, c, Schedule(c.n_train, cfg.batch, cfg.epochs, k))
                   for k, c in enumerate(clients)]  # fmt: skip
        server = server or ServerSegment.load(exports[0].path / "server.keras", cfg.lr)
        res = federated_train(members, server, cfg, template(exports[0]), schedule=schedule,
                              keep=keep, resume=resume)  # fmt: skip
        return res, [c.pull_state() for c in clients] + [_server_bytes(server)]

    full, full_state = run()
    kept: dict[int, Any] = {}
    server = ServerSegment.load(exports[0].path / "server.keras", cfg.lr)
    run(server=server, keep=lambda ck: kept.setdefault(ck.epoch, (ck, capture_server(server))))
    ck, (weights, optimizer) = kept[1]
    fresh = ServerSegment.load(exports[0].path / "server.keras", cfg.lr)
    restore_server(fresh, weights, optimizer)
    resumed, resumed_state = run(resume=ck, server=fresh)
    assert resumed_state == full_state
    assert resumed.history == full.history and resumed.samples == full.samples


def test_train_resumes_a_federation_run_from_its_run_dir(federation: Path, tmp_path: Path) -> None:
    """`tinysplit train --model-dir FED --board native --run-dir D`, then `--resume D --previous`
    (from the checkpoint before the last epoch): the same final accuracy."""
    import contextlib as _c
    import io
    import json

    from tinysplit.host.cli import main

    def cli(argv: list[str]) -> Any:
        out = io.StringIO()
        with _c.redirect_stdout(out):
            assert main(argv) == 0
        return json.loads(out.getvalue())

    base = ["train", "--model-dir", str(federation), "--board", "native", "--json"]
    first = cli([*base, "--epochs", "2", "--run-dir", str(tmp_path / "run")])
    again = cli([*base, "--resume", str(tmp_path / "run"), "--previous"])
    assert again["split_accuracy"] == first["split_accuracy"]
    assert again["history"] == first["history"]
