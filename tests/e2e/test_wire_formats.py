"""--wire: the coded wire formats on real firmware. Each run's SMASHED_PACKED activations and the
weights after every step equal the numpy golden model fed the same gradients (the golden model
learns the codec: core/protocol/wire.py on_the_wire, core/golden quantize_gradient_packed), on
the emulated Cortex-M4; and `sparse`, which leaves out only what the board's ReLU would stop,
trains to the very weights int8 does, bit for bit."""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import numpy as np
import pytest
from e2e_support import Run, run_steps

from tinysplit.codegen.export import export_client, load_client_state
from tinysplit.core.errors import BadInput
from tinysplit.core.golden.step import cut_quant, ops_forward, ops_train_step
from tinysplit.core.protocol.wire import GRADS4, SPARSE, on_the_wire, wire_bits
from tinysplit.host.board.build import build_firmware
from tinysplit.host.training.weights import first_blob_difference, ops_blob

LR = 0.05
STEPS = 3


def _run(board: str, workload: str, wire: str, out: Path, batch: int) -> tuple[Run, Path]:
    from tinysplit.host.board.launch import native_board, qemu_board

    export_client(workload, None, out / "export", seed=0, wire=wire)
    image = build_firmware(board, out / "export", out / "build")
    launch = native_board if board == "native" else qemu_board
    with launch(image) as url:
        return run_steps(url, out / "export", STEPS, lr=LR, batch=batch), image


def _replay(export_dir: Path, run: Run, wire: str) -> None:
    """The golden model fed the run's gradients: every activation the host got and the weights
    after every step."""
    bits = wire_bits(wire)
    state = load_client_state(export_dir)
    assert state.wire == bits
    initial = ops_blob(state.ops)
    for i, rec in enumerate(run.steps, start=1):
        xs = state.x_train[rec.indices]
        scale, zp, _, _ = cut_quant(state.ops)
        want = on_the_wire(ops_forward(state.ops, xs), zp, bits)
        bad = np.argwhere(want != rec.smashed)
        assert bad.size == 0, (
            f"{wire} step {i}: activation {tuple(bad[0])} on the wire {rec.smashed[tuple(bad[0])]}"
            f", golden {want[tuple(bad[0])]}"
        )
        assert (np.float32(rec.scale), rec.zero_point) == (scale, zp), f"{wire} step {i}"
        if bits & SPARSE:  # nothing where the activation was the zero point
            assert not np.any(rec.grads[rec.smashed == np.int8(zp)]), f"{wire} step {i}"
        if bits & GRADS4:
            assert np.abs(rec.grads.astype(int)).max() <= 7, f"{wire} step {i}"
        ops_train_step(state.ops, xs, rec.grads, rec.grad_scales, LR)
        assert rec.weights_crc == zlib.crc32(ops_blob(state.ops)), (
            f"{wire} step {i}: weights CRC differs from the golden model's"
        )
    assert first_blob_difference(run.blob, state.ops) is None
    assert run.blob != initial, "the weights did not move: nothing was compared"


@pytest.mark.qemu
@pytest.mark.parametrize(
    ("workload", "wire", "batch"),
    [("mnist-cnn", "sparse-int4", 16), ("mnist-cnn", "int4", 16), ("motion-cnn1d", "sparse", 8)],
)
def test_a_coded_wire_on_the_emulated_m4_equals_the_golden_model(
    workload: str, wire: str, batch: int, tmp_path: Path
) -> None:
    from tinysplit.host.board.linkmap import ram_flash_from_map

    run, elf = _run("mps2_an386", workload, wire, tmp_path, batch)
    assert len(run.steps) == STEPS
    _replay(tmp_path / "export", run, wire)
    plan = json.loads((tmp_path / "export" / "plan.json").read_text())
    linked = ram_flash_from_map(elf.with_suffix(".map"))["ram_used"]
    rows = {r["name"] for r in plan["rows"]}
    assert ("sent_mask" in rows) == bool(wire_bits(wire) & SPARSE), rows
    assert abs(linked - plan["ram_peak"]) <= 0.02 * plan["ram_peak"], (plan["ram_peak"], linked)


