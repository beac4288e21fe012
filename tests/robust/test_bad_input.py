"""Bad input on the link and around checkpoints: each is one line on stderr (`error: ...`),
exit status 2, no traceback — and nothing is lost: a checkpoint that existed still loads."""

from __future__ import annotations

import json
import resource
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from robust_support import assert_one_line_error, fake_board, interrupt_at, tinysplit

from tinysplit.core.protocol import VERSION, Frame, Hello, MsgType, cobs_encode, encode_message
from tinysplit.host import cli
from tinysplit.host.board.launch import native_board, open_port
from tinysplit.host.training.checkpoint import Checkpoint, RunConfig, RunDir


def train(model_dir: Path, run_dir: Path, *args: str) -> list[str]:
    return ["train", "--model-dir", str(model_dir), "--run-dir", str(run_dir), "--no-baseline",
            *args]  # fmt: skip


def test_port_missing(digits_export: Path, tmp_path: Path) -> None:
    out = tinysplit(*train(digits_export, tmp_path / "run", "--port", "/dev/ttyNOPE9"))
    assert_one_line_error(out, "/dev/ttyNOPE9", "no such port")
    assert not (tmp_path / "run").exists()


def test_port_busy(digits_export: Path, robust_native: Path, tmp_path: Path) -> None:
    with native_board(robust_native) as pty, open_port(pty, timeout=0.1):
        out = tinysplit(*train(digits_export, tmp_path / "run", "--port", pty))
    assert_one_line_error(out, pty, "port busy")


def test_board_silent(digits_export: Path, tmp_path: Path) -> None:
    with fake_board(lambda frame: b"") as url:
        out = tinysplit(
            *train(digits_export, tmp_path / "run", "--port", url, "--silence-timeout", "1")
        )
    assert_one_line_error(out, "sent nothing for 1 s", "HELLO_REQ")


def other_version(frame: Frame) -> bytes:
    body = struct.pack("<HBBIIHH", 0x5354, 9, MsgType.HELLO, 7, frame.header.step, 0, 0)
    return cobs_encode(body + struct.pack("<I", zlib.crc32(body))) + b"\x00"


def test_wrong_protocol_version(digits_export: Path, tmp_path: Path) -> None:
    with fake_board(other_version) as url:
        out = tinysplit(*train(digits_export, tmp_path / "run", "--port", url))
    assert_one_line_error(out, "protocol v9", f"this host v{VERSION}")


def test_wrong_model_hash(digits_export: Path, tmp_path: Path) -> None:
    def hello(frame: Frame) -> bytes:
        msg = Hello(VERSION, 1024, bytes.fromhex("0011223344556677"), 10, 10, 32, 32, 0, 0, 0,
                    0, "fake")  # fmt: skip
        return encode_message(msg, 0x1234, frame.header.step)

    manifest = json.loads((digits_export / "manifest.json").read_text())
    with fake_board(hello) as url:
        out = tinysplit(*train(digits_export, tmp_path / "run", "--port", url))
    assert_one_line_error(out, "0011223344556677", manifest["model_hash"])


def test_oversize_frames_only(digits_export: Path, tmp_path: Path) -> None:
    """A board (or a wrong baud rate) that sends only frames too long to be one."""
    with fake_board(lambda frame: b"\x01" * 3000 + b"\x00") as url:
        out = tinysplit(
            *train(digits_export, tmp_path / "run", "--port", url, "--silence-timeout", "1")
        )
    assert_one_line_error(out, "no valid frame", "oversize", "baud rate")


def test_nan_gradient_is_refused_before_the_board(nan_server_export: Path, tmp_path: Path) -> None:
    """A server segment that makes the loss NaN: refused before anything is sent; the run's
    checkpoint (step 0) is intact."""
    export = nan_server_export
    run = tmp_path / "run"
    out = tinysplit(*train(export, run, "--board", "native"))
    assert_one_line_error(
        out, "step 1:", "not finite", "nothing was sent", "last checkpoint: step 0"
    )
    ck, _ = RunDir(run).load()
    assert ck.step == 0 and not ck.finished


def fake_checkpoint(run: Path, model_dir: Path, model_hash: str) -> None:
    config = RunConfig("digits-mlp", model_hash, str(model_dir), 1, 32, 0.1, 0, None, 10, False)
    ck = Checkpoint(3, {"step": 3}, [np.zeros(2, np.float32)], [], 0, bytes(8), 4, np.arange(5))
    RunDir(run).save(ck, config)


