"""Checkpoints of a split-training run, and putting both sides back to one.

A checkpoint is everything the run needs to go on exactly where it stopped: the server
segment's weights and optimizer state, the client's state image (pulled from the board; not in
--private runs, which keep only its CRC), the step, the data order and the epoch's running
loss/accuracy. RUN_DIR holds:

    checkpoint.json           which arrays file is current, its SHA-256, the run's config and
                              progress (JSON)
    state-<step>-<tag>.npz    the arrays (numpy, loaded with allow_pickle=False)

Writing is atomic: the arrays file is written under a temporary name, flushed and renamed, then
checkpoint.json the same way. Until that last rename the previous checkpoint is the current
one, and its arrays file is kept, so a crash or a full disk at any moment leaves a loadable
checkpoint. Nothing is pickled.

Keeper restores a board and the server to the same committed step: after a reboot (the board
lost its RAM), on --resume, or when the board lost the step in flight.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import io
import json
import os
import secrets
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import numpy.typing as npt

from tinysplit.core.errors import BadInput, ModelMismatch, ProtocolError, TinysplitError
from tinysplit.core.protocol import BoardState, Status
from tinysplit.host.transport.link import BoardReset, StepLost

if TYPE_CHECKING:
    from tinysplit.host.training.server import ServerSegment

FORMAT = "tinysplit-checkpoint/1"
META_FILE = "checkpoint.json"
#: Recoveries in a row without a step committed in between before the run gives up.
MAX_RECOVERIES_WITHOUT_PROGRESS = 8


class CheckpointError(TinysplitError):
    """A checkpoint could not be written (the previous one is intact) or read."""


class PrivateRecoveryImpossible(TinysplitError):
    """A --private run lost the client's weights (reboot): the host has no copy to restore."""


class RecoverableClient(Protocol):
    """A client the keeper can checkpoint and restore: ClientLink."""

    weights_size: int | None

    def hello(self, expected_hash: bytes | None = None) -> Any: ...
    def sync(self, committed: int) -> Status: ...
    def pull_state(self) -> bytes: ...
    def push_state(self, image: bytes, step: int, weights_crc: int) -> Status: ...


@dataclass
class Checkpoint:
    """One committed step of a run."""

    step: int
    progress: dict[str, Any]  # trainer.TrainState.to_json()
    server_weights: list[npt.NDArray[Any]]
    optimizer: list[npt.NDArray[Any]]
    client_crc: int  # CRC-32 of the client's weight blob at `step` (STEP_DONE's)
    client_state: bytes | None  # the client's state image; None in --private runs
    weights_size: int  # bytes of the weight blob at the start of client_state
    order: npt.NDArray[np.int64]  # the data order (permutation) of the checkpoint's epoch
    finished: bool = False


@dataclass
class RunConfig:
    """What a run is: written into every checkpoint, checked on --resume."""

    model: str
    model_hash: str
    model_dir: str
    epochs: int
    batch: int
    lr: float
    seed: int
    max_steps: int | None
    checkpoint_every: int
    private: bool
    board: str | None = None
    sealed: bool = False  # the board seals its state image (an export made with --private)
    port: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return dict(vars(self))

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunConfig:
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})


def capture_server(server: ServerSegment) -> tuple[list[npt.NDArray[Any]], list[npt.NDArray[Any]]]:
    """Copies of the server segment's weights and its optimizer's variables."""
    weights = [np.array(v.numpy()) for v in server.model.weights]
    optimizer = [np.array(v.numpy()) for v in server.optimizer.variables]
    return weights, optimizer


def restore_server(
    server: ServerSegment, weights: list[npt.NDArray[Any]], optimizer: list[npt.NDArray[Any]]
) -> None:
    """Puts the server segment back to captured weights and optimizer state, bit for bit."""
    targets = list(server.model.weights)
    if len(targets) != len(weights) or any(
        tuple(t.shape) != a.shape for t, a in zip(targets, weights, strict=True)
    ):
        raise ModelMismatch(
            "the checkpoint's server weights do not fit this export's server.keras (another model?)"
        )
    for t, a in zip(targets, weights, strict=True):
        t.assign(a)
    if not server.optimizer.built:
        server.optimizer.build(server.model.trainable_variables)
    slots = list(server.optimizer.variables)
    if len(slots) != len(optimizer):
        raise ModelMismatch("the checkpoint's optimizer state does not fit this server segment")
    for t, a in zip(slots, optimizer, strict=True):
        t.assign(a)


