"""After training: `tinysplit infer` (split inference, timed per sample) and `tinysplit
export-model` (the whole model as Keras and int8 .tflite), on a short native run."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tinysplit.codegen.export import load_client_state
from tinysplit.core.errors import ProtocolError
from tinysplit.core.golden.step import cut_quant, ops_forward
from tinysplit.core.protocol import Eval, Split
from tinysplit.host.cli import main
from tinysplit.host.serving.infer import UNKNOWN, predict
from tinysplit.host.training.checkpoint import RunDir, put_client_state, restore_server
from tinysplit.host.training.session import Export, board_url, connect
from tinysplit.host.training.weights import load_state_image, state_image
from tinysplit.host.transport.link import SmashedBatch

STEPS = 60


def _cli_json(argv: list[str]) -> Any:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(argv) == 0
    return json.loads(out.getvalue())


@pytest.fixture(scope="module")
def trained(digits_export: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    run = tmp_path_factory.mktemp("serving") / "run"
    summary = _cli_json(
        ["train", "--board", "native", "--model-dir", str(digits_export), "--max-steps",
         str(STEPS), "--run-dir", str(run), "--no-baseline", "--json"]
    )  # fmt: skip
    return run, summary


def test_infer_accuracy_is_the_runs_and_timings_are_reported(
    digits_export: Path, trained: tuple[Path, Any]
) -> None:
    run, summary = trained
    r = _cli_json(
        ["infer", "--board", "native", "--model-dir", str(digits_export), "--run", str(run),
         "--json"]
    )  # fmt: skip
    assert r["samples"] == Export.load(digits_export).manifest["n_test"]
    assert r["accuracy"] == summary["split_accuracy"] == r["run_split_accuracy"]
    for part in ("device", "wire", "server"):
        assert r[part]["median_ms"] > 0 and r[part]["p95_ms"] >= r[part]["median_ms"], part
    assert r["bytes_to_host_per_sample"] > Export.load(digits_export).manifest["cut_size"]
    assert r["bytes_to_board_per_sample"] > 0


def test_infer_logits_are_bit_exact_with_golden_client_and_server(
    digits_export: Path, trained: tuple[Path, Any]
) -> None:
    """The board's cut activations equal the golden client's with the run's state image, and
    the logits equal the server segment's on those, sample by sample."""
    from tinysplit.host.training.server import ServerSegment

    run, _ = trained
    export = Export.load(digits_export)
    ck, config = RunDir(run).load()
    assert ck.client_state is not None
    state = load_client_state(digits_export)
    load_state_image(state.ops, ck.client_state)
    assert state_image(state.ops) == ck.client_state  # the loader reads every byte back
    golden = ops_forward(state.ops, state.x_test)
    server = ServerSegment.load(digits_export / "server.keras", config.lr)
    restore_server(server, ck.server_weights, ck.optimizer)
    n = len(state.y_test)
    with board_url("native", export) as url, connect(url, export) as (link, _):
        assert put_client_state(link, ck)  # the fresh board boots with the export's weights
        inference = predict(link, server, range(n), clock_hz=1e9, byte_counts=lambda: (0, 0))
        live, _ = link.timed_evaluate(int(Split.LIVE), 3, 4, 0x7000_0000)
    acts = np.stack(inference.acts)
    bad = np.argwhere(acts != golden)
    assert bad.size == 0, (
        f"sample {bad[0][0]} value {bad[0][1]}: board {acts[tuple(bad[0])]}, golden "
        f"{golden[tuple(bad[0])]}"
    )
    assert inference.labels == [int(y) for y in state.y_test]
    scale, zp, _, _ = cut_quant(state.ops)
    for i in range(n):
        one = SmashedBatch(golden[i : i + 1], np.zeros(1, np.int64), float(scale), zp)
        want = server.predict(one.dequantize())[0]
        got = inference.logits[i]
        assert want.tobytes() == got.tobytes(), f"sample {i}: logits {got} != {want}"
    # the default ts_board_read_sample serves the test shard
    assert np.array_equal(live.acts, golden[3:7])
    assert list(live.labels) == [int(y) for y in state.y_test[3:7]]
    assert UNKNOWN not in inference.labels


def test_board_refuses_unknown_eval_flags(digits_export: Path) -> None:
    export = Export.load(digits_export)
    with board_url("native", export) as url, connect(url, export) as (link, _):
        rid = 0x7100_0000
        with pytest.raises(ProtocolError, match="flags"):
            link._collect(  # the request a newer host could send: bits the board does not know
                "EVAL", rid, 1,
                lambda again: link.send(Eval(int(Split.TEST), 0, 1, 0x80), step=rid, again=again),
                link._step_error("EVAL", rid),
            )  # fmt: skip
        with pytest.raises(ProtocolError, match="live sample"):
            link.timed_evaluate(int(Split.LIVE), 60_000, 1, rid)


def test_export_model_tflite_within_one_point_of_split(
    digits_export: Path, trained: tuple[Path, Any], tmp_path: Path
) -> None:
    run, summary = trained
    out = tmp_path / "model"
    r = _cli_json(["export-model", str(run), "--out", str(out), "--json"])
    assert (out / "model.keras").is_file() and (out / "model.tflite").is_file()
    assert r["split_accuracy"] == summary["split_accuracy"]
    assert abs(r["tflite_accuracy"] - r["split_accuracy"]) <= 0.01, r
    assert abs(r["keras_accuracy"] - r["split_accuracy"]) <= 0.02, r
    # where it fits: TFLite Micro's own arena for the whole model against the export's board
    fit = r["board_fit"]
    assert fit["board"] == Export.load(digits_export).manifest["board"]
    assert 0 < fit["arena_bytes"] < fit["ram_bytes"] and fit["model_bytes"] == r["tflite_bytes"]
    assert fit["fits"] is True
    # again into the same folder: replaced; into a folder of other files: refused, untouched
    _cli_json(["export-model", str(run), "--out", str(out), "--json"])
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        assert main(["export-model", str(run), "--out", str(other)]) == 2
    assert err.getvalue().startswith("error: --out") and "other files" in err.getvalue()
    assert [p.name for p in other.iterdir()] == ["notes.txt"]