def test_checkpoint_of_another_model(digits_export: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    fake_checkpoint(run, digits_export, "0011223344556677")
    manifest = json.loads((digits_export / "manifest.json").read_text())
    out = tinysplit("train", "--resume", str(run), "--no-baseline")
    assert_one_line_error(out, "0011223344556677", manifest["model_hash"], "--model-dir")
    assert RunDir(run).load()[0].step == 3


def test_resume_without_a_checkpoint(tmp_path: Path) -> None:
    out = tinysplit("train", "--resume", str(tmp_path), "--no-baseline")
    assert_one_line_error(out, str(tmp_path), "no tinysplit checkpoint")


def test_new_run_into_a_run_directory(digits_export: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    fake_checkpoint(run, digits_export, "0011223344556677")
    out = tinysplit(*train(digits_export, run, "--board", "native"))
    assert_one_line_error(out, "already holds", "--resume")


def test_disk_full_while_checkpointing(digits_export: Path, tmp_path: Path) -> None:
    """The file system refuses the next checkpoint's bytes mid-write (here: a file size limit,
    the same failed write() a full disk gives): one line, and the previous checkpoint is the
    current one, loadable, with no partial file left beside it."""
    run = tmp_path / "run"
    watcher = interrupt_at(run, 4)  # Ctrl-C once a checkpoint past step 4 is written
    args = train(digits_export, run, "--board", "native", "--checkpoint-every", "4")
    assert cli.main(args) == 130
    watcher.join()
    before = RunDir(run).load()[0]
    limit = 16 * 1024  # an arrays file is ~29 KB

    def small_files() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    out = subprocess.run(
        [sys.executable, "-m", "tinysplit.host.cli", "train", "--resume", str(run),
         "--no-baseline"],
        capture_output=True, text=True, timeout=300, check=False, preexec_fn=small_files,
    )  # fmt: skip
    assert_one_line_error(
        out, "cannot write a checkpoint", f"previous checkpoint (step {before.step}) is intact"
    )
    after = RunDir(run).load()[0]
    assert after.step == before.step and after.client_state == before.client_state
    assert not [p for p in run.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.parametrize("bad", ["--checkpoint-every=0", "--silence-timeout=0"])
def test_bad_run_options(digits_export: Path, tmp_path: Path, bad: str) -> None:
    out = tinysplit(*train(digits_export, tmp_path / "run", "--board", "native", bad))
    assert_one_line_error(out, bad.split("=")[0])


def test_a_port_that_echoes_is_named_not_waited_on(digits_export: Path, tmp_path: Path) -> None:
    """A loopback adapter (TX wired to RX) sends the host its own HELLO_REQ back: one line
    that says so, at once, instead of waiting on it (issue "Careless and hostile input" #2)."""
    from tinysplit.core.protocol import encode_frame

    def echo(frame: Frame) -> bytes:
        h = frame.header
        return encode_frame(h.type, h.session, h.step, h.seq, frame.payload)

    with fake_board(echo) as url:
        out = tinysplit(
            *train(digits_export, tmp_path / "run", "--port", url, "--silence-timeout", "3"),
            timeout=60,
        )
    assert_one_line_error(out, "echoes what it is sent", "HELLO_REQ")
    assert not (tmp_path / "run").exists()


def test_damaged_checkpoint_names_the_intact_one_before_it(
    digits_export: Path, tmp_path: Path
) -> None:
    """The last checkpoint's state file damaged: one line that names the checkpoint before it
    (kept beside it), and `--resume --previous` goes on from that one (issue "Careless and
    hostile input" #8)."""
    run = tmp_path / "run"
    watcher = interrupt_at(run, 6)
    assert (
        cli.main(train(digits_export, run, "--board", "native", "--checkpoint-every", "2")) == 130
    )
    watcher.join()
    meta = json.loads((run / "checkpoint.json").read_text())
    state = run / meta["arrays"]
    data = bytearray(state.read_bytes())
    data[len(data) // 2] ^= 0xFF
    state.write_bytes(bytes(data))
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    out = tinysplit("train", "--resume", str(run), "--no-baseline")
    line = assert_one_line_error(out, "damaged", f"step {meta['previous']['step']}", "--previous")
    assert f"tinysplit train --resume {run} --previous" in line
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before
    out = tinysplit("train", "--resume", str(run), "--previous", "--max-steps",
                    str(meta["step"] + 4), "--no-baseline", "--json")  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    ck, _ = RunDir(run).load()
    assert ck.finished and ck.step == meta["step"] + 4