class RunDir:
    """A run directory: the current checkpoint, written atomically."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def exists(self) -> bool:
        return (self.path / META_FILE).is_file()

    # -- writing ----------------------------------------------------------------------------
    @staticmethod
    def _write_file(path: Path, data: bytes) -> None:
        """data into path under a temporary name, flushed to disk, then renamed into place."""
        tmp = path.with_name(f".{path.name}.tmp")
        try:
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise

    def _fsync_dir(self) -> None:
        with contextlib.suppress(OSError):
            fd = os.open(self.path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    def save(self, ck: Checkpoint, config: RunConfig) -> None:
        """Writes ck as the current checkpoint. CheckpointError (one line) if it cannot; the
        previous checkpoint stays current and loadable. The new one records the one before it
        (its state file is kept), for `train --resume --previous` if the new one is damaged."""
        previous = self._current_arrays()
        previous_meta = self._current_meta()
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            arrays: dict[str, npt.NDArray[Any]] = {"order": np.asarray(ck.order, np.int64)}
            for i, w in enumerate(ck.server_weights):
                arrays[f"server_{i}"] = w
            for i, v in enumerate(ck.optimizer):
                arrays[f"optimizer_{i}"] = v
            if ck.client_state is not None:
                arrays["client_state"] = np.frombuffer(ck.client_state, dtype=np.uint8)
            buf = io.BytesIO()
            np.savez(buf, **arrays)  # type: ignore[arg-type]
            blob = buf.getvalue()
            name = f"state-{ck.step:08d}-{secrets.token_hex(3)}.npz"
            self._write_file(self.path / name, blob)
            meta = {
                "format": FORMAT,
                "step": ck.step,
                "finished": ck.finished,
                "arrays": name,
                "arrays_sha256": hashlib.sha256(blob).hexdigest(),
                "n_server": len(ck.server_weights),
                "n_optimizer": len(ck.optimizer),
                "client_crc": f"{ck.client_crc:08x}",
                "weights_size": ck.weights_size,
                "config": config.to_json(),
                "progress": ck.progress,
            }
            if previous_meta is not None:
                meta["previous"] = previous_meta
            self._write_file(self.path / META_FILE, json.dumps(meta, indent=1).encode())
            self._fsync_dir()
        except OSError as exc:
            where = f"step {previous[1]}" if previous else "none yet"
            raise CheckpointError(
                f"cannot write a checkpoint to {self.path}: {exc.strerror or exc}; the previous "
                f"checkpoint ({where}) is intact — free space and resume with "
                f"`tinysplit train --resume {self.path}`"
            ) from exc
        self._prune(keep={name, previous[0] if previous else name})

    def _current_meta(self) -> dict[str, Any] | None:
        try:
            meta = json.loads((self.path / META_FILE).read_text())
        except (OSError, ValueError):
            return None
        if not isinstance(meta, dict):
            return None
        meta.pop("previous", None)
        return meta

    def _current_arrays(self) -> tuple[str, int] | None:
        try:
            meta = json.loads((self.path / META_FILE).read_text())
            return str(meta["arrays"]), int(meta["step"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def _prune(self, keep: set[str]) -> None:
        """Removes arrays files of older checkpoints (the current and the previous stay)."""
        for p in self.path.glob("state-*.npz"):
            if p.name not in keep:
                with contextlib.suppress(OSError):
                    p.unlink()

    # -- reading ----------------------------------------------------------------------------
    def load(self, previous: bool = False) -> tuple[Checkpoint, RunConfig]:
        """The current checkpoint (previous: the one before it); BadInput (one line) if RUN_DIR
        holds none or it is damaged, naming the one before it when that one is intact."""
        meta_path = self.path / META_FILE
        if not meta_path.is_file():
            raise BadInput(
                f"{self.path} holds no tinysplit checkpoint (no {META_FILE}): give the "
                "--run-dir of an earlier `tinysplit train`"
            )
        try:
            meta = json.loads(meta_path.read_text())
            if not isinstance(meta, dict):
                raise ValueError("not a JSON object")
        except (OSError, ValueError) as exc:
            raise BadInput(f"cannot read the checkpoint in {self.path}: {exc}") from exc
        if previous:
            if not isinstance(meta.get("previous"), dict):
                raise BadInput(f"{self.path} records no checkpoint before step {meta.get('step')}")
            return self._load_meta(meta["previous"])
        try:
            return self._load_meta(meta)
        except BadInput as damaged:
            older = meta.get("previous")
            if isinstance(older, dict):
                try:
                    self._load_meta(older)
                except BadInput:
                    raise damaged from None
                raise BadInput(
                    f"{damaged}; the checkpoint before it (step {older.get('step')}) is intact: "
                    f"`tinysplit train --resume {self.path} --previous` goes on from there"
                ) from None
            raise

    def _load_meta(self, meta: dict[str, Any]) -> tuple[Checkpoint, RunConfig]:
        meta_path = self.path / META_FILE
        try:
            if meta.get("format") != FORMAT:
                raise BadInput(
                    f"{meta_path} is a checkpoint of format {meta.get('format')!r}, this "
                    f"tinysplit reads {FORMAT!r}"
                )
            blob = (self.path / meta["arrays"]).read_bytes()
            if hashlib.sha256(blob).hexdigest() != meta["arrays_sha256"]:
                raise BadInput(f"{self.path / meta['arrays']} is damaged (SHA-256 mismatch)")
            with np.load(io.BytesIO(blob), allow_pickle=False) as z:
                server = [z[f"server_{i}"] for i in range(int(meta["n_server"]))]
                optimizer = [z[f"optimizer_{i}"] for i in range(int(meta["n_optimizer"]))]
                client = z["client_state"].tobytes() if "client_state" in z.files else None
                order = z["order"]
            ck = Checkpoint(
                step=int(meta["step"]),
                progress=dict(meta["progress"]),
                server_weights=server,
                optimizer=optimizer,
                client_crc=int(meta["client_crc"], 16),
                client_state=client,
                weights_size=int(meta["weights_size"]),
                order=order,
                finished=bool(meta["finished"]),
            )
            return ck, RunConfig.from_json(meta["config"])
        except BadInput:
            raise
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise BadInput(f"cannot read the checkpoint in {self.path}: {exc}") from exc


def put_client_state(
    link: RecoverableClient, ck: Checkpoint, say: Callable[[str], None] = lambda text: None
) -> bool:
    """Makes the board's state the checkpoint's: SYNC, and if its weights differ, push the
    checkpoint's image (not in --private runs: there the board must still hold them). True if
    it pushed."""
    status = link.sync(ck.step)
    if status.state != BoardState.LOADING and status.weights_crc == ck.client_crc:
        return False
    if ck.client_state is None:
        raise PrivateRecoveryImpossible(
            f"the board's weights (CRC {status.weights_crc:08x}) are not the ones of step "
            f"{ck.step} ({ck.client_crc:08x}) — it rebooted or trained on — and with "
            "--private this host keeps no copy of them to restore: start a new run, or "
            "run without --private so the host can restore the board"
        )
    say(f"restoring the client's weights of step {ck.step} on the board")
    link.push_state(ck.client_state, ck.step, ck.client_crc)
    return True


@dataclass
class KeeperEvents:
    recoveries: int = 0
    checkpoints: int = 0
    pushes: int = 0


class Keeper:
    """Checkpoints a run every `every` steps (and when asked), and restores both sides to the
    last checkpoint when the board lost its state.

    `run` may be None: checkpoints are then kept in memory only (recovery still works, a
    restart of the host does not)."""

    def __init__(
        self,
        run: RunDir | None,
        config: RunConfig,
        *,
        expected_hash: bytes,
        say: Callable[[str], None] = lambda text: None,
    ) -> None:
        self.run = run
        self.config = config
        self.every = max(1, config.checkpoint_every)
        self.private = config.private
        self.sealed = config.sealed
        self.expected_hash = expected_hash
        self.say = say
        self.last: Checkpoint | None = None
        self.events = KeeperEvents()
        self._without_progress = 0
        self._high_water = -1

    # -- checkpoints ------------------------------------------------------------------------
    def checkpoint(
        self,
        link: RecoverableClient,
        server: ServerSegment,
        step: int,
        progress: dict[str, Any],
        client_crc: int,
        order: npt.NDArray[np.int64],
        *,
        finished: bool = False,
    ) -> Checkpoint:
        """Takes a checkpoint of the committed step `step` (both sides must be at it)."""
        image = None
        weights_size = self.last.weights_size if self.last is not None else 0
        if not self.private or self.sealed:  # a sealed image: opaque to this host, kept as is
            image = link.pull_state()
            weights_size = int(link.weights_size or 0)
            if not self.sealed and zlib.crc32(image[:weights_size]) != client_crc:
                raise ProtocolError(
                    f"the client's weights read back at step {step} do not have the CRC the "
                    f"board reported for it ({client_crc:08x}): they changed behind the host"
                )
        weights, optimizer = capture_server(server)
        ck = Checkpoint(
            step=step,
            progress=copy.deepcopy(progress),
            server_weights=weights,
            optimizer=optimizer,
            client_crc=client_crc,
            client_state=image,
            weights_size=weights_size,
            order=np.asarray(order, dtype=np.int64),
            finished=finished,
        )
        if self.run is not None:
            self.run.save(ck, self.config)
        self.last = ck
        self.events.checkpoints += 1
        self._progress(step)
        return ck

    def due(self, step: int) -> bool:
        """Checkpoint now? Every `every` steps, and — after a recovery — at the first step
        past where the run had got, so the next recovery need not go back as far."""
        return step % self.every == 0 or (self._without_progress > 0 and step > self._high_water)

    def committed(self, step: int) -> None:
        """The trainer committed `step` (call before due())."""
        if step > self._high_water and self._without_progress == 0:
            self._high_water = step
        # after a recovery due() says checkpoint at the first new step; checkpoint() then
        # counts it as progress

    def _progress(self, step: int) -> None:
        if step > self._high_water:
            self._high_water = step
            self._without_progress = 0

    # -- restoring --------------------------------------------------------------------------
    def restore_client(self, link: RecoverableClient, ck: Checkpoint) -> None:
        """Makes the board's state the checkpoint's (put_client_state)."""
        if put_client_state(link, ck, self.say):
            self.events.pushes += 1

    def restore(self, link: RecoverableClient, server: ServerSegment, ck: Checkpoint) -> None:
        """Both sides to checkpoint ck: a fresh HELLO (the board may have rebooted), the
        client's state, then the server's."""
        for _ in range(MAX_RECOVERIES_WITHOUT_PROGRESS):
            try:
                link.hello(self.expected_hash)
                self.restore_client(link, ck)
                break
            except (BoardReset, StepLost):
                continue
        else:
            raise ProtocolError(f"could not restore the board to step {ck.step}: it kept rebooting")
        restore_server(server, ck.server_weights, ck.optimizer)
        # The optimizer's state holds its learning rate; a run resumed with another --lr
        # trains on with that one (the same float32 when it did not change).
        server.optimizer.learning_rate.assign(self.config.lr)

    def recover(
        self, link: RecoverableClient, server: ServerSegment, error: TinysplitError
    ) -> Checkpoint:
        """After BoardReset / StepLost: both sides back to the last checkpoint."""
        ck = self.last
        assert ck is not None, "Keeper.checkpoint() before training"
        self._without_progress += 1
        if self._without_progress > MAX_RECOVERIES_WITHOUT_PROGRESS:
            raise ProtocolError(
                f"the board lost its state {self._without_progress} times without completing "
                f"a step ({error}): check its power supply and cable"
            )
        if ck.client_state is None:
            # --private: only a board that still holds step ck.step can go on.
            self.say(f"{error}; checking the board still holds step {ck.step}")
        else:
            self.say(f"{error}; restoring both sides to step {ck.step}")
        self.restore(link, server, ck)
        self.events.recoveries += 1
        return ck
