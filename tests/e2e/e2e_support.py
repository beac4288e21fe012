"""Shared by the end-to-end tests: run a few split-training steps against a board and record
everything the host sent, so a test can replay it through the numpy golden model."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

from tinysplit.host.board.launch import open_port
from tinysplit.host.training.schedule import schedule
from tinysplit.host.training.server import ServerSegment
from tinysplit.host.training.session import Export
from tinysplit.host.training.trainer import quantize_cut_gradient
from tinysplit.host.training.weights import ClientLayerWeights, parse_blob
from tinysplit.host.transport.link import ClientLink


@dataclass
class StepRecord:
    indices: npt.NDArray[np.int64]
    smashed: npt.NDArray[np.int8]
    scale: float
    zero_point: int
    grads: npt.NDArray[np.int8]
    grad_scales: npt.NDArray[np.float32]
    weights_crc: int


@dataclass
class Run:
    steps: list[StepRecord] = field(default_factory=list)
    blob: bytes = b""
    board: str = ""
    layers: list[ClientLayerWeights] = field(default_factory=list)


def run_steps(
    url: str, export_dir: Path, n_steps: int, *, lr: float = 0.1, batch: int = 32, seed: int = 0
) -> Run:
    export = Export.load(export_dir)
    server = ServerSegment.load(export_dir / "server.keras", lr)
    port = open_port(url, timeout=0.05)
    run = Run()
    try:
        link = ClientLink(port, **export.link_key())
        hello = link.hello(export.model_hash)
        run.board = hello.board
        for s in schedule(hello.n_train, batch, epochs=100, seed=seed):
            if s.step > n_steps:
                break
            sm = link.forward(s.step, lr, s.indices)
            loss, grad, _ = server.train_step(sm.dequantize(), sm.labels)
            q, scales = quantize_cut_gradient(grad, loss, s.step, sm)
            done = link.backward(s.step, q, scales)
            run.steps.append(
                StepRecord(
                    s.indices, sm.acts.copy(), sm.scale, sm.zero_point, q, scales, done.weights_crc
                )
            )
        run.blob = link.pull_weights()
    finally:
        port.close()
    if all(lay.get("kind", "fc") == "fc" for lay in export.manifest["layers"]):
        run.layers = parse_blob(run.blob, export.manifest["layers"])
    return run