@pytest.mark.parametrize(("workload", "batch"), [("digits-mlp", 32), ("mnist-cnn", 16)])
def test_sparse_trains_to_the_same_weights_as_int8_bit_for_bit(
    workload: str, batch: int, tmp_path: Path
) -> None:
    dense, _ = _run("native", workload, "int8", tmp_path / "int8", batch)
    sparse, _ = _run("native", workload, "sparse", tmp_path / "sparse", batch)
    for i, (a, b) in enumerate(zip(dense.steps, sparse.steps, strict=True), start=1):
        assert np.array_equal(a.smashed, b.smashed), f"step {i}: activations differ"
        assert a.weights_crc == b.weights_crc, f"step {i}: weights differ after the step"
    assert dense.blob == sparse.blob
    _replay(tmp_path / "sparse" / "export", sparse, "sparse")
    zeros = float(np.mean([np.mean(r.smashed == r.zero_point) for r in sparse.steps]))
    print(f"\n{workload}: sparse == int8 after {STEPS} steps; {zeros:.0%} of the activations zero")


def _linear_cut(path: Path) -> tuple[Path, Path]:
    """A user's model whose cut is a Dense without activation: its zeros mean nothing."""
    import keras

    keras.utils.set_random_seed(1)
    model = keras.Sequential(
        [keras.Input((16,)), keras.layers.Dense(12, name="linear"), keras.layers.Dense(3)]
    )
    model.save(path / "linear.keras")
    rng = np.random.default_rng(1)
    x = rng.normal(0.0, 1.0, (60, 16)).astype(np.float32)
    y = x[:, :3].argmax(axis=1).astype(np.int64)
    np.savez(path / "linear.npz", x_train=x[:40], y_train=y[:40], x_test=x[40:], y_test=y[40:])
    return path / "linear.keras", path / "linear.npz"


@pytest.mark.parametrize(
    ("wire", "words"),
    [("int2", ("--wire", "int2", "sparse-int4")), ("sparse", ("--wire sparse", "not a ReLU"))],
)
def test_a_wire_format_the_export_cannot_carry_is_one_clear_error(
    wire: str, words: tuple[str, ...], tmp_path: Path
) -> None:
    model, data = _linear_cut(tmp_path)
    with pytest.raises(BadInput) as e:
        export_client(model, 1, tmp_path / "export", data=data, wire=wire)
    assert "\n" not in str(e.value) and all(w in str(e.value) for w in words), str(e.value)
    assert not (tmp_path / "export").exists()
    export_client(model, 1, tmp_path / "export", data=data)  # int8 carries any cut


def test_sparse_with_noise_is_refused(tmp_path: Path) -> None:
    from tinysplit.codegen.export import Noise

    with pytest.raises(BadInput, match="--noise"):
        export_client(
            "digits-mlp", None, tmp_path / "export", wire="sparse", noise=Noise("laplace", 0.05)
        )


def test_a_u_shaped_board_on_a_coded_wire_trains_as_the_golden_model(tmp_path: Path) -> None:
    """--labels client with --wire sparse-int4: SMASHED_PACKED without labels, HEAD_IN/HEAD_OUT
    between, GRAD_PACKED back; the whole trainer on the native board ends in the state the
    golden model's replay of the same run does, every byte."""
    from tinysplit.host.board.launch import open_port
    from tinysplit.host.training.server import ServerSegment
    from tinysplit.host.training.session import Export, board_url
    from tinysplit.host.training.simulate import GoldenClient
    from tinysplit.host.training.trainer import TrainConfig, split_train
    from tinysplit.host.training.weights import state_image
    from tinysplit.host.transport.link import ClientLink

    out = tmp_path / "export"
    export_client("digits-mlp", None, out, labels="client", wire="sparse-int4")
    cfg, steps = TrainConfig(epochs=2, batch=32, lr=0.1, seed=0), 12
    export = Export.load(out)
    with board_url("native", export) as url:
        port = open_port(url, timeout=0.05)
        try:
            link = ClientLink(port, **export.link_key())
            assert link.hello(export.model_hash).flags & SPARSE
            board = split_train(link, ServerSegment.load(out / "server.keras", cfg.lr), cfg,
                                progress=False, max_steps=steps)  # fmt: skip
            image = link.pull_state()
        finally:
            port.close()
    state = load_client_state(out)
    golden = split_train(GoldenClient(state), ServerSegment.load(out / "server.keras", cfg.lr),
                         cfg, progress=False, max_steps=steps)  # fmt: skip
    assert image == state_image(state.layers), "the board's state differs from the golden model's"
    assert board.history[-1].test_accuracy == golden.history[-1].test_accuracy
